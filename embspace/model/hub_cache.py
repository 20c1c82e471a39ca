"""The hosted app's own hub cache: models downloaded once, least-recently-used ones evicted to fit a budget.

State lives on disk (an index and flock files in the cache directory), so any number of ModelCache objects,
threads and processes agree on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from embspace.files import locked, write_json_atomic
from embspace.model.sources import HubClient, ProgressFn, ResolvedSource, download_from_hub

INDEX_FILE = "embspace-index.json"
LOCK_DIR = ".embspace-locks"


class ModelCache:
    """The hosted app's own hub cache: least-recently-used models evicted to stay within `budget_bytes`,
    one download per model at a time across threads and processes (file locks in the cache directory).

    Only `models--*` directories inside `directory` are ever deleted.
    """

    def __init__(self, directory: Path, budget_bytes: int):
        self.directory = Path(directory)
        self.budget_bytes = budget_bytes

    # --- public ---------------------------------------------------------------------------------

    def fetch(
        self,
        repo_id: str,
        revision: str | None = None,
        *,
        weight_budget_bytes: int | None = None,
        progress: ProgressFn | None = None,
        hub: HubClient | None = None,
    ) -> ResolvedSource:
        """The local snapshot of `repo_id`, downloaded into this cache if missing (once, however many ask)."""
        folder = repo_folder(repo_id)
        budget = self.budget_bytes if weight_budget_bytes is None else min(weight_budget_bytes, self.budget_bytes)
        with locked(self.lock_path(folder, "download")):
            known = self._known_snapshot(folder, revision)
            if known is not None:
                self._touch(folder)
                return ResolvedSource(repo_id, known, "hub", revision)
            resolved = download_from_hub(
                repo_id,
                revision=revision,
                weight_budget_bytes=budget,
                progress=progress,
                cache_dir=self.directory,
                hub=hub,
                make_room=lambda incoming: self.evict(incoming, keep=folder),
            )
            self._record(folder, revision, resolved.path)
        self.evict(0, keep=folder)
        return resolved

    def lease(self, repo_id: str) -> contextlib.ExitStack:
        """A shared lock on `repo_id`'s entry: eviction skips it until the returned lease is closed
        (or garbage-collected, which closes its lock file)."""
        lease = contextlib.ExitStack()
        lease.enter_context(locked(self.lock_path(repo_folder(repo_id), "use"), shared=True))
        return lease

    def usage(self) -> dict[str, int]:
        """{models--org--name: bytes on disk} for every model in the cache."""
        if not self.directory.is_dir():
            return {}
        return {p.name: tree_bytes(p) for p in sorted(self.directory.glob("models--*")) if p.is_dir()}

    def evict(self, incoming_bytes: int = 0, *, keep: str | None = None) -> list[str]:
        """Delete least-recently-used models until usage + incoming_bytes fits the budget.

        Models being downloaded or held open (a lease) and `keep` are never deleted. Returns the deleted folders.
        """
        deleted = []
        with self._index() as index:
            usage = self.usage()
            total = sum(usage.values()) + incoming_bytes
            by_age = sorted(usage, key=lambda name: index.get(name, {}).get("last_used", _mtime(self.directory / name)))
            for name in by_age:
                if total <= self.budget_bytes:
                    break
                if name == keep or not self._try_remove(name):
                    continue
                total -= usage[name]
                index.pop(name, None)
                deleted.append(name)
        return deleted

    def lock_path(self, folder: str, purpose: str) -> Path:
        """The flock file guarding `folder` for `purpose` ("download", "use" or "index")."""
        return self.directory / LOCK_DIR / f"{folder}.{purpose}.lock"

    # --- internals ------------------------------------------------------------------------------

    def _try_remove(self, name: str) -> bool:
        """Remove model folder `name` unless someone downloads or uses it (non-blocking locks)."""
        try:
            with locked(self.lock_path(name, "download"), wait=False), locked(self.lock_path(name, "use"), wait=False):
                shutil.rmtree(self.directory / name, ignore_errors=True)
                return True
        except BlockingIOError:
            return False

    @contextlib.contextmanager
    def _index(self) -> Iterator[dict]:
        """The index {folder: {"last_used": t, "snapshots": {revision: path}}}, read and written under a lock."""
        with locked(self.lock_path("index", "index")):
            path = self.directory / INDEX_FILE
            try:
                index = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                index = {}
            index = index if isinstance(index, dict) else {}
            yield index
            write_json_atomic(path, index, indent=None)

    def _known_snapshot(self, folder: str, revision: str | None) -> Path | None:
        with self._index() as index:
            path = index.get(folder, {}).get("snapshots", {}).get(revision or "main")
        if path and (Path(path) / "config.json").is_file():
            return Path(path)
        return None

    def _record(self, folder: str, revision: str | None, path: Path) -> None:
        with self._index() as index:
            entry = index.setdefault(folder, {})
            entry.setdefault("snapshots", {})[revision or "main"] = str(path)
            entry["last_used"] = time.time()

    def _touch(self, folder: str) -> None:
        with self._index() as index:
            index.setdefault(folder, {})["last_used"] = time.time()


def repo_folder(repo_id: str) -> str:
    """huggingface_hub's folder name for a model repository in a cache directory."""
    return "models--" + repo_id.replace("/", "--")


def tree_bytes(directory: Path) -> int:
    """Bytes of the regular files under `directory` (hub snapshots are links to blobs: counted once)."""
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                with contextlib.suppress(OSError):
                    total += path.stat().st_size
    return total


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
