"""The maths of reading parameters in the vocabulary: exact top-k pairs of factored V x V products (`topk`),
the factors of a head (`vocab_matmul`, `heads`), neuron and head tables (`projections`), every neuron of
a layer at once (`ffn_scan`, on CPU or CUDA via `devices`), singular directions of a head or an FFN layer
read in the vocabulary (`svd`), and t-SNE coordinates of tokens (`tsne`).

`tsne` is imported by name (`embspace.compute.tsne`), not re-exported here: it loads scikit-learn, and
importing any `embspace.compute` module runs this face (the CLI would pay for it on every command).
"""

from embspace.compute.devices import DEVICE_CHOICES, resolve_device
from embspace.compute.ffn_scan import SCAN_VECTORS, LayerNeuronTokens, NeuronScanner
from embspace.compute.heads import HEAD_KINDS, HeadKind, head_kind
from embspace.compute.projections import (
    NEURON_VECTOR_NAMES,
    PairTable,
    TokenScores,
    copying_score,
    copying_scores,
    embedding_gram,
    head_factors,
    head_top_pairs,
    neuron_top_tokens,
    neuron_vector_names,
)
from embspace.compute.svd import (
    SVD_KINDS,
    NeuronLoadings,
    SingularDirections,
    SvdDirection,
    SvdView,
    TokenEnds,
    dense_svd,
    factored_svd,
    singular_directions,
    svd_view,
)
from embspace.compute.topk import PairSearchError, TopPairs, brute_force_top_pairs, top_pairs
from embspace.compute.vocab_matmul import vocab_factors

__all__ = [
    "DEVICE_CHOICES",
    "HEAD_KINDS",
    "NEURON_VECTOR_NAMES",
    "SCAN_VECTORS",
    "SVD_KINDS",
    "HeadKind",
    "LayerNeuronTokens",
    "NeuronLoadings",
    "NeuronScanner",
    "PairSearchError",
    "PairTable",
    "SingularDirections",
    "SvdDirection",
    "SvdView",
    "TokenEnds",
    "TokenScores",
    "TopPairs",
    "brute_force_top_pairs",
    "copying_score",
    "embedding_gram",
    "copying_scores",
    "dense_svd",
    "factored_svd",
    "head_factors",
    "head_kind",
    "head_top_pairs",
    "neuron_top_tokens",
    "neuron_vector_names",
    "resolve_device",
    "singular_directions",
    "svd_view",
    "top_pairs",
    "vocab_factors",
]
