"""embspace: read a transformer's weights in the vocabulary (Dar, Geva, Gupta, Berant, ACL 2023).

The public API, the one the dashboard and notebooks use. Computation only: no UI imports here.

    >>> model = embspace.open_model(embspace.DEFAULT_MODEL)
    >>> tables = embspace.neuron_top_tokens(model, layer=3, neuron=17, k=10)  # {"K": TokenScores, "V": ...}
    >>> pairs = embspace.head_top_pairs(model, "vo", layer=5, head=7, k=20)  # PairTable, best first

The packages behind it, each with its own face: `embspace.model` (opening), `embspace.vocab` (tokens,
filters, corpora), `embspace.compute` (the maths), `embspace.atlas`, `embspace.search`,
`embspace.annotations`, and `embspace.views` (the kinds of view and their addresses). t-SNE coordinates
(`embspace.compute.tsne`) are left out of this face: they load scikit-learn, which the CLI never needs.
"""

from embspace.annotations import AnnotationKey, AnnotationStore, open_store
from embspace.atlas import Atlas, build_atlas, find_atlas
from embspace.compute import (
    HEAD_KINDS,
    NEURON_VECTOR_NAMES,
    SVD_KINDS,
    HeadKind,
    PairTable,
    SvdView,
    TokenScores,
    copying_score,
    copying_scores,
    head_kind,
    head_top_pairs,
    neuron_top_tokens,
    neuron_vector_names,
    svd_view,
)
from embspace.errors import EmbspaceError, ModelNotFound, ModelTooLarge, OutOfRange
from embspace.model import (
    DEFAULT_MODEL,
    EMBEDDING_CHOICES,
    MAX_K,
    EmbeddingSpaceModel,
    ModelInfo,
    ModelShape,
    open_model,
)
from embspace.search import CONCEPT_KINDS, CONCEPT_SCORE_RULE, ConceptHit, SearchHit, concepts, query_tokens, search
from embspace.views import (
    HEAD_VIEW_KINDS,
    SEARCH_KINDS,
    VIEW_KINDS,
    VIEW_SIDES,
    ViewKind,
    ViewSide,
    view_kind,
    view_side,
)
from embspace.vocab import ALPHABETS, DISPLAY_CONVENTION, PairFilter, VocabFilter

__all__ = [
    # the contract since 0.1 (never removed)
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
    # the model, its tokens and the kinds of view
    "DISPLAY_CONVENTION",
    "EMBEDDING_CHOICES",
    "MAX_K",
    "ModelShape",
    "HEAD_VIEW_KINDS",
    "SEARCH_KINDS",
    "VIEW_KINDS",
    "VIEW_SIDES",
    "ViewKind",
    "ViewSide",
    "view_kind",
    "view_side",
    # the maths of one view
    "HEAD_KINDS",
    "NEURON_VECTOR_NAMES",
    "HeadKind",
    "copying_score",
    "head_kind",
    "neuron_vector_names",
    # singular directions of a head or an FFN layer (Millidge & Black 2022)
    "SVD_KINDS",
    "SvdView",
    "svd_view",
    # the whole model at once: atlas and token search
    "Atlas",
    "build_atlas",
    "find_atlas",
    "SearchHit",
    "query_tokens",
    "search",
    # concepts: where a set of words lives
    "CONCEPT_KINDS",
    "CONCEPT_SCORE_RULE",
    "ConceptHit",
    "concepts",
    # annotations
    "AnnotationKey",
    "AnnotationStore",
    "open_store",
]
