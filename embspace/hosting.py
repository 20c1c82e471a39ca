"""Hosted mode: which models a shared deployment lets visitors open (hub models through the app's own
bounded cache, `embspace.model.hub_cache`) and the upload size limit. An operator switches it on with
EMBSPACE_HOSTED=1 (environment or `.streamlit/secrets.toml`); without it embspace opens any local
directory or hub id, as on one's own machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from embspace import settings
from embspace.errors import EmbspaceError, Refused
from embspace.model.embedding_space import EmbeddingSpaceModel, open_model
from embspace.model.hub_cache import ModelCache
from embspace.model.sources import (
    DEFAULT_MODEL,
    HubClient,
    ProgressFn,
    ResolvedSource,
    bundled_model_dir,
)
from embspace.settings import (
    CACHE_DIR_ENV,
    DEFAULT_CACHE_BYTES,
    DEFAULT_WEIGHT_BUDGET_BYTES,
    SettingReader,
    default_cache_dir,
)
from embspace.vocab.corpus import infer_format, iter_corpus_texts

# One message for every refused source: it must not depend on what exists on the server.
REFUSED_SOURCE = (
    "This server opens only the bundled model and the models its operator allows: pick one from the model list."
)
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")


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
        reader = SettingReader.of(environ, secrets)
        policy = cls(
            hosted=settings.hosted(reader),
            allowed_models=settings.allowed_models(reader),
            allow_any_hub=settings.allow_any_hub(reader),
            cache_dir=settings.hub_cache_dir(reader),
            cache_bytes=settings.hub_cache_bytes(reader),
            max_upload_bytes=settings.max_upload_bytes(reader),
            weight_budget_bytes=settings.weight_budget_bytes(reader),
        )
        if policy.hosted:
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
