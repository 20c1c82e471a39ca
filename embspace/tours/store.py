"""Tours saved by name in SQLite (`tours.sqlite3` beside the annotations), versioned with compare-and-set.

    store = TourStore.open(data_dir=None, read_only=None)   # None: EMBSPACE_DATA_DIR / EMBSPACE_ANNOTATIONS
    store.list() -> [TourRecord(name, title, model, version, updated, author, stops)]   # by name
    store.get(name) -> (Tour, version) | None
    store.save(name, tour, author=None, base_version=None) -> version   # base None/0: a new tour
    store.delete(name, base_version=None)                               # None: whatever is stored

A save names the version it was based on and is refused (`TourConflict`, saying who saved last) when the
stored tour moved on, so two editors never silently overwrite each other. A read-only store (the operator's
EMBSPACE_ANNOTATIONS=readonly, `read_only=True`, or a file that cannot be written) still reads, and says why
to every save (`ReadOnlyTours`). WAL mode and a busy timeout, as the annotation database.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from embspace.files import immediate_transaction
from embspace.settings import ANNOTATIONS_ENV, AnnotationSettings
from embspace.tours.tour import Tour, TourError, parse_tour

TOURS_DB_FILE = "tours.sqlite3"
TOURS_DB_SCHEMA = 1  # PRAGMA user_version
MAX_NAME_CHARS = 100
DEFAULT_BUSY_TIMEOUT_S = 5.0
SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS tours (
    name TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    model TEXT NOT NULL,
    stops INTEGER NOT NULL,
    body TEXT NOT NULL,
    author TEXT,
    updated TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1)
) WITHOUT ROWID;
"""
OPERATOR_READ_ONLY = f"tour saving is switched off on this server ({ANNOTATIONS_ENV}=readonly)."


class ReadOnlyTours(TourError):
    """A save or delete on a read-only tour store; the message says why it is read-only."""


class TourConflict(TourError):
    """A save or delete based on a stale version: the message says which version is stored and who saved it."""

    def __init__(self, name: str, stored: TourRecord | None, base_version: int):
        self.name, self.stored, self.base_version = name, stored, base_version
        if stored is None:
            now = "it is no longer stored"
        else:
            who = f" by {stored.author}" if stored.author else ""
            now = f"version {stored.version} was saved{who} at {stored.updated}"
        super().__init__(
            f"tour {name!r} changed since you opened it ({now}; you edited version {base_version}): "
            f"nothing was saved; reload it and merge."
        )


Conflict = TourConflict  # the short name callers catch


@dataclass(frozen=True)
class TourRecord:
    """One stored tour, as a list shows it."""

    name: str
    title: str
    model: str
    version: int
    updated: str  # ISO 8601, UTC
    author: str | None
    stops: int  # how many


def check_name(name: str) -> str:
    """The name, stripped; TourError unless it is one line of 1..MAX_NAME_CHARS characters."""
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME_CHARS or "\n" in name:
        raise TourError(f"a tour's name is one line of 1 to {MAX_NAME_CHARS} characters, not {name!r}.")
    return name.strip()


@dataclass(frozen=True)
class TourStore:
    """Tours in `path` (SQLite, WAL). Thread-safe: every call opens its own connection."""

    path: Path
    read_only_reason: str | None = None  # None: saves are possible
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S

    @classmethod
    def open(
        cls,
        data_dir: str | Path | None = None,
        read_only: bool | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> TourStore:
        """The store in `data_dir` (default: the annotations' data directory), created if needed.

        Never raises for a bad file: one that cannot be written gives a read-only store saying why."""
        if data_dir is None or read_only is None:
            settings = AnnotationSettings.from_env()
            data_dir = settings.data_dir if data_dir is None else data_dir
            read_only = settings.read_only if read_only is None else read_only
        path = Path(data_dir).expanduser() / TOURS_DB_FILE
        problem = OPERATOR_READ_ONLY if read_only else initialise(path, busy_timeout)
        return cls(path, problem, busy_timeout)

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    def list(self) -> list[TourRecord]:
        """Every stored tour, by name."""
        with self._reading() as conn:
            rows = [] if conn is None else conn.execute(f"SELECT {RECORD_COLUMNS} FROM tours ORDER BY name").fetchall()
        return [TourRecord(*row) for row in rows]

    def get(self, name: str) -> tuple[Tour, int] | None:
        """(the tour, its version), or None when no tour has this name."""
        with self._reading() as conn:
            row = None if conn is None else conn.execute("SELECT body, version FROM tours WHERE name = ?", (name,))
            row = None if row is None else row.fetchone()
        return None if row is None else (parse_tour(json.loads(row[0])), row[1])

    def save(self, name: str, tour: Tour, *, author: str | None = None, base_version: int | None = None) -> int:
        """Store `tour` as `name` if the stored version is still `base_version` (None/0: not stored yet).

        Returns the new version (base + 1; an unchanged tour saves nothing and returns the stored one).
        Raises TourConflict, ReadOnlyTours, TourError (bad name, busy file); on failure nothing changes."""
        name, base = check_name(name), base_version or 0
        body = json.dumps(tour.to_json(), ensure_ascii=False, separators=(",", ":"))
        self.check_writable()
        with self._transaction() as conn:
            stored = select_record(conn, name)
            if (stored.version if stored else 0) != base:
                raise TourConflict(name, stored, base)
            if stored is not None and (stored_body(conn, name), stored.author) == (body, author):
                return stored.version  # same tour: no new version
            values = (tour.title, tour.model, len(tour.stops), body, author, utc_now(), base + 1, name)
            if stored is None:
                conn.execute(f"INSERT INTO tours ({WRITE_COLUMNS}, name) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
            else:
                conn.execute(UPDATE_SQL, values)
        return base + 1

    def delete(self, name: str, base_version: int | None = None) -> None:
        """Delete `name` (only if its version is still `base_version`, when given); TourError if not stored."""
        self.check_writable()
        with self._transaction() as conn:
            stored = select_record(conn, name)
            if stored is None and base_version is None:
                raise TourError(f"no tour is named {name!r} in {self.path}.")
            if stored is None or (base_version is not None and stored.version != base_version):
                raise TourConflict(name, stored, base_version or 0)
            conn.execute("DELETE FROM tours WHERE name = ?", (name,))

    def check_writable(self) -> None:
        """ReadOnlyTours (saying why) unless saves are possible."""
        if self.read_only_reason is not None:
            raise ReadOnlyTours(f"nothing was saved: {self.read_only_reason}")

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection | None]:
        """A connection for reading (read-only stores open the file `mode=ro`), or None when there is no table."""
        if self.read_only and not self.path.is_file():
            yield None
            return
        target = f"{self.path.resolve().as_uri()}?mode=ro" if self.read_only else str(self.path)
        try:
            with closing(sqlite3.connect(target, uri=self.read_only, timeout=self.busy_timeout)) as conn:
                found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tours'").fetchone()
                yield conn if found else None
        except sqlite3.Error as err:
            raise TourError(f"cannot read the tour database {self.path}: {err}.") from err

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: the write lock is taken up front, so a compare-and-set inside is atomic."""
        try:
            with immediate_transaction(self.path, self.busy_timeout) as conn:
                yield conn
        except sqlite3.Error as err:
            raise TourError(f"could not write the tour database {self.path} ({err}): nothing was saved.") from err


RECORD_COLUMNS = "name, title, model, version, updated, author, stops"
WRITE_COLUMNS = "title, model, stops, body, author, updated, version"
UPDATE_SQL = (
    "UPDATE tours SET title = ?, model = ?, stops = ?, body = ?, author = ?, updated = ?, version = ? WHERE name = ?"
)


def select_record(conn: sqlite3.Connection, name: str) -> TourRecord | None:
    row = conn.execute(f"SELECT {RECORD_COLUMNS} FROM tours WHERE name = ?", (name,)).fetchone()
    return None if row is None else TourRecord(*row)


def stored_body(conn: sqlite3.Connection, name: str) -> str:
    return conn.execute("SELECT body FROM tours WHERE name = ?", (name,)).fetchone()[0]


def initialise(path: Path, busy_timeout: float) -> str | None:
    """Create the directory and table and switch on WAL; None when the file can be written, else why not."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > TOURS_DB_SCHEMA:
                return (
                    f"the tour database {path} was written by a newer embspace (schema {version}): tours are read-only."
                )
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")  # readers never wait for a writer
            conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA_SQL} PRAGMA user_version = {TOURS_DB_SCHEMA}; COMMIT;")
        return None
    except (OSError, sqlite3.Error) as err:
        return f"the tour database {path} cannot be written ({err}): tours are read-only; set EMBSPACE_DATA_DIR."


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
