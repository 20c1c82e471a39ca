"""Concepts: where a whole semantic field lives. Given several words, rank every unit by how strongly
its top k concentrates on them.

A unit's top k, under the filters:
- neuron-K / neuron-V: the neuron's top-k tokens of K·E / V·E (the atlas's stored lists);
- vo-read / vo-write, qk-query / qk-key: the distinct tokens on that side (W_VO row = attended-to token,
  column = written token; W_QK row = query, column = key) of the head's top pairs, in order of their best
  pair, the first k of them. The pairs are the head's exact top pairs up to a bound (the atlas's N, or
  `head_bound` live, as token search's head hits);
- svd-ov, svd-qk, svd-ffn-in, svd-ffn-out: one end ("left +" = E·u_i, "left -" = E·(-u_i), "right +",
  "right -") of one of the first `directions` singular directions (`compute.svd`), its top-k tokens.
Score (CONCEPT_SCORE_RULE): units with more hits first (hits = the words' tokens in the unit's top k; a word
split into several tokens counts each), then the lower score = the mean rank (1 = top) of the hitting
tokens. A word hits when one of its tokens does; tokens the vocabulary filter drops never hit.
From an atlas (its stored lists, its N as the bound; k <= N) or live; both give the same units.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from embspace.atlas.manifest import SVD_DIRECTIONS
from embspace.atlas.read import Atlas, StoredPairs
from embspace.atlas.units import svd_token_lists
from embspace.errors import EmbspaceError
from embspace.model.embedding_space import EmbeddingSpaceModel
from embspace.search.heads import HEAD_PAIRS_BOUND, head_pair_lists
from embspace.search.index import SearchIndex, filtered_pairs, head_ranks, query_tokens
from embspace.vocab.filters import PairFilter, VocabFilter

CONCEPT_KINDS = (
    "neuron-K",
    "neuron-V",
    "vo-read",
    "vo-write",
    "qk-query",
    "qk-key",
    "svd-ov",
    "svd-qk",
    "svd-ffn-in",
    "svd-ffn-out",
)
HEAD_CONCEPT_SIDES = {
    "vo-read": ("vo", "row"),
    "vo-write": ("vo", "col"),
    "qk-query": ("qk", "row"),
    "qk-key": ("qk", "col"),
}
SVD_MATRICES = {"svd-ov": "ov", "svd-qk": "qk", "svd-ffn-in": "ffn-in", "svd-ffn-out": "ffn-out"}
DEFAULT_CONCEPT_K = 50
DEFAULT_CONCEPT_LIMIT = 20
CONCEPT_SCORE_RULE = (
    "units with more hits first (hits = how many of the words' tokens are in the unit's top k), "
    "then the lower score (the mean rank of those tokens in the top k, 1 = the unit's top token)"
)
PLACE_COLUMNS = ["kind", "layer", "index", "direction", "side", "token_id", "rank"]  # one token in one unit's top k


@dataclass(frozen=True)
class ConceptHit:
    """One unit whose top k holds some of the words: the CLI's `--json` record (keys kept exactly)."""

    kind: str  # one of CONCEPT_KINDS
    layer: int
    index: int | None  # the neuron or head; None for svd-ffn-in / svd-ffn-out (a layer's matrix)
    direction: int | None  # the singular direction (0 = largest); None unless an SVD kind
    hits: int  # the words' tokens in the top k
    score: float  # mean rank of those tokens in the top k (1 = top); lower is better
    words: tuple[str, ...]  # the words that hit, as typed
    side: str | None = None  # SVD kinds: which end holds them, "left +", "left -", "right +" or "right -"
    source: str = "live"  # "live" or "atlas"

    def as_dict(self) -> dict:
        record = asdict(self)
        record["words"] = list(self.words)
        return record


def split_words(text: str) -> list[str]:
    """Words typed or read from a file: one per line, or separated by commas; blanks dropped."""
    return [word.strip() for line in text.splitlines() for word in line.split(",") if word.strip()]


def concepts(
    model: EmbeddingSpaceModel,
    words: list[str],
    *,
    k: int = DEFAULT_CONCEPT_K,
    limit: int = DEFAULT_CONCEPT_LIMIT,
    vocab_filter: VocabFilter | None = None,
    pair_filter: PairFilter | None = None,
    kinds: tuple[str, ...] = CONCEPT_KINDS,
    atlas: Atlas | None = None,
    index: SearchIndex | None = None,
    head_bound: int = HEAD_PAIRS_BOUND,
    directions: int = SVD_DIRECTIONS,
) -> list[ConceptHit]:
    """The `limit` units whose top k concentrates most on `words`, best first (see the module docstring).

    atlas: answer from its stored lists (k must be at most its N; head_bound and directions are then its own;
    an atlas built before the SVD table gets its SVD kinds computed live). index: the live path's cache.
    """
    check_concept_query(model, k, limit, kinds)
    queried = query_tokens(model, words)
    kept = model.vocab_mask(vocab_filter)
    token_ids = sorted({t for word in queried for t in word.token_ids if kept[t]})  # dropped tokens never hit
    if atlas is not None:
        if k > atlas.k:
            raise EmbspaceError(f"k {k} is more than the atlas's N = {atlas.k}: ask for k <= {atlas.k}, or go live.")
        places, sources = atlas_places(atlas, model, token_ids, k, vocab_filter, pair_filter, kinds)
    else:
        index = index or (SearchIndex(model) if {"neuron-K", "neuron-V"} & set(kinds) else None)
        places = live_places(model, token_ids, k, vocab_filter, pair_filter, kinds, index, head_bound, directions)
        sources = None
    return rank_units(places, queried, limit, sources)


def check_concept_query(model: EmbeddingSpaceModel, k: int, limit: int, kinds: tuple[str, ...]) -> None:
    if model.info.embedding == "input-output":
        raise EmbspaceError(
            "concepts read every unit through one embedding matrix: open the model with --embedding input or output."
        )
    if k < 1 or limit < 1:
        raise EmbspaceError(f"k and limit must be at least 1, not {k} and {limit}.")
    unknown = set(kinds) - set(CONCEPT_KINDS)
    if unknown:
        raise EmbspaceError(f"unknown concept kinds {sorted(unknown)}; choose from {', '.join(CONCEPT_KINDS)}.")


def rank_units(places: pd.DataFrame, queried, limit: int, sources: dict[str, str]) -> list[ConceptHit]:
    """Group the places by unit, score each unit (CONCEPT_SCORE_RULE), keep the best `limit`."""
    if places.empty:
        return []
    keys = ["kind", "layer", "index", "direction", "side"]
    grouped = places.groupby(keys, sort=False)
    units = grouped.agg(hits=("token_id", "size"), score=("rank", "mean"), tokens=("token_id", frozenset))
    units = units.reset_index().assign(order=lambda frame: frame["kind"].map(CONCEPT_KINDS.index))
    order = ["hits", "score", "order", "layer", "index", "direction", "side"]
    units = units.sort_values(order, ascending=[False, *[True] * (len(order) - 1)]).head(limit)
    default_source = "atlas" if sources is not None else "live"
    return [
        ConceptHit(
            kind=unit["kind"],
            layer=int(unit["layer"]),
            index=None if unit["index"] < 0 else int(unit["index"]),
            direction=None if unit["direction"] < 0 else int(unit["direction"]),
            hits=int(unit["hits"]),
            score=float(unit["score"]),
            words=tuple(word.word for word in queried if unit["tokens"] & set(word.token_ids)),
            side=unit["side"] or None,
            source=(sources or {}).get(unit["kind"], default_source),
        )
        for unit in units.to_dict("records")
    ]


# ---------------------------------------------------------------------------------------------
# Places: which query token stands where in which unit's top k (PLACE_COLUMNS), on each path


def live_places(
    model, token_ids, k, vocab_filter, pair_filter, kinds, index: SearchIndex | None, head_bound, directions
) -> pd.DataFrame:
    parts = [
        neuron_places_live(index, side, token_ids, vocab_filter, k) for side in ("K", "V") if f"neuron-{side}" in kinds
    ]
    for kind in ("vo", "qk"):
        sides = [name for name, (of, _) in HEAD_CONCEPT_SIDES.items() if of == kind and name in kinds]
        if sides:
            pairs = (
                index.head_pair_lists(kind, vocab_filter, pair_filter, head_bound)
                if index is not None
                else head_pair_lists(model, kind, vocab_filter, pair_filter, head_bound)
            )
            parts += [head_side_places(pairs, name, token_ids, k) for name in sides]
    parts += [
        svd_places_live(model, name, token_ids, k, vocab_filter, directions, index)
        for name in SVD_MATRICES
        if name in kinds
    ]
    return _concat(parts)


def atlas_places(atlas: Atlas, model, token_ids, k, vocab_filter, pair_filter, kinds) -> tuple[pd.DataFrame, dict]:
    """Places from the atlas, and {kind: "live"} for the SVD kinds of an atlas built before the SVD table."""
    vectors = [side for side in ("K", "V") if f"neuron-{side}" in kinds]
    parts, sources = [], {}
    if vectors:
        parts.append(neuron_places_atlas(atlas, model, token_ids, vectors, vocab_filter, k))
    for kind in ("vo", "qk"):
        sides = [name for name, (of, _) in HEAD_CONCEPT_SIDES.items() if of == kind and name in kinds]
        if sides:
            pairs = filtered_pairs(atlas.all_head_pairs(kind), model, vocab_filter, pair_filter)
            parts += [head_side_places(pairs, name, token_ids, k) for name in sides]
    svd_kinds = [name for name in SVD_MATRICES if name in kinds]
    if svd_kinds:
        stored = svd_places_atlas(atlas, model, token_ids, k, vocab_filter)
        if stored is None:  # built before the SVD table: the directions are cheap to compute live
            directions = int(atlas.manifest.get("svd_directions", SVD_DIRECTIONS))
            parts += [svd_places_live(model, name, token_ids, k, vocab_filter, directions) for name in svd_kinds]
            sources = dict.fromkeys(svd_kinds, "live")
        else:
            parts.append(stored[stored["kind"].isin(svd_kinds)])
    return _concat(parts), sources


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [part[PLACE_COLUMNS] for part in parts if len(part)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=PLACE_COLUMNS)


def _places(kind: str, layer, index, direction, side, token_id, rank) -> pd.DataFrame:
    """A places frame; scalar arguments are broadcast to the length of token_id."""
    n = len(token_id)
    return pd.DataFrame(
        {
            "kind": kind,
            "layer": np.broadcast_to(layer, n).astype(np.int64),
            "index": np.broadcast_to(index, n).astype(np.int64),
            "direction": np.broadcast_to(direction, n).astype(np.int64),
            "side": np.broadcast_to(np.asarray(side, dtype=object), n),
            "token_id": np.asarray(token_id, dtype=np.int64),
            "rank": np.asarray(rank, dtype=np.int64),
        },
        columns=PLACE_COLUMNS,
    )


def neuron_places_live(index: SearchIndex, side: str, token_ids, vocab_filter, k: int) -> pd.DataFrame:
    """Neurons (all layers) holding a query token in their top k on `side`, from every neuron's top-k ids."""
    tops = index.neuron_top_tokens(side, vocab_filter, k)  # [N, k]
    rows, positions = np.nonzero(np.isin(tops, token_ids))
    return _places(
        f"neuron-{side}", rows // index.d_ff, rows % index.d_ff, -1, "", tops[rows, positions], positions + 1
    )


def neuron_places_atlas(atlas: Atlas, model, token_ids, vectors: list[str], vocab_filter, k: int) -> pd.DataFrame:
    recount = (vocab_filter or VocabFilter()) != VocabFilter()  # the lists were stored under the default filter
    found = atlas.neuron_places(token_ids, vectors, model.vocab_mask(vocab_filter) if recount else None)
    within = found.rank <= k
    kinds = np.array([f"neuron-{v}" for v in found.vector[within]], dtype=object)
    frame = _places("", found.layer[within], found.neuron[within], -1, "", found.token_id[within], found.rank[within])
    frame["kind"] = kinds
    return frame


def head_side_places(pairs: StoredPairs, name: str, token_ids, k: int) -> pd.DataFrame:
    """Heads whose side's top k (the distinct tokens on that side of its pairs, by best pair) holds a token."""
    side = HEAD_CONCEPT_SIDES[name][1]
    order, _ = head_ranks(pairs)
    frame = pd.DataFrame(
        {
            "layer": pairs.layer[order],
            "head": pairs.head[order],
            "token_id": (pairs.row_id if side == "row" else pairs.col_id)[order],
        }
    )
    firsts = frame.drop_duplicates(["layer", "head", "token_id"])  # each token at its best pair, in order
    rank = firsts.groupby(["layer", "head"], sort=False).cumcount().to_numpy() + 1
    mine = (rank <= k) & firsts["token_id"].isin(token_ids).to_numpy()
    firsts = firsts[mine]
    return _places(name, firsts["layer"].to_numpy(), firsts["head"].to_numpy(), -1, "", firsts["token_id"], rank[mine])


def svd_places_live(
    model, name: str, token_ids, k: int, vocab_filter, directions: int, index: SearchIndex | None = None
) -> pd.DataFrame:
    """Every matrix of SVD kind `name`: the ends of its first `directions` directions holding a query token."""
    key = ("svd lists", name, vocab_filter or VocabFilter(), k, directions)
    compute = functools.partial(svd_lists, model, name, k, vocab_filter, directions)
    lists = index.results.get(key, compute) if index is not None else compute()
    mine = np.isin(lists["token_id"], token_ids)
    return _svd_frame({column: values[mine] for column, values in lists.items()})


def svd_lists(model, name: str, k: int, vocab_filter, directions: int) -> dict[str, np.ndarray]:
    """SVD_SCHEMA columns of every matrix of SVD kind `name` (every head's, or every layer's FFN one)."""
    matrix = SVD_MATRICES[name]
    heads = range(model.shape.n_heads) if matrix in ("ov", "qk") else [None]
    parts = [
        svd_token_lists(model, matrix, layer, head, directions, k, vocab_filter)
        for layer in range(model.shape.n_layers)
        for head in heads
    ]
    return {column: np.concatenate([part[column] for part in parts]) for column in parts[0]}


def _svd_frame(columns) -> pd.DataFrame:
    """Places from SVD_SCHEMA columns (dict of arrays or a frame)."""
    side = np.asarray(columns["side"], dtype=object) + " " + np.asarray(columns["end"], dtype=object)
    frame = _places(
        "", columns["layer"], columns["head"], columns["direction"], side, columns["token_id"], columns["rank"]
    )
    frame["kind"] = np.asarray(columns["kind"], dtype=object)
    return frame


def svd_places_atlas(atlas: Atlas, model, token_ids, k: int, vocab_filter) -> pd.DataFrame | None:
    """The stored SVD ends holding a query token within their top k under the filter; None: no SVD table."""
    if (vocab_filter or VocabFilter()) == VocabFilter():
        stored = atlas.svd_tokens(token_ids)
        return None if stored is None else _svd_frame(stored[stored["rank"] <= k])
    stored = atlas.svd_tokens()
    if stored is None:
        return None
    # Another filter: renumber each end's stored tokens that the filter keeps (exact: the stored lists are
    # each end's top N under the default filter, so the kept ones are the top of the filtered list).
    stored = stored[model.vocab_mask(vocab_filter)[stored["token_id"].to_numpy()]].sort_values("rank", kind="stable")
    ends = ["kind", "layer", "head", "direction", "side", "end"]
    stored = stored.assign(rank=stored.groupby(ends, sort=False).cumcount() + 1)
    return _svd_frame(stored[(stored["rank"] <= k) & stored["token_id"].isin(token_ids)])
