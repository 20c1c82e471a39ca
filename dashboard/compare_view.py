"""The /compare page's cached calls and figures: every unit's change, a unit's diff, the clickable layer x head
heat-map and neuron strip, the chosen unit (in the address), the layer matching of two models."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import urlstate
from dashboard.cache import HASH_FUNCS, RESULT_ENTRIES, head_pairs, load_model, neuron_tables
from dashboard.links import chosen_row
from dashboard.render import clicked_cell
from dashboard.state import ModelChoice, ViewSettings
from embspace import EmbeddingSpaceModel
from embspace.compare import DIFF_KINDS, align_layers, diff_units, most_correlated_rows, unit_diff
from embspace.hosting import HostingPolicy

UNIT_KEYS = ("unit", "layer", "index")  # the chosen unit's address parameters (kind, layer, neuron or head)


def open_tuned(source: str, policy: HostingPolicy, budget: int) -> EmbeddingSpaceModel:
    """The tuned model, shared like the sidebar's (its E is never read: the base's reads the diff)."""
    return load_model(ModelChoice(source.strip(), None, "input", budget), policy)


@st.cache_data(max_entries=16, show_spinner=False, hash_funcs=HASH_FUNCS)
def unit_changes(base: EmbeddingSpaceModel, tuned: EmbeddingSpaceModel) -> pd.DataFrame:
    """Every unit's change (columns kind, layer, index, change, base_norm), most changed first."""
    bar = st.progress(0.0, text="Comparing the models layer by layer …")
    try:
        units = diff_units(
            base, tuned, progress=lambda done, total: bar.progress(done / total, text=f"Layer {done}/{total}")
        )
    finally:
        bar.empty()
    return pd.DataFrame([u.to_record() for u in units], columns=["kind", "layer", "index", "change", "base_norm"])


def head_grid(changes: pd.DataFrame, kind: str, n_layers: int, n_heads: int) -> np.ndarray:
    """float [n_layers, n_heads]: each head's change of `kind` ("vo" or "qk")."""
    grid = np.full((n_layers, n_heads), np.nan)
    rows = changes[changes["kind"] == kind]
    grid[rows["layer"].to_numpy(), rows["index"].to_numpy()] = rows["change"].to_numpy()
    return grid


def neuron_grid(changes: pd.DataFrame, n_layers: int, d_ff: int) -> np.ndarray:
    """float [n_layers, d_ff]: each neuron's larger change of its key and value vectors."""
    grid = np.zeros((n_layers, d_ff))
    rows = changes[changes["kind"].isin(["neuron-K", "neuron-V"])]
    np.maximum.at(grid, (rows["layer"].to_numpy(), rows["index"].to_numpy()), rows["change"].to_numpy())
    return grid


def cell_overlay(n_rows: int, n_cols: int, size: int, what: str) -> go.Scatter:
    """An invisible point on every cell centre of an [n_rows, n_cols] heat-map: plotly cannot select heat-map
    cells, so a click selects the nearest point (hoverdistance -1), which Streamlit reports (x = column,
    y = row)."""
    rows, cols = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
    return go.Scatter(
        x=cols.ravel(),
        y=rows.ravel(),
        mode="markers",
        marker={"size": size, "symbol": "square", "color": "rgba(0,0,0,0)"},
        selected={"marker": {"opacity": 1.0}},
        unselected={"marker": {"opacity": 1.0}},
        showlegend=False,
        name=what,
    )


def clickable(figure: go.Figure, n_rows: int, n_cols: int, size: int, what: str) -> go.Figure:
    """`figure` (one heat-map) with a click target on every cell; layers run down."""
    figure.add_trace(cell_overlay(n_rows, n_cols, size, what))
    figure.update_layout(hovermode="closest", hoverdistance=-1, clickmode="event+select", dragmode=False)
    figure.update_yaxes(autorange="reversed")
    return figure


def neuron_heatmap(grid: np.ndarray) -> go.Figure:
    """Layer x neuron strip of change (the larger of K's and V's): where fine-tuning moved the FFNs.
    A click on a cell chooses that neuron's vector of larger change."""
    figure = go.Figure(
        go.Heatmap(
            z=grid.tolist(),
            colorscale="Reds",
            colorbar={"title": "change"},
            hoverinfo="skip",  # the overlay points hover (and take the click)
        )
    )
    figure.update_layout(
        title="FFN neurons: ‖Δ‖ / ‖base‖ of the key or value vector, whichever is larger",
        xaxis_title="neuron",
        yaxis_title="layer",
        height=260,
    )
    return clickable(figure, *grid.shape, 4, "neurons")


def head_heatmap(grid: np.ndarray, kind: str) -> go.Figure:
    """Layer x head heat-map of change (layers down, heads across); a click on a cell chooses that head."""
    figure = go.Figure(
        go.Heatmap(
            z=grid.tolist(),  # plain lists: NaN cells (no such head) stay blank
            x=list(range(grid.shape[1])),
            y=list(range(grid.shape[0])),
            colorscale="Reds",
            colorbar={"title": "change"},
            hoverinfo="skip",  # the overlay points hover (and take the click)
        )
    )
    figure.update_layout(title=f"{kind}: ‖ΔW‖ / ‖W_base‖ per head", xaxis_title="head", yaxis_title="layer", height=420)
    return clickable(figure, *grid.shape, 28, "heads")


def choose_unit(kind: str, layer: int, index: int) -> None:
    """Make (kind, layer, index) the chosen unit: its widgets read it on this run (so does the address)."""
    st.session_state.update({"unit": kind, "layer": int(layer), "index": int(index)})


def on_head_click(key: str, kind: str) -> None:
    """on_select of the head heat-map: the clicked cell's head becomes the chosen unit."""
    cell = clicked_cell(st.session_state.get(key))
    if cell is not None:
        choose_unit(kind, *cell)


def on_neuron_click(key: str, changes: pd.DataFrame) -> None:
    """on_select of the neuron strip: the clicked neuron's key or value vector, whichever changed more."""
    cell = clicked_cell(st.session_state.get(key))
    if cell is not None:
        layer, neuron = cell
        rows = changes[(changes["layer"] == layer) & (changes["index"] == neuron)]
        rows = rows[rows["kind"].str.startswith("neuron")]
        kind = rows.sort_values("change", ascending=False, kind="stable")["kind"].iloc[0] if len(rows) else "neuron-V"
        choose_unit(kind, layer, neuron)


def on_row_click(key: str, top: pd.DataFrame) -> None:
    """on_select of the most-changed list: the ticked row's unit is chosen, and the tick cleared."""
    row = chosen_row((st.session_state.get(key) or {}).get("selection", {}))
    if row is not None and 0 <= row < len(top):
        unit = top.iloc[row]
        choose_unit(unit["kind"], unit["layer"], unit["index"])
    st.session_state[key] = {"selection": {"rows": [], "columns": [], "cells": []}}


def clickable_chart(figure: go.Figure, key: str, callback, *args, config: Mapping) -> None:
    """A figure whose click (a points selection) calls callback(key, *args) once, on the run it arrives in.

    The selection outlives its run, so the last cell acted on is remembered: a later change of the unit's
    widgets is not undone by the same selection on the next run. Called before the unit's widgets are drawn."""
    event = st.plotly_chart(
        figure, key=key, on_select="rerun", selection_mode="points", theme=None, config=dict(config)
    )
    cell = clicked_cell(event)
    if cell != st.session_state.get(f"_acted_{key}"):
        st.session_state[f"_acted_{key}"] = cell
        if cell is not None:
            callback(key, *args)


def unit_widgets(base: EmbeddingSpaceModel, first: pd.Series) -> tuple[str, int, int]:
    """The chosen unit's kind, layer and index, in the address; `first` (the most changed unit) is the default."""
    shape = base.shape
    left, middle, right = st.columns(3)
    kind = urlstate.widget(left.selectbox, "Unit kind", key="unit", default=str(first["kind"]), options=DIFF_KINDS)
    layer = urlstate.widget(
        middle.number_input,
        "Layer",
        key="layer",
        default=int(first["layer"]),
        min_value=0,
        max_value=shape.n_layers - 1,
    )
    count = shape.d_ff if kind.startswith("neuron") else shape.n_heads
    what = "Neuron" if kind.startswith("neuron") else "Head"
    index = urlstate.widget(
        right.number_input, what, key="index", default=int(first["index"]), min_value=0, max_value=count - 1
    )
    return kind, int(layer), int(index)


@st.cache_data(max_entries=RESULT_ENTRIES, show_spinner="Reading the change in the vocabulary …", hash_funcs=HASH_FUNCS)
def diff_tables(
    settings: ViewSettings, tuned: EmbeddingSpaceModel, kind: str, layer: int, index: int, k: int
) -> dict[str, pd.DataFrame]:
    """{"plus", "minus"}: the unit's diff read in the base's vocabulary under the sidebar's filters."""
    found = unit_diff(settings.model, tuned, kind, layer, index, k, settings.vocab_filter, settings.pair_filter)
    return {side: pd.DataFrame(records) for side, records in found.to_dict().items()}


@st.cache_data(max_entries=RESULT_ENTRIES, show_spinner=False, hash_funcs=HASH_FUNCS)
def alignment(a: EmbeddingSpaceModel, b: EmbeddingSpaceModel, part: str) -> dict:
    """align_layers(a, b, part).to_dict() with a progress bar: {"part", "similarity", "matching"}."""
    bar = st.progress(0.0, text="Correlating every pair of layers …")
    try:
        found = align_layers(
            a, b, part, progress=lambda done, total: bar.progress(done / total, text=f"Layer {done}/{total} of A")
        )
    finally:
        bar.empty()
    return found.to_dict()


def alignment_heatmap(similarity: list[list[float]], matching: list[list[int]], part: str) -> go.Figure:
    """Layers of A (down) x layers of B (across) mean |corr|, the matched pairs marked with a ring."""
    figure = go.Figure(
        go.Heatmap(
            z=similarity,
            colorscale="Viridis",
            colorbar={"title": "mean |corr|"},
            hovertemplate="A layer %{y}, B layer %{x}<br>mean |corr| %{z:.4g}<extra></extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=[b for _, b in matching],
            y=[a for a, _ in matching],
            mode="markers",
            marker={"size": 18, "symbol": "circle-open", "color": "white", "line": {"width": 3}},
            name="matching",
            hovertemplate="A layer %{y} ↔ B layer %{x}<extra>matched</extra>",
        )
    )
    figure.update_layout(
        title=f"{part}: mean |corr| of every layer pair (rings: the one-to-one matching)",
        xaxis_title="layer of B",
        yaxis_title="layer of A",
        height=460,
    )
    figure.update_yaxes(autorange="reversed")
    return figure


@st.cache_data(
    max_entries=RESULT_ENTRIES, show_spinner="Correlating the row with every row of B …", hash_funcs=HASH_FUNCS
)
def correlated_rows(
    a: EmbeddingSpaceModel, b: EmbeddingSpaceModel, part: str, layer: int, index: int, top: int
) -> pd.DataFrame:
    """B's rows most correlated with A's neuron or head `index` of `layer`: columns layer, index, corr."""
    rows = most_correlated_rows(a, b, part, layer, index, top)
    return pd.DataFrame([row.to_record() for row in rows], columns=["layer", "index", "corr"])


def before_after(settings: ViewSettings, tuned: EmbeddingSpaceModel, kind: str, layer: int, index: int, k: int):
    """{"base", "tuned"}: each model's own top tokens of the neuron's changed vector (token, score) or top pairs
    of the head's circuit (row_token, col_token, score), under the sidebar's filters; the cached single-model
    calls, the tuned model read through its own embedding."""
    found = {}
    for name, model_settings in (("base", settings), ("tuned", replace(settings, model=tuned))):
        if kind.startswith("neuron"):
            found[name] = neuron_tables(model_settings, layer, index, k)[kind[-1]][["token", "score", "token_id"]]
        else:
            found[name] = head_pairs(model_settings, kind, layer, index, k)[["row_token", "col_token", "score"]]
    return found
