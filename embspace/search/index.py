"""Token search: where in the whole model a token is read (FFN K), written (FFN V) or paired (heads).

Two paths with one result shape (`SearchHit`):
- live (no atlas), exact: for FFN neurons the token's rank inside each neuron's vector, computed
  with a lower bound from a sample of the vocabulary that decides which neurons need their full
  row at all (`ffn_hits`); for heads the token's best partner and its rank in the partner's
  column (`head_hits`);
- atlas: the stored top-N lists, with the filters applied to the stored candidates (`atlas_hits`).

Rank, everywhere: 1 + the number of other tokens the filter keeps that score strictly higher.
- neuron-K / neuron-V: among the vocabulary, on this neuron's K·E (V·E): 1 = the neuron's top token.
  Live and atlas agree exactly (every token above a stored token is stored too).
- vo-row / qk-row (token as the row: attended-to / query token), live: the token's best partner
  column c* = argmax_c W[t, c]; rank = the token's position among all rows in column c*, so 1
  means (t, c*) is a mutual best pair. vo-col / qk-col: the same with rows and columns swapped.
  atlas: the position of the token's best pair among the head's stored top-N pairs (1 = the
  head's top pair) under the filters.
Best results first: rank ascending, then score descending.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from embspace.atlas.read import Atlas
from embspace.errors import EmbspaceError
from embspace.model.embedding_space import EmbeddingSpaceModel
from embspace.search.ffn import ffn_ranks
from embspace.search.filtered_vocab import FilteredVocab, FilteredVocabCache
from embspace.search.screen import StoredSample
from embspace.views import HEAD_VIEW_KINDS, SEARCH_KINDS, VIEW_KINDS, ViewSide, view_kind, view_side
from embspace.vocab.filters import PairFilter, VocabFilter

__all__ = ["SEARCH_KINDS", "QueryWord", "SearchHit", "SearchIndex", "query_tokens", "search", "sort_hits"]
NEURON_SIDES = VIEW_KINDS["neuron"].sides  # K, V


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

    def filtered_vocab(self, vocab_filter: VocabFilter | None) -> FilteredVocab:
        """The kept columns of E for `vocab_filter`, from the index's cache (the last few filters)."""
        return self.vocabularies.get(vocab_filter)


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
) -> list[SearchHit]:
    """Hits for every token of `words`: at most `limit` per (token, kind), best first overall."""
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
        hits = live_hits(model, token_ids, vocab_filter, pair_filter, limit, kinds, index)
    return sort_hits(hits)


def sort_hits(hits: list[SearchHit]) -> list[SearchHit]:
    return sorted(hits, key=lambda h: (h.rank, -h.score, SEARCH_KINDS.index(h.kind), h.layer, h.index, h.token_id))


# ---------------------------------------------------------------------------------------------
# Live


def live_hits(model, token_ids, vocab_filter, pair_filter, limit, kinds, index) -> list[SearchHit]:
    vocab = index.filtered_vocab(vocab_filter) if index is not None else FilteredVocab.build(model, vocab_filter)
    head_kinds = [kind for kind in SEARCH_KINDS if view_kind(kind).is_head and kind in kinds]
    hits: list[SearchHit] = []
    for token in token_ids:
        for side in NEURON_SIDES:
            if side.name in kinds:
                index = index or SearchIndex(model)
                hits += ffn_hits(model, index, side, token, vocab, limit)
        if head_kinds:
            hits += head_hits(model, head_kinds, token, vocab, pair_filter, limit)
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


def _head_maps(model: EmbeddingSpaceModel, kind: str, layer: int):
    """(as_row, as_col) for every head of a layer, W = Eᵀ A B E with A [h, d, dh], B [h, dh, d]:
    as_row(x [h, d]) = x A B (so W[t, c] = as_row(e_t) · e_c);
    as_col(y [h, d]) = A B y (so W[r, t] = e_r · as_col(e_t)).
    """
    weights = model.layer(layer)
    A, B = (weights.W_V, weights.W_O) if kind == "vo" else (weights.W_Q, weights.W_K.transpose(1, 2))

    def as_row(x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("hk,hkd->hd", torch.einsum("hd,hdk->hk", x, A), B)

    def as_col(y: torch.Tensor) -> torch.Tensor:
        return torch.einsum("hdk,hk->hd", A, torch.einsum("hkd,hd->hk", B, y))

    return as_row, as_col


def head_lines(
    model, kind: str, side: str, layer: int, token: int, vocab: FilteredVocab, pair_filter: PairFilter | None
):
    """For every head of `layer`: the token's best partner, the pair's score, and the token's rank in
    the partner's line (column for side "row", row for side "col"). Arrays [n_heads]; partner -1 = none."""
    as_row, as_col = _head_maps(model, kind, layer)
    n_heads = model.shape.n_heads
    first, second = (as_row, as_col) if side == "row" else (as_col, as_row)
    e_t = model.E[:, token].expand(n_heads, -1)  # [h, d]
    partner_scores = first(e_t) @ vocab.kept_E  # [h, V_kept]: W[t, c] (row) or W[r, t] (col)
    partners = _best_partners(model, token, partner_scores, vocab, pair_filter)  # [h] token ids, -1 = none
    valid = partners >= 0
    safe = np.where(valid, partners, token)
    line_scores = second(model.E[:, torch.from_numpy(safe)].T) @ vocab.kept_E  # [h, V_kept]: the partner's line
    own = int(vocab.column_of[token])
    direct = (first(e_t) * model.E[:, torch.from_numpy(safe)].T).sum(dim=1)  # [h], when the token is filtered out
    threshold = line_scores[:, own] if own >= 0 else direct
    ranks = 1 + (line_scores > threshold[:, None]).sum(dim=1).numpy()
    return partners, threshold.numpy().astype(np.float32), ranks, valid


def _best_partners(model, token, partner_scores, vocab: FilteredVocab, pair_filter: PairFilter | None) -> np.ndarray:
    """Best kept partner per head, skipping partners the pair filter drops (identical / near-identical)."""
    pair_filter = pair_filter or PairFilter()
    scores = partner_scores.clone()
    groups = pair_filter.same_groups(model.vocab)
    if groups is not None:
        same = torch.from_numpy(groups[vocab.allowed] == groups[token])
        scores[:, same] = float("-inf")
    near = pair_filter.near_identical(model.vocab)
    depth = min(scores.shape[1], 16 if near is not None else 1)
    if depth == 0:
        return np.full(scores.shape[0], -1, dtype=np.int64)
    values, columns = torch.topk(scores, depth, dim=1)
    candidates = vocab.allowed[columns.numpy()]  # [h, depth]
    ok = np.isfinite(values.numpy())
    if near is not None:
        flat = candidates.reshape(-1)
        ok &= ~near(np.full(flat.shape, token, dtype=np.int64), flat).reshape(candidates.shape)
    first_ok = np.argmax(ok, axis=1)
    return np.where(ok.any(axis=1), candidates[np.arange(len(candidates)), first_ok], -1)


def head_hits(model, head_kinds: list[str], token, vocab: FilteredVocab, pair_filter, limit) -> list[SearchHit]:
    """At most `limit` hits per kind in head_kinds ("vo-row", ...); layers outermost, so each is read once."""
    found: dict[str, list[SearchHit]] = {kind: [] for kind in head_kinds}
    display = model.vocab.display
    for layer in range(model.shape.n_layers):
        for name in head_kinds:
            side = view_side(name)
            partners, scores, ranks, valid = head_lines(model, side.kind, side.side, layer, token, vocab, pair_filter)
            found[name] += [
                SearchHit(
                    name,
                    layer,
                    int(h),
                    token,
                    display(token),
                    int(ranks[h]),
                    float(scores[h]),
                    int(partners[h]),
                    display(int(partners[h])),
                )
                for h in np.flatnonzero(valid)
            ]
    return [hit for hits in found.values() for hit in sort_hits(hits)[:limit]]


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
    pairs = atlas.all_head_pairs(kind)
    order = np.arange(len(pairs.rank))
    if (vocab_filter or VocabFilter()) != VocabFilter() or (pair_filter or PairFilter()) != PairFilter():
        kept_tokens = model.vocab_mask(vocab_filter)
        order = np.flatnonzero(
            (pair_filter or PairFilter()).keep_mask(model.vocab, pairs.row_id, pairs.col_id, kept_tokens)
        )
    order = order[np.lexsort((pairs.rank[order], pairs.head[order], pairs.layer[order]))]  # head by head, best first
    layer, head, score = pairs.layer[order], pairs.head[order], pairs.score[order]
    rows, cols = pairs.row_id[order], pairs.col_id[order]
    positions = np.arange(len(order))
    rank = 1 + positions - np.maximum.accumulate(np.where(_head_starts(layer, head), positions, 0))  # 1.. per head
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
                    "atlas",
                )
                for i in best
            ]
    return hits


def _head_starts(layer: np.ndarray, head: np.ndarray) -> np.ndarray:
    """bool [n]: entry i is the first of its head, in entries sorted by (layer, head)."""
    starts = np.ones(len(layer), dtype=bool)
    starts[1:] = (layer[1:] != layer[:-1]) | (head[1:] != head[:-1])
    return starts
