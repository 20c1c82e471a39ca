"""The annotation database file: its SQLite schema, the row SQL, connections, and why a file cannot be used.

Everything here speaks SQL; `store.AnnotationStore` builds the versioned, compare-and-set store on it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from embspace.annotations.records import Annotation, AnnotationError, AnnotationKey, StoreBusy
from embspace.files import immediate_transaction
from embspace.views import VIEW_KIND_NAMES

DB_FILE = "annotations.sqlite3"
DB_SCHEMA_VERSION = 1  # PRAGMA user_version of the database file
SCHEMA_SQL = f"""
CREATE TABLE IF NOT EXISTS annotations (
    model_id TEXT NOT NULL,
    revision TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ({", ".join(f"'{kind}'" for kind in VIEW_KIND_NAMES)})),
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
COLUMNS = "model_id, revision, kind, layer, idx, label, note, author, updated, version"
KEY_MATCH = "model_id = ? AND revision = ? AND kind = ? AND layer = ? AND idx = ?"
READ_ONLY_QUERIES = ("mode=ro", "mode=ro&immutable=1")  # how a file that cannot be written is opened, in turn


# ---- rows ---------------------------------------------------------------------------------------


def key_params(key: AnnotationKey) -> tuple[str, str, str, int, int]:
    """The parameters of KEY_MATCH."""
    return key.model_id, key.revision, key.kind, key.layer, key.index


def row_to_annotation(row: tuple) -> Annotation:
    model_id, revision, kind, layer, index, label, note, author, updated, version = row
    return Annotation(model_id, revision, kind, layer, index, label, note, author, updated, version)


def select(conn: sqlite3.Connection, key: AnnotationKey) -> Annotation | None:
    """The stored row of `key`'s view, or None."""
    row = conn.execute(f"SELECT {COLUMNS} FROM annotations WHERE {KEY_MATCH}", key_params(key)).fetchone()
    return None if row is None else row_to_annotation(row)


def select_model(conn: sqlite3.Connection, model_id: str, revision: str) -> list[Annotation]:
    """Every stored row of one model (in no particular order)."""
    query = f"SELECT {COLUMNS} FROM annotations WHERE model_id = ? AND revision = ?"
    return [row_to_annotation(row) for row in conn.execute(query, (model_id, revision))]


def upsert(conn: sqlite3.Connection, row: Annotation, *, exists: bool) -> None:
    """Write `row` (UPDATE when its view is stored already, else INSERT); the caller compared versions."""
    if exists:
        conn.execute(
            f"UPDATE annotations SET label = ?, note = ?, author = ?, updated = ?, version = ? WHERE {KEY_MATCH}",
            (row.label, row.note, row.author, row.updated, row.version, *key_params(row.key)),
        )
    else:
        conn.execute(
            f"INSERT INTO annotations ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*key_params(row.key), row.label, row.note, row.author, row.updated, row.version),
        )


def delete_row(conn: sqlite3.Connection, key: AnnotationKey) -> None:
    conn.execute(f"DELETE FROM annotations WHERE {KEY_MATCH}", key_params(key))


def table_exists(conn: sqlite3.Connection) -> bool:
    """Whether the annotations table is there; reads the schema, so a file that is not a database raises."""
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'annotations'").fetchone()
    return found is not None


# ---- connections --------------------------------------------------------------------------------


def is_busy(err: sqlite3.Error) -> bool:
    return getattr(err, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(err)


@contextmanager
def reading(
    path: Path, read_uri: str | None, busy_timeout: float, *, readable: bool = True
) -> Iterator[sqlite3.Connection | None]:
    """A connection for reading (`read_uri` when given, else the file), or None when there is nothing to read
    (not `readable`, or no table). StoreBusy when another program locks the file, AnnotationError when it
    cannot be read."""
    if not readable:
        yield None
        return
    try:
        if read_uri is not None:
            conn = sqlite3.connect(read_uri, uri=True, timeout=busy_timeout)
        else:
            conn = sqlite3.connect(path, timeout=busy_timeout)
        with closing(conn):
            yield conn if table_exists(conn) else None
    except sqlite3.Error as err:
        if is_busy(err):
            raise StoreBusy(f"the annotation database {path} is locked by another program: try again.") from err
        raise AnnotationError(f"cannot read the annotation database {path}: {err}.") from err


@contextmanager
def transaction(path: Path, busy_timeout: float) -> Iterator[sqlite3.Connection]:
    """`files.immediate_transaction`, its SQLite errors as StoreBusy / AnnotationError."""
    try:
        with immediate_transaction(path, busy_timeout) as conn:
            yield conn
    except sqlite3.Error as err:
        if is_busy(err):
            raise StoreBusy(
                f"the annotation database is busy (another writer held it for more than "
                f"{busy_timeout:g} s): nothing was saved, try again."
            ) from err
        raise AnnotationError(f"could not write the annotation database {path} ({err}): nothing was saved.") from err


def read_only_uri(path: Path, busy_timeout: float) -> tuple[str | None, str]:
    """(the URI that reads `path` without writing, "") or (None, why none does).

    `mode=ro` first, else `immutable=1` (a directory where SQLite cannot create its -shm file; an immutable
    read does not see a leftover -wal file's changes)."""
    failure = ""
    for query in READ_ONLY_QUERIES:
        uri = f"{path.resolve().as_uri()}?{query}"
        try:
            with closing(sqlite3.connect(uri, uri=True, timeout=busy_timeout)) as conn:
                table_exists(conn)
            return uri, ""
        except sqlite3.Error as err:
            failure = str(err)
    return None, failure


# ---- opening for writing ------------------------------------------------------------------------


def initialise(path: Path, busy_timeout: float) -> str | None:
    """Create the directory, the table and switch on WAL; None when the file is ready for writing, else why not
    (one sentence)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return (
            f"cannot create the annotation directory {path.parent} ({err.strerror or err}): annotations "
            f"are read-only; set EMBSPACE_DATA_DIR to a writable directory."
        )
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
            if not table_exists(conn):
                conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA_SQL} PRAGMA user_version = {DB_SCHEMA_VERSION}; COMMIT;")
        return None
    except sqlite3.Error as err:
        return open_problem(path, err)


def open_problem(path: Path, err: sqlite3.Error) -> str:
    """One sentence for a database that cannot be opened for writing."""
    name = getattr(err, "sqlite_errorname", "")
    if is_busy(err):
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
