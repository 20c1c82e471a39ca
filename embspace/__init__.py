"""embspace: read a transformer's weights in the vocabulary (Dar, Geva, Gupta, Berant, ACL 2023).

Computation only: no UI imports here, so notebooks, the CLI and tests can all use it.
"""

from embspace.compute.projections import (
    PairTable,
    TokenScores,
    copying_scores,
    head_top_pairs,
    neuron_top_tokens,
)
from embspace.errors import EmbspaceError, ModelNotFound, ModelTooLarge, OutOfRange
from embspace.model.embedding_space import EmbeddingSpaceModel, ModelInfo, open_model
from embspace.model.sources import DEFAULT_MODEL
from embspace.vocab.filters import ALPHABETS, PairFilter, VocabFilter

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
