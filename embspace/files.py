"""Atomic writes and file locks: the one helper every writer in embspace uses.

A reader never sees half a file (write to a hidden temporary beside it, fsync, rename), and a lock is
an `flock` on an open file, so separate opens exclude each other across processes and threads.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

TEMPORARY_SUFFIX = ".tmp"  # temporaries are ".<name>.<pid>.<random>.tmp": hidden, and easy to sweep


def temporary_beside(path: Path) -> Path:
    """A hidden, unique temporary name in `path`'s directory (readers skip names starting with '.')."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{TEMPORARY_SUFFIX}")


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(temporary)` to fill a temporary beside `path`, fsync it and rename it onto `path`.

    On any failure the temporary is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_beside(path)
    try:
        write(temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """`text` (UTF-8) to `path`, atomically."""
    write_atomic(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def write_json_atomic(path: Path, payload: object, *, indent: int | None = 1) -> None:
    """`payload` as JSON (UTF-8, non-ASCII kept) to `path`, atomically."""
    write_text_atomic(path, json.dumps(payload, ensure_ascii=False, indent=indent) + "\n")


def flock(fd: int, *, shared: bool = False, wait: bool = True) -> None:
    """Take an flock on the open file `fd` (released when it is closed); BlockingIOError if `wait` is False
    and another holder has it."""
    fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB))


@contextlib.contextmanager
def locked(path: Path, *, shared: bool = False, wait: bool = True) -> Iterator[IO[str]]:
    """Hold an flock on `path` (created if missing) for the `with` block; yields the open lock file.

    `shared` takes a reader's lock; `wait=False` raises BlockingIOError at once when another holder has it,
    so the caller can say who is busy.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        flock(handle.fileno(), shared=shared, wait=wait)
        yield handle


@contextlib.contextmanager
def immediate_transaction(path: Path, busy_timeout: float) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT on the SQLite file `path`, rolled back on error; sqlite3.Error passes out.

    The write lock is taken up front, so a compare-and-set inside is atomic."""
    with contextlib.closing(sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
