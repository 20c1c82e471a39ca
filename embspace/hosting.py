"""Hosted mode: which models a shared deployment lets visitors open, its own bounded download cache,
and the upload size limit. An operator switches it on with EMBSPACE_HOSTED=1 (environment or
`.streamlit/secrets.toml`); without it embspace opens any local directory or hub id, as on one's own machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from embspace.errors import EmbspaceError, Refused
from embspace.model.embedding_space import EmbeddingSpaceModel, open_model
from embspace.model.sources import (
    DEFAULT_MODEL,
    DEFAULT_WEIGHT_BUDGET_BYTES,
    HubClient,
    ProgressFn,
    ResolvedSource,
    bundled_model_dir,
    download_from_hub,
)
from embspace.vocab.corpus import infer_format, iter_corpus_texts

HOSTED_ENV = "EMBSPACE_HOSTED"
ALLOWED_MODELS_ENV = "EMBSPACE_ALLOWED_MODELS"
ALLOW_ANY_HUB_ENV = "EMBSPACE_ALLOW_ANY_HUB"
CACHE_DIR_ENV = "EMBSPACE_CACHE_DIR"
CACHE_BYTES_ENV = "EMBSPACE_CACHE_BYTES"
MAX_UPLOAD_ENV = "EMBSPACE_MAX_UPLOAD_BYTES"
WEIGHT_BUDGET_ENV = "EMBSPACE_WEIGHT_BUDGET_GB"

DEFAULT_CACHE_BYTES = 5_000_000_000
DEFAULT_HOSTED_MAX_UPLOAD_BYTES = 20_000_000
# One message for every refused source: it must not depend on what exists on the server.
REFUSED_SOURCE = (
    "This server opens only the bundled model and the models its operator allows: pick one from the model list."
)
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
INDEX_FILE = "embspace-index.json"
LOCK_DIR = ".embspace-locks"


def default_cache_dir() -> Path:
    """~/.cache/embspace/hub (XDG_CACHE_HOME respected): the app's own, apart from the user's HF cache."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "embspace" / "hub"


@dataclass(frozen=True)
class HostingPolicy:
    """What a deployment lets visitors open and upload. Build it once with `from_env` at start-up.

    hosted=False (the default): local directories and any hub id open as usual, no extra step.
    """

    hosted: bool = False
    allowed_models: tuple[str, ...] = ()  # presets / hub ids (or operator-chosen absolute paths)
    allow_any_hub: bool = False
    cache_dir: Path = field(default_factory=default_cache_dir)
    cache_bytes: int = DEFAULT_CACHE_BYTES
    max_upload_bytes: int | None = None  # None: no limit beyond the server's own
    weight_budget_bytes: int = DEFAULT_WEIGHT_BUDGET_BYTES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, secrets: Mapping | None = None) -> HostingPolicy:
        """The policy from environment variables, then the same keys in `secrets` (e.g. st.secrets).

        Raises EmbspaceError naming the setting when a value cannot be read or the cache directory
        would overlap the user's own Hugging Face cache.
        """
        environ = os.environ if environ is None else environ

        def value(name: str) -> Any:
            if environ.get(name) not in (None, ""):
                return environ[name]
            try:  # st.secrets raises when there is no secrets.toml at all
                return secrets.get(name) if secrets is not None else None
            except Exception:
                return None

        hosted = _flag(HOSTED_ENV, value(HOSTED_ENV))
        cache_dir = Path(value(CACHE_DIR_ENV) or default_cache_dir()).expanduser()
        upload = value(MAX_UPLOAD_ENV)
        policy = cls(
            hosted=hosted,
            allowed_models=_names(value(ALLOWED_MODELS_ENV)),
            allow_any_hub=_flag(ALLOW_ANY_HUB_ENV, value(ALLOW_ANY_HUB_ENV)),
            cache_dir=cache_dir,
            cache_bytes=_bytes(CACHE_BYTES_ENV, value(CACHE_BYTES_ENV), DEFAULT_CACHE_BYTES),
            max_upload_bytes=_bytes(MAX_UPLOAD_ENV, upload, DEFAULT_HOSTED_MAX_UPLOAD_BYTES if hosted else None),
            weight_budget_bytes=_gigabytes(WEIGHT_BUDGET_ENV, value(WEIGHT_BUDGET_ENV), DEFAULT_WEIGHT_BUDGET_BYTES),
        )
        if hosted:
            check_separate_from_hf_cache(policy.cache_dir)
        return policy

    # --- what the sidebar offers ----------------------------------------------------------------

    def presets(self, local_presets: tuple[str, ...] = (DEFAULT_MODEL,)) -> tuple[str, ...]:
        """The model list to offer: hosted, the bundled model and the operator's list; else `local_presets`."""
        if not self.hosted:
            return tuple(local_presets)
        return tuple(dict.fromkeys((DEFAULT_MODEL, *self.allowed_models)))

    @property
    def accepts_typed_sources(self) -> bool:
        """Whether a visitor may type a model (a path or hub id) instead of picking from `presets()`."""
        return not self.hosted or self.allow_any_hub

    # --- checks ---------------------------------------------------------------------------------

    def check_source(self, source: str) -> None:
        """Raise Refused (always the same message) when hosted mode does not allow opening `source`."""
        if not self.hosted:
            return
        source = source.strip()
        if source == DEFAULT_MODEL or source in self.allowed_models:
            return
        if self.allow_any_hub and _is_hub_id(source):
            return
        raise Refused(REFUSED_SOURCE)

    def check_upload(self, size: int) -> None:
        """Raise Refused when an upload of `size` bytes is over the limit."""
        if self.max_upload_bytes is not None and size > self.max_upload_bytes:
            raise Refused(
                f"The upload is {human_bytes(size)}; this server accepts uploads up to "
                f"{human_bytes(self.max_upload_bytes)}. Upload a smaller corpus."
            )

    def upload_texts(self, data: bytes, name: str, field: str | None = None) -> Iterator[str]:
        """The texts of an uploaded corpus, read from memory (the name only gives the format; no file is written)."""
        self.check_upload(len(data))
        return iter_corpus_texts(bytes(data), fmt=infer_format(name), field=field)

    # --- opening --------------------------------------------------------------------------------

    def model_cache(self) -> ModelCache:
        """The hosted download cache (state lives on disk, so any number of these agree)."""
        return ModelCache(self.cache_dir, self.cache_bytes)

    def open_model(
        self,
        source: str,
        *,
        revision: str | None = None,
        embedding: str = "auto",
        progress: ProgressFn | None = None,
        hub: HubClient | None = None,
    ) -> EmbeddingSpaceModel:
        """open_model under this policy: checked source, hosted hub models through the bounded cache.

        The returned model holds a lease on its cache entry (`model.cache_lease`), so the cache does not
        evict files a live model still reads; the lease ends when the model is garbage-collected.
        """
        source = source.strip()
        self.check_source(source)
        if not self.hosted or Path(source).is_absolute():  # local mode, or a directory the operator listed
            return open_model(
                source,
                revision=revision,
                embedding=embedding,
                weight_budget_bytes=self.weight_budget_bytes,
                progress=progress,
            )
        bundled = bundled_model_dir() if source == DEFAULT_MODEL and revision is None else None
        if bundled is not None:
            resolved = ResolvedSource(source, bundled, "bundled")
            return open_model(source, embedding=embedding, progress=progress, resolved=resolved)
        # Hosted: every other source is a hub id, never looked up as a path on the server.
        cache = self.model_cache()
        lease = cache.lease(source)
        try:
            resolved = cache.fetch(
                source, revision, weight_budget_bytes=self.weight_budget_bytes, progress=progress, hub=hub
            )
            model = open_model(source, revision=revision, embedding=embedding, progress=progress, resolved=resolved)
        except BaseException:
            lease.close()
            raise
        model.cache_lease = lease
        return model


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
        with self._lock_file(folder, "download", fcntl.LOCK_EX):
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

    def lease(self, repo_id: str) -> IO:
        """A shared lock on `repo_id`'s entry: eviction skips it until the returned file is closed."""
        handle = self._lock_path(repo_folder(repo_id), "use").open("a")
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        return handle

    def usage(self) -> dict[str, int]:
        """{models--org--name: bytes on disk} for every model in the cache."""
        if not self.directory.is_dir():
            return {}
        return {p.name: _tree_bytes(p) for p in sorted(self.directory.glob("models--*")) if p.is_dir()}

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

    # --- internals ------------------------------------------------------------------------------

    def _try_remove(self, name: str) -> bool:
        """Remove model folder `name` unless someone downloads or uses it (non-blocking locks)."""
        try:
            with self._lock_file(name, "download", fcntl.LOCK_EX | fcntl.LOCK_NB):
                with self._lock_file(name, "use", fcntl.LOCK_EX | fcntl.LOCK_NB):
                    shutil.rmtree(self.directory / name, ignore_errors=True)
                    return True
        except BlockingIOError:
            return False

    def _lock_path(self, folder: str, purpose: str) -> Path:
        locks = self.directory / LOCK_DIR
        locks.mkdir(parents=True, exist_ok=True)
        return locks / f"{folder}.{purpose}.lock"

    @contextlib.contextmanager
    def _lock_file(self, folder: str, purpose: str, operation: int) -> Iterator[None]:
        # flock locks belong to an open file: separate opens exclude each other, across threads too.
        with self._lock_path(folder, purpose).open("a") as handle:
            fcntl.flock(handle.fileno(), operation)
            yield

    @contextlib.contextmanager
    def _index(self) -> Iterator[dict]:
        """The index {folder: {"last_used": t, "snapshots": {revision: path}}}, read and written under a lock."""
        with self._lock_file("index", "index", fcntl.LOCK_EX):
            path = self.directory / INDEX_FILE
            try:
                index = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                index = {}
            index = index if isinstance(index, dict) else {}
            yield index
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(index), encoding="utf-8")
            os.replace(temporary, path)

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


def check_separate_from_hf_cache(cache_dir: Path) -> None:
    """Raise EmbspaceError when the app's cache would be (or contain) the user's own Hugging Face cache."""
    from huggingface_hub import constants

    ours = cache_dir.expanduser().resolve()
    theirs = Path(constants.HF_HUB_CACHE).expanduser().resolve()
    if ours == theirs or ours in theirs.parents:
        raise EmbspaceError(
            f"{CACHE_DIR_ENV}={cache_dir} would hold the Hugging Face cache {theirs}, whose models the app "
            "must never evict: point it at a directory of its own."
        )


def human_bytes(size: int) -> str:
    """1234567 -> "1.2 MB" (decimal units, as the settings are written)."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _is_hub_id(source: str) -> bool:
    return bool(_HUB_ID.fullmatch(source)) and ".." not in source


def _tree_bytes(directory: Path) -> int:
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


def _flag(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw if raw is not None else "").strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise EmbspaceError(f"{name}={raw!r} is not a yes/no setting: use 1 or 0.")


def _names(raw: Any) -> tuple[str, ...]:
    """A comma-separated string or a list (TOML) of model names, trimmed, empties dropped."""
    if raw is None:
        return ()
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))


def _bytes(name: str, raw: Any, default: int | None) -> int | None:
    """Bytes from 5000000000, "5e9", "5GB" or "500 MB" (decimal units)."""
    if raw is None or str(raw).strip() == "":
        return default
    match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([a-zA-Z]*)\s*", str(raw))
    try:
        number = float(match.group(1)) * _UNITS[match.group(2).lower()] if match else None
    except (KeyError, ValueError):
        number = None
    if number is None or number < 0:
        raise EmbspaceError(f"{name}={raw!r} is not a size: write bytes, or a number with KB, MB or GB.")
    return int(number)


def _gigabytes(name: str, raw: Any, default: int) -> int:
    if raw is None or str(raw).strip() == "":
        return default
    try:
        return max(int(float(raw) * 1e9), 0)
    except ValueError:
        raise EmbspaceError(f"{name}={raw!r} is not a number of gigabytes.") from None
