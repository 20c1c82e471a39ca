"""A stop's view computed by the engine: its filters as `VocabFilter` / `PairFilter`, its table and its tokens.

The dashboard and the CLI share `stop_filters` so a stop shows the same rows wherever it is opened.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embspace.compute import head_top_pairs, neuron_top_tokens
from embspace.model import EmbeddingSpaceModel
from embspace.tours.tour import TourStop
from embspace.views import VIEW_KINDS
from embspace.vocab import PairFilter, VocabFilter

DEFAULT_STOP_K = 20  # rows of a stop that names no k


@dataclass(frozen=True)
class StopFilters:
    """A stop's filters in the engine's terms (FILTER_OPTIONS keys of the tour file)."""

    vocab_filter: VocabFilter
    pair_filter: PairFilter
    negative: bool = False
    embedding: str = "auto"  # the model's embedding choice (open_model's `embedding`)


def stop_filters(stop: TourStop) -> StopFilters:
    """The VocabFilter, PairFilter, sign and embedding that `stop.filters` name (unset: the CLI's defaults)."""
    options = stop.filters
    vocab_filter = VocabFilter(
        only_ascii=bool(options.get("only-ascii", False)),
        only_alnum=bool(options.get("only-alnum", False)),
        alphabet=str(options.get("alphabet", "latin")),
        exclude_special=not options.get("keep-special", False),
    )
    pair_filter = PairFilter(
        exclude_same=bool(options.get("exclude-same", False)), exclude_fuzzy=bool(options.get("exclude-fuzzy", False))
    )
    return StopFilters(
        vocab_filter, pair_filter, bool(options.get("negative", False)), str(options.get("embedding", "auto"))
    )


@dataclass(frozen=True)
class StopTable:
    """A stop's table as plain rows (what a static page or a terminal prints) and the tokens to place in a plot."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]  # display strings, scores already formatted
    token_ids: np.ndarray  # int64 [n]: the plotted tokens (a token may appear once per group)
    labels: tuple[str, ...]  # [n]
    scores: np.ndarray  # float64 [n]
    groups: tuple[str, ...]  # [n]: "K"/"V" for a neuron, "row token"/"column token" for a head


def stop_title(stop: TourStop, label: str | None = None) -> str:
    """ "L5 H7 · W_VO" / "L3 N17 · FFN neuron", with the view's label after a dash when given."""
    unit = "N" if stop.kind == "neuron" else "H"
    title = f"L{stop.layer} {unit}{stop.index} · {VIEW_KINDS[stop.kind].title}"
    return f"{title} — {label}" if label else title


def stop_table(model: EmbeddingSpaceModel, stop: TourStop, k: int) -> StopTable:
    """The stop's top tokens (a neuron: K, V, -K, -V side by side) or top pairs (a head), under its filters."""
    filters = stop_filters(stop)
    if stop.kind == "neuron":
        return neuron_table(model, stop, k, filters)
    pairs = head_top_pairs(
        model, stop.kind, stop.layer, stop.index, k, filters.vocab_filter, filters.pair_filter, filters.negative
    )
    rows = tuple(
        (str(rank), row, col, f"{score:.4f}")
        for rank, (row, col, score) in enumerate(zip(pairs.row_tokens, pairs.col_tokens, pairs.scores, strict=True), 1)
    )
    n = len(rows)
    return StopTable(
        ("#", "row token", "column token", "score"),
        rows,
        np.concatenate([pairs.row_ids, pairs.col_ids]).astype(np.int64),
        pairs.row_tokens + pairs.col_tokens,
        np.concatenate([pairs.scores, pairs.scores]).astype(np.float64),
        ("row token",) * n + ("column token",) * n,
    )


def neuron_table(model: EmbeddingSpaceModel, stop: TourStop, k: int, filters: StopFilters) -> StopTable:
    """One row per rank: each vector's token and score (K, V, -K, -V, and U, -U for gated MLPs)."""
    tables = neuron_top_tokens(model, stop.layer, stop.index, k, filters.vocab_filter, filters.negative)
    header = ("#",) + tuple(f"{name} {column}" for name in tables for column in ("token", "score"))
    depth = max((len(t.tokens) for t in tables.values()), default=0)
    rows = []
    for rank in range(depth):
        cells = [str(rank + 1)]
        for t in tables.values():
            cells += [t.tokens[rank], f"{t.scores[rank]:.4f}"] if rank < len(t.tokens) else ["", ""]
        rows.append(tuple(cells))
    plotted = [name for name in ("K", "V") if name in tables]  # the tokens a neuron reads and writes
    return StopTable(
        header,
        tuple(rows),
        np.concatenate([tables[name].token_ids for name in plotted]).astype(np.int64),
        tuple(token for name in plotted for token in tables[name].tokens),
        np.concatenate([tables[name].scores for name in plotted]).astype(np.float64),
        tuple(name for name in plotted for _ in tables[name].tokens),
    )
