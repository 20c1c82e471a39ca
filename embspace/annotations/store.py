"""Annotations on heads and neurons (a short label and a markdown note), kept in SQLite and safe to share.

Rows are keyed by model id + revision + view (`AnnotationKey`) and carry a version number: a save
names the version it was based on and is refused with both texts (`Conflict`) when the row moved on,
so two tabs editing one annotation never silently overwrite each other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path

from embspace.annotations.database import (
    DB_FILE,
    delete_row,
    initialise,
    read_only_uri,
    reading,
    select,
    select_model,
    transaction,
    upsert,
)
from embspace.annotations.records import (
    Annotation,
    AnnotationKey,
    Conflict,
    ReadOnlyStore,
    ShapeLike,
    check_key,
    check_text,
    utc_now,
)
from embspace.settings import ANNOTATIONS_ENV, AnnotationSettings
from embspace.views import HEAD_VIEW_KINDS, VIEW_KIND_NAMES

DEFAULT_BUSY_TIMEOUT_S = 5.0
OPERATOR_READ_ONLY = f"annotation writing is switched off on this server ({ANNOTATIONS_ENV}=readonly)."


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
    read_uri: str | None = field(default=None, repr=False)  # read-only stores: how the file is opened

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
        For the app and CLI, `files.open_store()` also loads the operator's seed files.
        """
        if data_dir is None or read_only is None:
            settings = AnnotationSettings.from_env()
            data_dir = settings.data_dir if data_dir is None else data_dir
            read_only = settings.read_only if read_only is None else read_only
        path = Path(data_dir).expanduser() / DB_FILE
        seed = tuple(replace(a, version=0, origin="seed") for a in seed)
        problem = OPERATOR_READ_ONLY if read_only else initialise(path, busy_timeout)
        if problem is None:
            return cls(path, None, True, busy_timeout, seed)
        return cls.open_read_only(path, problem, seed, busy_timeout)

    @classmethod
    def open_read_only(
        cls, path: Path, reason: str, seed: tuple[Annotation, ...] = (), busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S
    ) -> AnnotationStore:
        """A store that only reads `path` (if it exists and can be read), saying `reason` to every save."""
        if not path.is_file():
            return cls(path, reason, True, busy_timeout, seed)
        uri, failure = read_only_uri(path, busy_timeout)
        if uri is None:
            return cls(path, f"{reason} The file cannot be read either ({failure}).", False, busy_timeout, seed)
        return cls(path, reason, True, busy_timeout, seed, read_uri=uri)

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    def get(self, key: AnnotationKey) -> Annotation | None:
        """The annotation of `key`'s view (a stored row, else a seed row), or None."""
        with self._reading() as conn:
            row = select(conn, key) if conn is not None else None
        if row is not None:
            return row
        return next((a for a in self.seed if a.key == key), None)

    def list(self, model_id: str, revision: str | None) -> list[Annotation]:
        """Every annotation of one model, by kind, layer, index.

        Stored rows first, then seed rows of views that have no stored row."""
        revision = revision or ""
        with self._reading() as conn:
            rows = [] if conn is None else select_model(conn, model_id, revision)
        stored = {a.key for a in rows}
        rows += [a for a in self.seed if (a.model_id, a.revision) == (model_id, revision) and a.key not in stored]
        return sorted(rows, key=lambda a: (VIEW_KIND_NAMES.index(a.kind), a.layer, a.index))

    def labels_for_heads(self, model_id: str, revision: str | None) -> dict[tuple[str, int, int], str]:
        """{(kind, layer, head): label} of the labelled W_VO / W_QK heads, for the heatmap's hover text."""
        return {
            (a.kind, a.layer, a.index): a.label
            for a in self.list(model_id, revision)
            if a.kind in HEAD_VIEW_KINDS and a.label
        }

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
        mine = Annotation.for_key(key, label, note, author, utc_now(), (base_version or 0) + 1)
        return self.write_all([mine], [base_version or 0])[0]

    def write_all(self, rows: Sequence[Annotation], base_versions: Sequence[int]) -> list[Annotation]:
        """Write every row in ONE transaction, each only if its stored version is still base_versions[i]
        (0: not stored); all or nothing. A row's own `updated` is kept (now if empty); its version becomes
        base + 1. Rows must be checked already (check_key, check_text). Raises Conflict on the first stale row."""
        if len(rows) != len(base_versions):
            raise ValueError("write_all needs one base version per row.")
        self.check_writable()
        saved = []
        with transaction(self.path, self.busy_timeout) as conn:
            for mine, base in zip(rows, base_versions, strict=True):
                theirs = select(conn, mine.key)
                if (theirs.version if theirs else 0) != base:
                    raise Conflict(mine.key, theirs, mine, base)
                if theirs and (theirs.label, theirs.note, theirs.author) == (mine.label, mine.note, mine.author):
                    saved.append(theirs)  # same text: no new version
                    continue
                row = replace(mine, updated=mine.updated or utc_now(), version=base + 1, origin="store")
                upsert(conn, row, exists=theirs is not None)
                saved.append(row)
        return saved

    def delete(self, key: AnnotationKey, base_version: int) -> None:
        """Delete `key`'s stored row if its version is still base_version (Conflict otherwise)."""
        self.check_writable()
        with transaction(self.path, self.busy_timeout) as conn:
            theirs = select(conn, key)
            if theirs is None and not base_version:
                return
            if theirs is None or theirs.version != base_version:
                raise Conflict(key, theirs, Annotation.for_key(key, "(deleted)", version=base_version), base_version)
            delete_row(conn, key)

    def check_writable(self) -> None:
        """Raise ReadOnlyStore (saying why) unless saves are possible."""
        if self.read_only_reason is not None:
            raise ReadOnlyStore(f"nothing was saved: {self.read_only_reason}")

    def _reading(self) -> AbstractContextManager[sqlite3.Connection | None]:
        """A connection for reading, or None when there is nothing to read (no file, unreadable file)."""
        readable = self.readable and not (self.read_only and self.read_uri is None)
        return reading(self.path, self.read_uri, self.busy_timeout, readable=readable)
