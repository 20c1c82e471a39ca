"""The singular-directions page's pieces (`pages/directions.py`): the cached SVD view, the spectrum figure,
and each direction's tables (four token lists, or token lists and the neurons that load on it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import links, render, settings_line
from dashboard.cache import HASH_FUNCS, RESULT_ENTRIES, note_computation
from dashboard.state import ViewSettings
from embspace import VIEW_KINDS, SvdView, svd_view
from embspace.compute import NeuronLoadings, SvdDirection, TokenEnds

PAGE = "pages/directions.py"
MAX_DIRECTIONS = 64  # directions read out on one page; the spectrum always shows every value
SHOWN_COLOUR, DEGENERATE_COLOUR, OTHER_COLOUR = "#1f77b4", "#d62728", "#b0b0b0"


@dataclass(frozen=True)
class KindText:
    """What a kind's two sides are, in words (the page's headings)."""

    title: str  # the matrix
    left: str  # what u_i is
    right: str  # what v_i is


KIND_TEXT = {
    "ov": KindText("W_V W_O of a head (its OV circuit)", "reads (u)", "writes (v)"),
    "qk": KindText("W_Q W_Kᵀ of a head", "query (u)", "key (v)"),
    "ffn-in": KindText("the FFN keys (input weights, d_model × d_ff)", "reads (u)", "neurons (v)"),
    "ffn-out": KindText("the FFN values (output weights, d_ff × d_model)", "neurons (u)", "writes (v)"),
}


@st.cache_data(max_entries=RESULT_ENTRIES, show_spinner="Computing the singular directions …", hash_funcs=HASH_FUNCS)
def directions(settings: ViewSettings, kind: str, layer: int, head: int | None, count: int, k: int) -> SvdView:
    """The SvdView of one head (ov, qk) or layer (ffn-in, ffn-out) under the sidebar's token filters."""
    note_computation("svd_view", kind, layer, head, count, k, settings.filter_spec)
    return svd_view(settings.model, kind, layer, head, count, k, settings.vocab_filter)


def spectrum_figure(view: SvdView) -> go.Figure:
    """Every non-zero singular value as a bar: the directions read out below in colour, degenerate ones red."""
    values = view.singular_values
    colours = [OTHER_COLOUR] * len(values)
    for direction in view.directions:
        colours[direction.index] = DEGENERATE_COLOUR if direction.degenerate else SHOWN_COLOUR
    figure = go.Figure(
        go.Bar(
            x=np.arange(len(values)),
            y=values,
            marker_color=colours,
            hovertemplate="direction %{x}<br>σ = %{y:.4g}<extra></extra>",
        )
    )
    figure.update_layout(
        title=f"{len(values)} non-zero singular values",
        xaxis_title="direction",
        yaxis_title="singular value σ",
        height=320,
        margin=dict(l=40, r=10, t=50, b=40),
    )
    return figure


def tokens_frame(sides: dict[str, TokenEnds], k: int) -> pd.DataFrame:
    """rank, then token and score for each end ("reads (u) +", "reads (u) −", ...), side by side."""
    frame = pd.DataFrame({"rank": np.arange(1, k + 1)})
    for label, ends in sides.items():
        for sign, scores in (("+", ends.plus), ("−", ends.minus)):
            frame[f"{label} {sign}"] = pd.Series(list(scores.tokens), dtype=object).reindex(range(k))
            frame[f"{label} {sign} score"] = pd.Series(scores.scores.astype(np.float64)).reindex(range(k))
    return frame.dropna(how="all", subset=[c for c in frame.columns if c != "rank"])


def neurons_frame(loadings: NeuronLoadings) -> pd.DataFrame:
    return pd.DataFrame({"neuron": loadings.neurons, "weight": loadings.weights.astype(np.float64)})


def direction_heading(direction: SvdDirection) -> str:
    return f"Direction {direction.index}: σ = {direction.sigma:.4g}"


def degenerate_note(direction: SvdDirection) -> str:
    return (
        f"Degenerate: σ is within a relative gap of {direction.gap:.1e} of a neighbouring singular value, so "
        "this direction is not defined on its own, only the span it shares with its neighbour. Do not read "
        "its tokens as one feature."
    )


def show_direction(settings: ViewSettings, view: SvdView, direction: SvdDirection) -> None:
    """One direction: its heading, the degenerate mark, the token table, and the neurons (FFN kinds)."""
    text = KIND_TEXT[view.kind]
    st.subheader(direction_heading(direction))
    if direction.degenerate:
        st.warning(degenerate_note(direction), icon=":material/warning:")
    sides = {text.left: direction.left, text.right: direction.right}
    tokens = {label: ends for label, ends in sides.items() if isinstance(ends, TokenEnds)}
    stem = f"svd-{view.kind}-layer{view.layer}" + ("" if view.head is None else f"-head{view.head}")
    about = settings_line.about(settings, view=f"svd-{view.kind}", layer=view.layer, head=view.head)
    frame = tokens_frame(tokens, settings.k)
    render.table(frame, f"{stem}-direction{direction.index}", about)
    for label, ends in sides.items():
        if isinstance(ends, NeuronLoadings):
            neuron_links(view.layer, label, ends, key=f"neurons_{direction.index}")


def neuron_links(layer: int, label: str, loadings: NeuronLoadings, *, key: str) -> None:
    """The neurons that load most on the direction, each row opening its neuron view."""
    st.caption(
        f"{label}: the neurons that load most on this direction (largest |weight|, the neuron's coordinate in "
        "the unit singular vector). A positive weight reads or writes the + end, a negative one the − end."
    )
    frame = neurons_frame(loadings)
    frame["open"] = links.OPEN_TEXT
    targets = [links.view_link(VIEW_KINDS["neuron"], layer, int(n)) for n in loadings.neurons]
    column_config = {"weight": st.column_config.NumberColumn("weight", format=render.SCORE_FORMAT)}
    links.link_table(frame, targets, key=key, column_config=column_config)


def directions_link(kind: str, layer: int, head: int | None = None) -> None:
    """The link from a head page (kind "vo"/"qk") or the neuron page ("ffn-in") to this page, set to that unit."""
    svd_kind = {"vo": "ov"}.get(kind, kind)
    params = {"kind": svd_kind, "layer": str(layer)} | ({} if head is None else {"head": str(head)})
    label = "Singular directions of this head" if head is not None else "Singular directions of this layer's FFN"
    st.page_link(PAGE, label=label, icon=":material/call_split:", query_params=params)
