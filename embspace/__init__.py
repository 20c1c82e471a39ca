"""embspace: read a transformer's weights in the vocabulary (Dar, Geva, Gupta, Berant, ACL 2023).

Computation only: no UI imports here, so notebooks, the CLI and tests can all use it.
"""

from embspace.errors import EmbspaceError, ModelNotFound, ModelTooLarge, OutOfRange
from embspace.filters import ALPHABETS, PairFilter, VocabFilter
from embspace.model import EmbeddingSpaceModel, ModelInfo, open_model
from embspace.projections import (
    PairTable,
    TokenScores,
    copying_scores,
    head_top_pairs,
    neuron_top_tokens,
)
from embspace.sources import DEFAULT_MODEL

__all__ = [
    "ALPHABETS",
    "DEFAULT_MODEL",
    "EmbeddingSpaceModel",
    "EmbspaceError",
    "ModelInfo",
    "ModelNotFound",
    "ModelTooLarge",
    "OutOfRange",
    "PairFilter",
    "PairTable",
    "TokenScores",
    "VocabFilter",
    "copying_scores",
    "head_top_pairs",
    "neuron_top_tokens",
    "open_model",
]
