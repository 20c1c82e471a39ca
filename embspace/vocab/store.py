"""Uploaded corpora kept on disk by their content digest, so a page address can name one and reopen it.

A corpus lives as `<sha256>.<format>` (the format from the upload's suffix, one of txt/jsonl/csv/tsv) with a
`<sha256>.json` beside it holding the uploaded file's name as metadata: the name is never part of a path.
Files are written atomically; the least recently used corpora are deleted to stay within a byte budget.
State lives on disk (last use = the file's modification time, a lock file for writers), so any number of
stores, threads and processes agree on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from embspace.files import locked, write_atomic, write_json_atomic
from embspace.vocab.corpus import infer_format

DIGEST_PREFIX = 16  # hex characters of the digest a page address carries (64 bits: no collision in practice)
LOCK_FILE = ".corpora.lock"
_HEX_PREFIX = re.compile(rf"[0-9a-f]{{{DIGEST_PREFIX},64}}")
_STORED = re.compile(r"([0-9a-f]{64})\.(txt|jsonl|csv|tsv)")
_MAX_NAME = 255  # characters of the uploaded name kept as metadata


def corpus_digest(data: bytes) -> str:
    """The sha256 of a corpus's bytes, 64 hex characters: its name in the store."""
    return hashlib.sha256(data).hexdigest()


def is_digest_prefix(text: str) -> bool:
    """Whether `text` can name a stored corpus: 16 to 64 lowercase hex characters."""
    return bool(_HEX_PREFIX.fullmatch(text or ""))


@dataclass(frozen=True)
class StoredCorpus:
    """One kept corpus: its digest, the name it was uploaded under (metadata only), its format and file."""

    digest: str
    name: str
    fmt: str
    path: Path

    @property
    def short(self) -> str:
        """The digest as a page address carries it."""
        return self.digest[:DIGEST_PREFIX]

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


class CorpusStore:
    """Corpora by content digest in `directory`, least recently used deleted beyond `budget_bytes`.

    Only files named `<64 hex>.<format>` and their `.json` metadata are ever deleted.
    """

    def __init__(self, directory: Path, budget_bytes: int):
        self.directory = Path(directory)
        self.budget_bytes = budget_bytes

    def put(self, data: bytes, name: str) -> StoredCorpus | None:
        """Keep `data` (uploaded as `name`, whose suffix gives the format); None when it alone is over budget.

        Raises CorpusError when the name's suffix is not a corpus format. Storing the same bytes again only
        marks them used (and records the newer name).
        """
        fmt = infer_format(name)
        if len(data) > self.budget_bytes:
            return None
        digest = corpus_digest(data)
        path = self.directory / f"{digest}.{fmt}"
        with locked(self.directory / LOCK_FILE):
            if not path.is_file() or path.stat().st_size != len(data):
                self._evict_locked(len(data), keep=path.name)
                write_atomic(path, lambda temporary: temporary.write_bytes(data))
            write_json_atomic(self._meta_path(digest), {"name": str(name)[:_MAX_NAME], "fmt": fmt, "bytes": len(data)})
            os.utime(path)  # last use: now
        return StoredCorpus(digest, str(name)[:_MAX_NAME], fmt, path)

    def find(self, prefix: str) -> StoredCorpus | None:
        """The stored corpus whose digest starts with `prefix` (16+ hex characters), marked used; else None."""
        if not is_digest_prefix(prefix) or not self.directory.is_dir():
            return None
        with locked(self.directory / LOCK_FILE):
            for path in sorted(self.directory.glob(f"{prefix}*")):
                match = _STORED.fullmatch(path.name)
                if match and path.is_file():
                    os.utime(path)
                    digest, fmt = match.groups()
                    return StoredCorpus(digest, self._name(digest, fmt), fmt, path)
        return None

    def usage(self) -> dict[str, int]:
        """{file name: bytes} of every stored corpus."""
        if not self.directory.is_dir():
            return {}
        return {p.name: p.stat().st_size for p in self.directory.iterdir() if _STORED.fullmatch(p.name) and p.is_file()}

    def evict(self, incoming_bytes: int = 0) -> list[str]:
        """Delete least recently used corpora until usage + incoming_bytes fits the budget; the deleted names."""
        with locked(self.directory / LOCK_FILE):
            return self._evict_locked(incoming_bytes)

    def _evict_locked(self, incoming_bytes: int, keep: str | None = None) -> list[str]:
        usage = self.usage()
        total = sum(usage.values()) + incoming_bytes
        deleted = []
        for name in sorted(usage, key=lambda n: (self.directory / n).stat().st_mtime):  # oldest use first
            if total <= self.budget_bytes:
                break
            if name == keep:
                continue
            (self.directory / name).unlink(missing_ok=True)
            self._meta_path(name.split(".")[0]).unlink(missing_ok=True)
            total -= usage[name]
            deleted.append(name)
        return deleted

    def _meta_path(self, digest: str) -> Path:
        return self.directory / f"{digest}.json"

    def _name(self, digest: str, fmt: str) -> str:
        """The uploaded name from the metadata; a made-up one when it is missing or unreadable."""
        try:
            name = json.loads(self._meta_path(digest).read_text(encoding="utf-8")).get("name")
        except (OSError, ValueError, AttributeError):
            name = None
        return name if isinstance(name, str) and name else f"corpus-{digest[:DIGEST_PREFIX]}.{fmt}"
