"""Opening a model, one rung per module: sources (where the files are) -> checkpoint (tensors on demand)
-> adapters (one architecture's names and splits) -> layout (the canonical per-head shapes)
-> embedding_space (`open_model`: config, tokenizer and E first, layers when asked for); beside them
hub_cache (`ModelCache`: a hosted app's own bounded, least-recently-used hub cache).
"""

from embspace.model.adapters import ADAPTERS, Adapter, UnsupportedArchitecture, adapter_for
from embspace.model.checkpoint import CheckpointError, TensorReader
from embspace.model.embedding_space import (
    EMBEDDING_CHOICES,
    MAX_K,
    EmbeddingSpaceModel,
    ModelInfo,
    check_index,
    check_k,
    open_model,
)
from embspace.model.hub_cache import ModelCache, repo_folder
from embspace.model.layout import LayerWeights, ModelShape
from embspace.model.sources import (
    DEFAULT_MODEL,
    DEFAULT_WEIGHT_BUDGET_BYTES,
    MODEL_PRESETS,
    ResolvedSource,
    resolve_source,
)

__all__ = [
    "ADAPTERS",
    "DEFAULT_MODEL",
    "DEFAULT_WEIGHT_BUDGET_BYTES",
    "EMBEDDING_CHOICES",
    "MAX_K",
    "MODEL_PRESETS",
    "Adapter",
    "CheckpointError",
    "EmbeddingSpaceModel",
    "LayerWeights",
    "ModelCache",
    "ModelInfo",
    "ModelShape",
    "ResolvedSource",
    "TensorReader",
    "UnsupportedArchitecture",
    "adapter_for",
    "check_index",
    "check_k",
    "open_model",
    "repo_folder",
    "resolve_source",
]
