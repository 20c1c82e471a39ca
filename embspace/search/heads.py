"""The live head side of token search and concepts: every head's exact top pairs under the filters, up to a bound.

A head hit means one thing on both paths: the position of the word's best pair among the head's top
pairs under the filters. The atlas stores each head's top N pairs; live computes them with
`compute.top_pairs` up to `bound` pairs per head (default HEAD_PAIRS_BOUND, the atlas's default N),
so a word whose best pair in a head ranks below the bound is no hit there, on either path.
Cost: one exact top-pairs search per head and kind (MiniLM, 72 heads: ~0.2 s each on 2 CPU cores),
so the lists are cached per (kind, filters, bound) in `HeadPairsCache` and reused by later queries.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from embspace.atlas.read import StoredPairs
from embspace.compute.projections import head_top_pairs
from embspace.model.embedding_space import EmbeddingSpaceModel
from embspace.vocab.filters import PairFilter, VocabFilter

HEAD_PAIRS_BOUND = 200  # pairs per head computed live: the atlas's default N, so both paths see the same lists
HEAD_CACHE_ENTRIES = 4  # (kind, filters, bound) entries kept


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
            n = len(found.scores)
            columns["layer"].append(np.full(n, layer, dtype=np.int32))
            columns["head"].append(np.full(n, head, dtype=np.int32))
            columns["rank"].append(np.arange(1, n + 1, dtype=np.int32))
            columns["row_id"].append(found.row_ids.astype(np.int32))
            columns["col_id"].append(found.col_ids.astype(np.int32))
            columns["score"].append(found.scores.astype(np.float32))
    return StoredPairs(**{name: np.concatenate(parts) for name, parts in columns.items()})


class HeadPairsCache:
    """The head pair lists of one model's last few (kind, filters, bound), safe to share between threads."""

    def __init__(self, model: EmbeddingSpaceModel, max_entries: int = HEAD_CACHE_ENTRIES):
        self._model = model
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, StoredPairs] = OrderedDict()  # least recently used first

    def get(
        self, kind: str, vocab_filter: VocabFilter | None, pair_filter: PairFilter | None, bound: int
    ) -> StoredPairs:
        key = (kind, vocab_filter or VocabFilter(), pair_filter or PairFilter(), bound)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        # Computed outside the lock, so other sessions' lookups go on.
        built = head_pair_lists(self._model, kind, vocab_filter, pair_filter, bound)
        with self._lock:
            self._entries[key] = built
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return built
