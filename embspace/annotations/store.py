"""Annotations on heads and neurons (a short label and a markdown note), kept in SQLite and safe to share.

Rows are keyed by model id + revision + view (kind, layer, index) and carry a version number: a save
names the version it was based on and is refused with both texts (`Conflict`) when the row moved on,
so two tabs editing one annotation never silently overwrite each other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from embspace.errors import Busy, EmbspaceError
from embspace.settings import ANNOTATIONS_ENV, AnnotationSettings

KINDS = ("neuron", "vo", "qk")
HEAD_KINDS = ("vo", "qk")
MAX_LABEL_CHARS = 200
MAX_NOTE_CHARS = 20_000
MAX_AUTHOR_CHARS = 80
DB_FILE = "annotations.sqlite3"
DB_SCHEMA_VERSION = 1  # PRAGMA user_version of the database file
DEFAULT_BUSY_TIMEOUT_S = 5.0
OPERATOR_READ_ONLY = f"annotation writing is switched off on this server ({ANNOTATIONS_ENV}=readonly)."

_SCHEMA = """
CREATE TABLE IF NOT EXISTS annotations (
    model_id TEXT NOT NULL,
    revision TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('neuron', 'vo', 'qk')),
    layer INTEGER NOT NULL CHECK (layer >= 0),
    idx INTEGER NOT NULL CHECK (idx >= 0),
    label TEXT NOT NULL,
    note TEXT NOT NULL,
    author TEXT,
    updated TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    PRIMARY KEY (model_id, revision, kind, layer, idx)
) WITHOUT ROWID;
"""
_COLUMNS = "model_id, revision, kind, layer, idx, label, note, author, updated, version"
_KEY_MATCH = "model_id = ? AND revision = ? AND kind = ? AND layer = ? AND idx = ?"


class AnnotationError(EmbspaceError):
    """An annotation could not be read or written; the message says why and what to do."""


class InvalidAnnotation(AnnotationError, ValueError):
    """Bad input (unknown kind, a layer/head/neuron the model lacks, a label too long); nothing was changed."""


class ReadOnlyStore(AnnotationError):
    """The store cannot be written (operator's read-only mode, read-only or corrupt database file)."""


class StoreBusy(AnnotationError, Busy):
    """Another writer held the database longer than the busy timeout; nothing was changed, try again."""


class ShapeLike(Protocol):
    """The sizes an annotation is checked against (`layout.ModelShape` fits)."""

    n_layers: int
    n_heads: int
    d_ff: int


@dataclass(frozen=True)
class AnnotationKey:
    """Which view an annotation is about: index is the head for vo/qk, the neuron for neuron."""

    model_id: str
    revision: str  # "" = the default revision
    kind: str
    layer: int
    index: int

    def __post_init__(self):
        if self.revision is None:  # None and "" both mean the default revision
            object.__setattr__(self, "revision", "")

    def describe(self) -> str:
        if self.kind == "neuron":
            return f"neuron {self.index} of layer {self.layer}"
        return f"W_{str(self.kind).upper()} head {self.index} of layer {self.layer}"


@dataclass(frozen=True)
class Annotation:
    """One saved annotation. version counts saves from 1; 0 marks a row of the shipped read-only set."""

    model_id: str
    revision: str
    kind: str
    layer: int
    index: int
    label: str
    note: str = ""
    author: str | None = None
    updated: str = ""  # UTC, ISO 8601 ("2026-11-23T21:40:05Z")
    version: int = 0
    origin: str = "store"  # "store" (the database) or "seed" (the operator's shipped set)

    @property
    def key(self) -> AnnotationKey:
        return AnnotationKey(self.model_id, self.revision, self.kind, self.layer, self.index)

    def to_record(self) -> dict:
        """The JSON form used by export files and `annotations list --json` (model and revision left out)."""
        return {
            "kind": self.kind,
            "layer": self.layer,
            "index": self.index,
            "label": self.label,
            "note": self.note,
            "author": self.author,
            "updated": self.updated,
            "version": self.version,
        }


class Conflict(AnnotationError):
    """A save based on a stale version: `theirs` is what is stored now (None: deleted), `mine` what was sent."""

    def __init__(self, key: AnnotationKey, theirs: Annotation | None, mine: Annotation, base_version: int):
        self.key, self.theirs, self.mine, self.base_version = key, theirs, mine, base_version
        stored = f"version {theirs.version} is stored" if theirs else "it is no longer stored"
        if base_version == 0 and theirs is not None:
            stored = f"someone else created it (version {theirs.version})"
        super().__init__(
            f"{key.describe()} changed since you opened it ({stored}, you edited version {base_version}): "
            f"nothing was saved; reload it and merge. Theirs: {_preview(theirs)} | yours: {_preview(mine)}"
        )


def _preview(annotation: Annotation | None) -> str:
    if annotation is None:
        return "(none)"
    note = annotation.note.replace("\n", " ")
    return repr(annotation.label) + (f" / note {note[:60]!r}{'...' * (len(note) > 60)}" if note else "")


def model_identity(info) -> tuple[str, str]:
    """(model id, revision) annotations are keyed by, from a `model.ModelInfo`.

    Hub and bundled models: the id as opened; a local directory: its resolved path, so "./m" and "m" agree.
    """
    if getattr(info, "origin", None) == "local":
        return str(Path(info.path).resolve()), info.revision or ""
    return info.source, info.revision or ""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def check_key(key: AnnotationKey, shape: ShapeLike | None = None) -> None:
    """Raise InvalidAnnotation unless the key names a view that exists (in `shape`, when given)."""
    if not isinstance(key.model_id, str) or not key.model_id:
        raise InvalidAnnotation("an annotation needs the model id it belongs to.")
    if not isinstance(key.revision, str):
        raise InvalidAnnotation(f"revision must be text, not {key.revision!r}.")
    if key.kind not in KINDS:
        raise InvalidAnnotation(f"kind must be one of {', '.join(KINDS)}, not {key.kind!r}.")
    for what, value in (("layer", key.layer), ("index", key.index)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidAnnotation(f"{what} must be a whole number >= 0, not {value!r}.")
    if shape is None:
        return
    if key.layer >= shape.n_layers:
        raise InvalidAnnotation(f"layer {key.layer} is out of range: this model has layers 0..{shape.n_layers - 1}.")
    what, size = ("neuron", shape.d_ff) if key.kind == "neuron" else ("head", shape.n_heads)
    if key.index >= size:
        raise InvalidAnnotation(f"{what} {key.index} is out of range: this model has {what}s 0..{size - 1} per layer.")


def check_text(label: str, note: str | None, author: str | None) -> tuple[str, str, str | None]:
    """(label, note, author) cleaned (label and author stripped, empty author -> None), or InvalidAnnotation."""
    note = "" if note is None else note
    for what, value in (("label", label), ("note", note), ("author", author)):
        if value is not None and not isinstance(value, str):
            raise InvalidAnnotation(f"{what} must be text, not {type(value).__name__}.")
    label, author = label.strip(), (author or "").strip() or None
    for what, value, cap in (
        ("label", label, MAX_LABEL_CHARS),
        ("note", note, MAX_NOTE_CHARS),
        ("author", author or "", MAX_AUTHOR_CHARS),
    ):
        if len(value) > cap:
            hint = " (put longer text in the note)" if what == "label" else ""
            raise InvalidAnnotation(f"the {what} is {len(value):,} characters long; at most {cap:,} are allowed{hint}.")
        if "\x00" in value:
            raise InvalidAnnotation(f"the {what} contains a NUL character.")
    for what, value in (("label", label), ("author", author or "")):
        if any(ch in value for ch in "\r\n\t"):
            raise InvalidAnnotation(f"the {what} must be one line (put line breaks in the note).")
    if not label and not note:
        raise InvalidAnnotation("give a label or a note (an annotation with neither says nothing).")
    return label, note, author


def _row_to_annotation(row: tuple) -> Annotation:
    model_id, revision, kind, layer, index, label, note, author, updated, version = row
    return Annotation(model_id, revision, kind, layer, index, label, note, author, updated, version)


def _is_busy(err: sqlite3.Error) -> bool:
    return getattr(err, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(err)


@dataclass(frozen=True)
class AnnotationStore:
    """Annotations in `path` (SQLite, WAL mode). Thread-safe: every call opens its own connection.

    read_only_reason: None when saves are possible, else one sentence for the UI/CLI saying why not
    (reading still works where the file can be read). `seed`: the operator's shipped read-only set,
    shown under the stored rows (a stored row of the same view wins).
    """

    path: Path
    read_only_reason: str | None = None
    readable: bool = True  # False: the file could not be read at all (reads show the seed only)
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S
    seed: tuple[Annotation, ...] = ()
    warnings: tuple[str, ...] = ()  # problems that leave the store usable (a seed file that did not load)
    _read_uri: str | None = field(default=None, repr=False)  # read-only stores: how the file is opened

    @classmethod
    def open(
        cls,
        data_dir: str | Path | None = None,
        *,
        read_only: bool | None = None,
        seed: Iterable[Annotation] = (),
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> AnnotationStore:
        """Open (creating if needed) the store in `data_dir` (default: EMBSPACE_DATA_DIR, else the per-user dir).

        Never raises for a bad database: a locked, read-only or corrupt file gives a read-only store
        whose `read_only_reason` says what happened. read_only=None follows EMBSPACE_ANNOTATIONS.
        For the app and CLI, `annotations_io.open_store()` also loads the operator's seed files.
        """
        if data_dir is None or read_only is None:
            settings = AnnotationSettings.from_env()
            data_dir = settings.data_dir if data_dir is None else data_dir
            read_only = settings.read_only if read_only is None else read_only
        path = Path(data_dir).expanduser() / DB_FILE
        seed = tuple(replace(a, version=0, origin="seed") for a in seed)
        if read_only:
            return cls._open_read_only(path, OPERATOR_READ_ONLY, seed, busy_timeout)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            reason = (
                f"cannot create the annotation directory {path.parent} ({err.strerror or err}): annotations "
                f"are read-only; set EMBSPACE_DATA_DIR to a writable directory."
            )
            return cls._open_read_only(path, reason, seed, busy_timeout)
        problem = _initialise(path, busy_timeout)
        if problem is None:
            return cls(path, None, True, busy_timeout, seed)
        return cls._open_read_only(path, problem, seed, busy_timeout)

    @classmethod
    def _open_read_only(cls, path: Path, reason: str, seed: tuple, busy_timeout: float) -> AnnotationStore:
        """A store that only reads: the file opened `mode=ro`, else `immutable=1` (a directory where SQLite
        cannot create its -shm file; an immutable read does not see a leftover -wal file's changes)."""
        if not path.is_file():
            return cls(path, reason, True, busy_timeout, seed)
        failure = ""
        for query in ("mode=ro", "mode=ro&immutable=1"):
            uri = f"{path.resolve().as_uri()}?{query}"
            try:
                with closing(sqlite3.connect(uri, uri=True, timeout=busy_timeout)) as conn:
                    _read_table_exists(conn)
                return cls(path, reason, True, busy_timeout, seed, _read_uri=uri)
            except sqlite3.Error as err:
                failure = str(err)
        return cls(path, f"{reason} The file cannot be read either ({failure}).", False, busy_timeout, seed)

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    # ---- reading ------------------------------------------------------------------------------

    def get(self, model_id: str, revision: str | None, kind: str, layer: int, index: int) -> Annotation | None:
        """The annotation of one view (a stored row, else a seed row), or None."""
        key = AnnotationKey(model_id, revision or "", kind, layer, index)
        with self._reading() as conn:
            row = _select(conn, key) if conn is not None else None
        if row is not None:
            return row
        return next((a for a in self.seed if a.key == key), None)

    def list(self, model_id: str, revision: str | None) -> list[Annotation]:
        """Every annotation of one model, by kind, layer, index.

        Stored rows first, then seed rows of views that have no stored row."""
        revision = revision or ""
        with self._reading() as conn:
            rows = [] if conn is None else _select_model(conn, model_id, revision)
        stored = {a.key for a in rows}
        rows += [a for a in self.seed if (a.model_id, a.revision) == (model_id, revision) and a.key not in stored]
        return sorted(rows, key=lambda a: (KINDS.index(a.kind), a.layer, a.index))

    def labels_for_heads(self, model_id: str, revision: str | None) -> dict[tuple[str, int, int], str]:
        """{(kind, layer, head): label} of the labelled W_VO / W_QK heads, for the heatmap's hover text."""
        return {
            (a.kind, a.layer, a.index): a.label
            for a in self.list(model_id, revision)
            if a.kind in HEAD_KINDS and a.label
        }

    # ---- writing ------------------------------------------------------------------------------

    def save(
        self,
        key: AnnotationKey,
        label: str,
        note: str | None = "",
        author: str | None = None,
        base_version: int | None = None,
        *,
        shape: ShapeLike | None = None,
    ) -> Annotation:
        """Store label + note for `key` if the stored version is still `base_version` (None/0: not stored yet).

        Returns the saved annotation (version = base + 1; unchanged text saves nothing). Raises Conflict
        (with theirs and mine) when the row moved on, InvalidAnnotation for bad input (checked against
        `shape` when given), ReadOnlyStore, StoreBusy; in every failure nothing is changed.
        """
        check_key(key, shape)
        label, note, author = check_text(label, note, author)
        mine = Annotation(*_key_fields(key), label, note, author, utc_now(), (base_version or 0) + 1)
        return self.write_all([mine], [base_version or 0])[0]

    def write_all(self, rows: Sequence[Annotation], base_versions: Sequence[int]) -> list[Annotation]:
        """Write every row in ONE transaction, each only if its stored version is still base_versions[i]
        (0: not stored); all or nothing. A row's own `updated` is kept (now if empty); its version becomes
        base + 1. Rows must be checked already (check_key, check_text). Raises Conflict on the first stale row."""
        if len(rows) != len(base_versions):
            raise ValueError("write_all needs one base version per row.")
        self.check_writable()
        saved = []
        with self._transaction() as conn:
            for mine, base in zip(rows, base_versions, strict=True):
                theirs = _select(conn, mine.key)
                if (theirs.version if theirs else 0) != base:
                    raise Conflict(mine.key, theirs, mine, base)
                if theirs and (theirs.label, theirs.note, theirs.author) == (mine.label, mine.note, mine.author):
                    saved.append(theirs)  # same text: no new version
                    continue
                row = replace(mine, updated=mine.updated or utc_now(), version=base + 1, origin="store")
                if theirs:
                    conn.execute(
                        f"UPDATE annotations SET label = ?, note = ?, author = ?, updated = ?, version = ? "
                        f"WHERE {_KEY_MATCH}",
                        (row.label, row.note, row.author, row.updated, row.version, *_key_fields(row.key)),
                    )
                else:
                    conn.execute(
                        f"INSERT INTO annotations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (*_key_fields(row.key), row.label, row.note, row.author, row.updated, row.version),
                    )
                saved.append(row)
        return saved

    def delete(self, key: AnnotationKey, base_version: int) -> None:
        """Delete `key`'s stored row if its version is still base_version (Conflict otherwise)."""
        self.check_writable()
        with self._transaction() as conn:
            theirs = _select(conn, key)
            if theirs is None and not base_version:
                return
            if theirs is None or theirs.version != base_version:
                mine = Annotation(*_key_fields(key), label="(deleted)", version=base_version)
                raise Conflict(key, theirs, mine, base_version)
            conn.execute(f"DELETE FROM annotations WHERE {_KEY_MATCH}", _key_fields(key))

    # ---- connections --------------------------------------------------------------------------

    def check_writable(self) -> None:
        """Raise ReadOnlyStore (saying why) unless saves are possible."""
        if self.read_only_reason is not None:
            raise ReadOnlyStore(f"nothing was saved: {self.read_only_reason}")

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection | None]:
        """A connection for reading, or None when there is nothing to read (no file, unreadable file)."""
        if not self.readable or (self.read_only and self._read_uri is None):
            yield None
            return
        try:
            if self._read_uri is not None:
                conn = sqlite3.connect(self._read_uri, uri=True, timeout=self.busy_timeout)
            else:
                conn = sqlite3.connect(self.path, timeout=self.busy_timeout)
            with closing(conn):
                if not _read_table_exists(conn):
                    yield None
                    return
                yield conn
        except sqlite3.Error as err:
            if _is_busy(err):
                raise StoreBusy(
                    f"the annotation database {self.path} is locked by another program: try again."
                ) from err
            raise AnnotationError(f"cannot read the annotation database {self.path}: {err}.") from err

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on error.

        The write lock is taken up front, so a compare-and-set inside is atomic."""
        try:
            with closing(sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)) as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as err:
            if _is_busy(err):
                raise StoreBusy(
                    f"the annotation database is busy (another writer held it for more than "
                    f"{self.busy_timeout:g} s): nothing was saved, try again."
                ) from err
            raise AnnotationError(
                f"could not write the annotation database {self.path} ({err}): nothing was saved."
            ) from err


def _key_fields(key: AnnotationKey) -> tuple[str, str, str, int, int]:
    return key.model_id, key.revision, key.kind, key.layer, key.index


def _select(conn: sqlite3.Connection, key: AnnotationKey) -> Annotation | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM annotations WHERE {_KEY_MATCH}", _key_fields(key)).fetchone()
    return None if row is None else _row_to_annotation(row)


def _select_model(conn: sqlite3.Connection, model_id: str, revision: str) -> list[Annotation]:
    query = f"SELECT {_COLUMNS} FROM annotations WHERE model_id = ? AND revision = ?"
    return [_row_to_annotation(row) for row in conn.execute(query, (model_id, revision))]


def _read_table_exists(conn: sqlite3.Connection) -> bool:
    """Whether the annotations table is there; reads the schema, so a file that is not a database raises."""
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'annotations'").fetchone()
    return found is not None


def _initialise(path: Path, busy_timeout: float) -> str | None:
    """Create the table and switch on WAL; None when the file is ready for writing, else why not (one sentence)."""
    try:
        with closing(sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > DB_SCHEMA_VERSION:
                return (
                    f"the annotation database {path} was written by a newer embspace (schema {version}): "
                    f"annotations are read-only; upgrade embspace to edit them."
                )
            checked = conn.execute("PRAGMA quick_check").fetchone()[0]
            if checked != "ok":
                first = next((line for line in checked.splitlines() if not line.startswith("***")), checked)
                return (
                    f"the annotation database {path} is damaged ({first.strip()}): annotations are read-only; "
                    f"export what can be read, then move the file away to start a new one."
                )
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")  # readers never wait for a writer
            if not _read_table_exists(conn):
                conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {DB_SCHEMA_VERSION}; COMMIT;")
        return None
    except sqlite3.Error as err:
        return _open_problem(path, err)


def _open_problem(path: Path, err: sqlite3.Error) -> str:
    """One sentence for a database that cannot be opened for writing."""
    name = getattr(err, "sqlite_errorname", "")
    if _is_busy(err):
        return (
            f"the annotation database {path} is locked by another program: annotations are read-only "
            f"until the app is restarted."
        )
    if name.startswith("SQLITE_READONLY") or name.startswith("SQLITE_CANTOPEN") or "readonly" in str(err):
        return (
            f"the annotation database {path} cannot be written ({err}): annotations are read-only; "
            f"set EMBSPACE_DATA_DIR to a writable directory."
        )
    return (
        f"the annotation database {path} is damaged or not a database ({err}): annotations are read-only; "
        f"move the file away to start a new one."
    )
