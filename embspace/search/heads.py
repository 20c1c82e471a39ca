"""The live head side of token search and concepts: every head's exact top pairs under the filters, up to a bound.

A head hit means one thing on both paths: the position of the word's best pair among the head's top
pairs under the filters. The atlas stores each head's top N pairs; live computes them with
`compute.top_pairs` up to `bound` pairs per head (default HEAD_PAIRS_BOUND, the atlas's default N),
so a word whose best pair in a head ranks below the bound is no hit there, on either path.
Cost: one exact top-pairs search per head and kind (MiniLM, 72 heads: ~0.2 s each on 2 CPU cores),
so `SearchIndex` caches the lists per (kind, filters, bound) and later queries reuse them.
"""

from __future__ import annotations

import numpy as np

from embspace.atlas.manifest import head_pair_columns
from embspace.atlas.read import StoredPairs
from embspace.compute.projections import head_top_pairs
from embspace.model.embedding_space import EmbeddingSpaceModel
from embspace.vocab.filters import PairFilter, VocabFilter

HEAD_PAIRS_BOUND = 200  # pairs per head computed live: the atlas's default N, so both paths see the same lists


def head_bound_note(bound: int = HEAD_PAIRS_BOUND) -> str:
    """One line the CLI and the search page show: how live head ranks are bounded."""
    return (
        f"heads: the position of the word's best pair among the head's exact top {bound} pairs under the filters "
        f"(a word whose best pair ranks below {bound} is no hit in that head)"
    )


def head_pair_lists(
    model: EmbeddingSpaceModel,
    kind: str,
    vocab_filter: VocabFilter | None,
    pair_filter: PairFilter | None,
    bound: int = HEAD_PAIRS_BOUND,
) -> StoredPairs:
    """Every head's exact top `bound` pairs of W_VO / W_QK ("vo"/"qk") under the filters, as the atlas
    holds its stored pairs: arrays [n_layers * n_heads * bound], ordered by layer, head, rank."""
    columns: dict[str, list[np.ndarray]] = {name: [] for name in ("layer", "head", "rank", "row_id", "col_id", "score")}
    for layer in range(model.shape.n_layers):
        for head in range(model.shape.n_heads):
            found = head_top_pairs(model, kind, layer, head, bound, vocab_filter, pair_filter)
            for name, values in head_pair_columns(found, layer, head).items():
                columns[name].append(values)
    return StoredPairs(**{name: np.concatenate(parts) for name, parts in columns.items()})
