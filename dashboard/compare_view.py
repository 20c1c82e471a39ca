"""The /compare page's cached calls and figures: every unit's change, a unit's diff, the layer x head heat-map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard.cache import HASH_FUNCS, RESULT_ENTRIES, load_model
from dashboard.state import ModelChoice, ViewSettings
from embspace import EmbeddingSpaceModel
from embspace.compare import diff_units, unit_diff
from embspace.hosting import HostingPolicy


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


def neuron_heatmap(grid: np.ndarray) -> go.Figure:
    """Layer x neuron strip of change (the larger of K's and V's): where fine-tuning moved the FFNs."""
    figure = go.Figure(
        go.Heatmap(
            z=grid.tolist(),
            colorscale="Reds",
            colorbar={"title": "change"},
            hovertemplate="layer %{y}, neuron %{x}<br>change %{z:.4g}<extra></extra>",
        )
    )
    figure.update_layout(
        title="FFN neurons: ‖Δ‖ / ‖base‖ of the key or value vector, whichever is larger",
        xaxis_title="neuron",
        yaxis_title="layer",
        height=260,
    )
    figure.update_yaxes(autorange="reversed")
    return figure


def head_heatmap(grid: np.ndarray, kind: str) -> go.Figure:
    """Layer x head heat-map of change (layers down, heads across)."""
    figure = go.Figure(
        go.Heatmap(
            z=grid.tolist(),  # plain lists: NaN cells (no such head) stay blank
            x=list(range(grid.shape[1])),
            y=list(range(grid.shape[0])),
            colorscale="Reds",
            colorbar={"title": "change"},
            hovertemplate="layer %{y}, head %{x}<br>change %{z:.4g}<extra></extra>",
        )
    )
    figure.update_layout(title=f"{kind}: ‖ΔW‖ / ‖W_base‖ per head", xaxis_title="head", yaxis_title="layer", height=420)
    figure.update_yaxes(autorange="reversed")
    return figure


@st.cache_data(max_entries=RESULT_ENTRIES, show_spinner="Reading the change in the vocabulary …", hash_funcs=HASH_FUNCS)
def diff_tables(
    settings: ViewSettings, tuned: EmbeddingSpaceModel, kind: str, layer: int, index: int, k: int
) -> dict[str, pd.DataFrame]:
    """{"plus", "minus"}: the unit's diff read in the base's vocabulary under the sidebar's filters."""
    found = unit_diff(settings.model, tuned, kind, layer, index, k, settings.vocab_filter, settings.pair_filter)
    return {side: pd.DataFrame(records) for side, records in found.to_dict().items()}
