"""Token search: where in the whole model a token is read (FFN K), written (FFN V) or paired (heads).

Two paths with one result shape (`SearchHit`):
- live (no atlas), exact: for FFN neurons the token's rank inside each neuron's vector, computed
  with a lower bound from a sample of the vocabulary that decides which neurons need their full
  row at all (`ffn_hits`); for heads every head's exact top pairs under the filters, up to a bound
  (`search.heads`: `head_bound` pairs per head, default 200, cached per filter in the index);
- atlas: the stored top-N lists, with the filters applied to the stored candidates (`atlas_hits`).

Rank, everywhere: 1 + the number of other tokens the filter keeps that score strictly higher.
- neuron-K / neuron-V: among the vocabulary, on this neuron's K·E (V·E): 1 = the neuron's top token.
  Live and atlas agree exactly (every token above a stored token is stored too).
- vo-row / qk-row (token as the row: attended-to / query token), vo-col / qk-col (as the column),
  on both paths: the position of the token's best pair (on that side) among the head's top pairs
  under the filters (1 = the head's top pair). Live ranks among the head's exact top `head_bound`
  pairs, the atlas among its stored top N: a token whose best pair ranks below the bound is no hit
  in that head. With head_bound = the atlas's N both paths give the same hits.
Best results first: rank ascending, then score descending.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from embspace.atlas.read import Atlas, StoredPairs
from embspace.errors import EmbspaceError
from embspace.model.embedding_space import EmbeddingSpaceModel
from embspace.search.ffn import ffn_ranks
from embspace.search.filtered_vocab import FilteredVocab, FilteredVocabCache
from embspace.search.heads import HEAD_PAIRS_BOUND, head_pair_lists
from embspace.search.neuron_tops import neuron_top_tokens
from embspace.search.screen import StoredSample
from embspace.search.shared_cache import SharedCache
from embspace.views import HEAD_VIEW_KINDS, SEARCH_KINDS, VIEW_KINDS, ViewSide
from embspace.vocab.filters import PairFilter, VocabFilter

__all__ = ["SEARCH_KINDS", "QueryWord", "SearchHit", "SearchIndex", "query_tokens", "search", "sort_hits"]
NEURON_SIDES = VIEW_KINDS["neuron"].sides  # K, V
RESULT_ENTRIES = 12  # cached per-filter results (MiniLM: head pairs 0.2 MB, neuron tops 3.7 MB per entry)


@dataclass(frozen=True)
class SearchHit:
    """One place the token shows up; partner_* is the best pair's other token (heads only)."""

    kind: str
    layer: int
    index: int  # neuron or head
    token_id: int
    token: str
    rank: int
    score: float
    partner_id: int | None = None
    partner_token: str | None = None
    source: str = "live"  # "live" or "atlas"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class QueryWord:
    """A word as the user typed it and the tokens the tokenizer makes of it."""

    word: str
    token_ids: tuple[int, ...]
    tokens: tuple[str, ...]


def query_tokens(model: EmbeddingSpaceModel, words: list[str]) -> list[QueryWord]:
    """Each word's tokens: a raw vocabulary token ("##ami", "Ġkot") as itself; else the word as it
    appears after a space in running text (the word-start form), split into its tokens."""
    vocab = model.tokenizer.get_vocab()
    found = []
    for word in (w.strip() for w in words):
        if not word:
            continue
        if word in vocab and vocab[word] < model.vocab.size:
            ids = [vocab[word]]
        else:
            ids = _encode(model, " " + word) or _encode(model, word)
        if not ids:
            raise EmbspaceError(f"{word!r} makes no token in this model's vocabulary.")
        found.append(QueryWord(word, tuple(ids), tuple(model.vocab.display(i) for i in ids)))
    return found


def _encode(model: EmbeddingSpaceModel, text: str) -> list[int]:
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    return [i for i in ids if i < model.vocab.size and model.vocab.text[i].strip()]


class SearchIndex:
    """Every layer's FFN keys and values stacked in memory, so a search never rereads the weights.

    keys, values: float32 [n_layers * d_ff, d_model] (GPT-2 medium: 403 MB each; MiniLM: 14 MB each).
    Build once per model (the dashboard caches it) and search many times, from any number of threads:
    nothing here changes after construction except the lock-protected cache of filtered vocabularies.
    """

    def __init__(self, model: EmbeddingSpaceModel):
        self.model = model
        layers = [model.layer(i) for i in range(model.shape.n_layers)]
        self.d_ff = model.shape.d_ff
        self.sides = {
            "K": torch.cat([w.ffn_keys for w in layers]).contiguous(),
            "V": torch.cat([w.ffn_values for w in layers]).contiguous(),
        }
        self.row_norms = {side: torch.linalg.vector_norm(m, dim=1) for side, m in self.sides.items()}  # [N]
        self.screens = {side: StoredSample.build(m, model.E) for side, m in self.sides.items()}
        self.max_token_norm = float(torch.linalg.vector_norm(model.embedding_rows, dim=1).max())
        self.vocabularies = FilteredVocabCache(model)
        self.results = SharedCache(RESULT_ENTRIES)  # head pair lists, neuron top-k ids, SVD lists: per filter

    def filtered_vocab(self, vocab_filter: VocabFilter | None) -> FilteredVocab:
        """The kept columns of E for `vocab_filter`, from the index's cache (the last few filters)."""
        return self.vocabularies.get(vocab_filter)

    def head_pair_lists(
        self, kind: str, vocab_filter: VocabFilter | None, pair_filter: PairFilter | None, bound: int
    ) -> StoredPairs:
        """Every head's exact top `bound` pairs of `kind` under the filters, from the index's cache."""
        key = ("head pairs", kind, vocab_filter or VocabFilter(), pair_filter or PairFilter(), bound)
        return self.results.get(key, lambda: head_pair_lists(self.model, kind, vocab_filter, pair_filter, bound))

    def neuron_top_tokens(self, side: str, vocab_filter: VocabFilter | None, k: int) -> np.ndarray:
        """int64 [n_layers * d_ff, k]: every neuron's top-k token ids on `side` ("K"/"V"), from the cache."""
        key = ("neuron tops", side, vocab_filter or VocabFilter(), k)
        return self.results.get(key, lambda: neuron_top_tokens(self.sides[side], self.filtered_vocab(vocab_filter), k))


def search(
    model: EmbeddingSpaceModel,
    words: list[str],
    *,
    vocab_filter: VocabFilter | None = None,
    pair_filter: PairFilter | None = None,
    limit: int = 10,
    kinds: tuple[str, ...] = SEARCH_KINDS,
    atlas: Atlas | None = None,
    index: SearchIndex | None = None,
    head_bound: int = HEAD_PAIRS_BOUND,
) -> list[SearchHit]:
    """Hits for every token of `words`: at most `limit` per (token, kind), best first overall.

    head_bound: live only, the top pairs computed per head (a head hit's rank is at most this).
    """
    if model.info.embedding == "input-output":
        raise EmbspaceError(
            "token search reads every neuron and head through one embedding matrix: open the model with "
            "--embedding input or output (the dashboard's sidebar: Embedding matrix E) to search it."
        )
    unknown = set(kinds) - set(SEARCH_KINDS)
    if unknown:
        raise EmbspaceError(f"unknown search kinds {sorted(unknown)}; choose from {', '.join(SEARCH_KINDS)}.")
    token_ids = sorted({i for word in query_tokens(model, words) for i in word.token_ids})
    if atlas is not None:
        hits = atlas_hits(atlas, model, token_ids, vocab_filter, pair_filter, limit, kinds)
    else:
        hits = live_hits(model, token_ids, vocab_filter, pair_filter, limit, kinds, index, head_bound)
    return sort_hits(hits)


def sort_hits(hits: list[SearchHit]) -> list[SearchHit]:
    return sorted(hits, key=lambda h: (h.rank, -h.score, SEARCH_KINDS.index(h.kind), h.layer, h.index, h.token_id))


# ---------------------------------------------------------------------------------------------
# Live


def live_hits(model, token_ids, vocab_filter, pair_filter, limit, kinds, index, head_bound) -> list[SearchHit]:
    hits: list[SearchHit] = []
    sides = [side for side in NEURON_SIDES if side.name in kinds]
    if sides:
        index = index or SearchIndex(model)
        vocab = index.filtered_vocab(vocab_filter)
        hits += [
            hit for token in token_ids for side in sides for hit in ffn_hits(model, index, side, token, vocab, limit)
        ]
    for kind in HEAD_VIEW_KINDS:
        wanted = [side for side in VIEW_KINDS[kind].sides if side.name in kinds]
        if wanted:
            pairs = (
                index.head_pair_lists(kind, vocab_filter, pair_filter, head_bound)
                if index is not None
                else head_pair_lists(model, kind, vocab_filter, pair_filter, head_bound)
            )
            hits += pair_hits(pairs, model, wanted, token_ids, limit, "live")
    return hits


def ffn_hits(
    model, index: SearchIndex, side: ViewSide, token: int, vocab: FilteredVocab, limit: int
) -> list[SearchHit]:
    """The `limit` neurons where `token` ranks best on `side` (neuron-K or neuron-V), exactly."""
    rows, ranks, scores = ffn_ranks(
        index.sides[side.side],
        index.row_norms[side.side],
        index.max_token_norm,
        model.E[:, token],
        vocab,
        token,
        limit,
        index.screens[side.side],
    )
    display = model.vocab.display(token)
    return [
        SearchHit(side.name, int(r) // index.d_ff, int(r) % index.d_ff, token, display, int(rank), float(score))
        for r, rank, score in zip(rows, ranks, scores, strict=True)
    ]


# ---------------------------------------------------------------------------------------------
# Atlas


def atlas_hits(atlas: Atlas, model, token_ids, vocab_filter, pair_filter, limit, kinds) -> list[SearchHit]:
    hits: list[SearchHit] = []
    sides = [side for side in NEURON_SIDES if side.name in kinds]
    if sides:
        hits += _atlas_neuron_hits(atlas, model, token_ids, vocab_filter, sides, limit)
    for kind in HEAD_VIEW_KINDS:
        wanted = [side for side in VIEW_KINDS[kind].sides if side.name in kinds]
        if wanted:
            hits += _atlas_head_hits(atlas, model, kind, wanted, token_ids, vocab_filter, pair_filter, limit)
    return hits


def _atlas_neuron_hits(atlas: Atlas, model, token_ids, vocab_filter, sides: list[ViewSide], limit) -> list[SearchHit]:
    """Stored neuron lists holding the token; its rank recounted among the stored tokens above it
    that the filter keeps (exact: every token scoring above a stored one is stored too)."""
    # The stored lists already use the default filter: another one recounts the ranks.
    recount = (vocab_filter or VocabFilter()) != VocabFilter()
    places = atlas.neuron_places(
        token_ids, [side.side for side in sides], model.vocab_mask(vocab_filter) if recount else None
    )
    hits = []
    for token in np.unique(places.token_id):
        for side in sides:
            mine = np.flatnonzero((places.token_id == token) & (places.vector == side.side))
            order = np.lexsort((places.neuron[mine], places.layer[mine], -places.score[mine], places.rank[mine]))
            hits += [
                SearchHit(
                    side.name,
                    int(places.layer[i]),
                    int(places.neuron[i]),
                    int(token),
                    model.vocab.display(int(token)),
                    int(places.rank[i]),
                    float(places.score[i]),
                    source="atlas",
                )
                for i in mine[order[:limit]]
            ]
    return hits


def _atlas_head_hits(
    atlas: Atlas, model, kind: str, sides: list[ViewSide], token_ids, vocab_filter, pair_filter, limit
) -> list[SearchHit]:
    """The token's best stored pair per head (as row / column), ranked among the head's stored pairs
    that pass the filters."""
    pairs = filtered_pairs(atlas.all_head_pairs(kind), model, vocab_filter, pair_filter)
    return pair_hits(pairs, model, sides, token_ids, limit, "atlas")


def filtered_pairs(pairs: StoredPairs, model, vocab_filter, pair_filter) -> StoredPairs:
    """The stored pairs both filters keep (all of them under the default filters, which built the atlas)."""
    if (vocab_filter or VocabFilter()) == VocabFilter() and (pair_filter or PairFilter()) == PairFilter():
        return pairs
    keep = (pair_filter or PairFilter()).keep_mask(
        model.vocab, pairs.row_id, pairs.col_id, model.vocab_mask(vocab_filter)
    )
    return StoredPairs(**{name: values[keep] for name, values in vars(pairs).items()})


def head_ranks(pairs: StoredPairs) -> tuple[np.ndarray, np.ndarray]:
    """(order, rank): the pairs' positions sorted head by head, best first, and each one's rank 1.. in its head."""
    order = np.lexsort((pairs.rank, pairs.head, pairs.layer))
    layer, head = pairs.layer[order], pairs.head[order]
    positions = np.arange(len(order))
    rank = 1 + positions - np.maximum.accumulate(np.where(_head_starts(layer, head), positions, 0))
    return order, rank


def pair_hits(pairs: StoredPairs, model, sides: list[ViewSide], token_ids, limit, source: str) -> list[SearchHit]:
    """At most `limit` hits per (side, token): the token's best pair in each head, ranked among the head's
    pairs (already filtered), rank ascending then score descending."""
    order, rank = head_ranks(pairs)
    layer, head, score = pairs.layer[order], pairs.head[order], pairs.score[order]
    rows, cols = pairs.row_id[order], pairs.col_id[order]
    hits = []
    display = model.vocab.display
    for side in sides:
        own, other = (rows, cols) if side.side == "row" else (cols, rows)
        for token in token_ids:
            mine = np.flatnonzero(own == token)
            mine = mine[_head_starts(layer[mine], head[mine])]  # the token's best pair in each head
            best = mine[np.lexsort((-score[mine], rank[mine]))[:limit]]
            hits += [
                SearchHit(
                    side.name,
                    int(layer[i]),
                    int(head[i]),
                    int(token),
                    display(int(token)),
                    int(rank[i]),
                    float(score[i]),
                    int(other[i]),
                    display(int(other[i])),
                    source,
                )
                for i in best
            ]
    return hits


def _head_starts(layer: np.ndarray, head: np.ndarray) -> np.ndarray:
    """bool [n]: entry i is the first of its head, in entries sorted by (layer, head)."""
    starts = np.ones(len(layer), dtype=bool)
    starts[1:] = (layer[1:] != layer[:-1]) | (head[1:] != head[:-1])
    return starts
