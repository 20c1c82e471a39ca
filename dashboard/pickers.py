"""Page widgets shared by several pages: layer + head/neuron pickers, t-SNE plot options.

Each lives in the page address (urlstate.widget); `show_unit` moves the pickers to another view.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import streamlit as st

from dashboard import urlstate
from embspace.model.embedding_space import EmbeddingSpaceModel

MAX_POINTS = 300  # t-SNE beyond this takes many seconds on a small server


@dataclass(frozen=True)
class ScatterOptions:
    """How to draw the t-SNE scatter."""

    points: int  # tokens (neurons) or pairs (heads) whose tokens are placed
    dims: int  # 3 or 2
    normalize: bool  # unit-length embedding rows first (cosine neighbourhoods)
    labels: bool  # write each token next to its point


LAYER_KEY = "layer"  # the layer picker's key and URL parameter; the unit's key is its name ("head", "neuron")


def show_unit(layer: int, unit: str, index: int) -> None:
    """Point the layer and unit pickers at (layer, index), e.g. after a heatmap click, before they are drawn."""
    st.session_state[LAYER_KEY] = int(layer)
    st.session_state[unit] = int(index)


def _randomise(unit: str, n_layers: int, count: int) -> None:
    show_unit(random.randrange(n_layers), unit, random.randrange(count))


def layer_and_unit(model: EmbeddingSpaceModel, unit: str, count: int) -> tuple[int, int]:
    """Layer and head/neuron number inputs side by side, with a "random" button; returns (layer, index)."""
    n_layers = model.shape.n_layers
    layer_column, unit_column, button_column = st.columns([2, 2, 1], vertical_alignment="bottom")
    layer = urlstate.widget(
        layer_column.number_input,
        f"Layer (0–{n_layers - 1})",
        key=LAYER_KEY,
        default=0,
        min_value=0,
        max_value=n_layers - 1,
    )
    index = urlstate.widget(
        unit_column.number_input,
        f"{unit.capitalize()} (0–{count - 1})",
        key=unit,
        default=0,
        min_value=0,
        max_value=count - 1,
    )
    button_column.button(
        f"Random {unit}",
        icon=":material/casino:",
        on_click=_randomise,
        args=(unit, n_layers, count),
        help=f"Jump to a random layer and {unit}.",
        width="stretch",
    )
    return int(layer), int(index)


def scatter_options(key: str, label: str, default: int, help: str) -> ScatterOptions:
    """A row of t-SNE settings: how many top tokens ("points") or pairs ("pairs") are placed, 3D or 2D,
    normalised embeddings, labels on points."""
    points_column, dims_column, normalize_column, labels_column = st.columns(4, vertical_alignment="bottom")
    points = urlstate.widget(
        points_column.number_input,
        label,
        key=key,
        default=default,
        min_value=2,
        max_value=MAX_POINTS,
        step=10,
        help=help,
    )
    dims = urlstate.widget(
        dims_column.radio, "Plot", key="dims", default=3, options=(3, 2), format_func=lambda d: f"{d}D", horizontal=True
    )
    normalize = urlstate.widget(
        normalize_column.toggle,
        "Normalised",
        key="normalize",
        default=False,
        help="Scale every embedding row to length 1 first: neighbours by angle (cosine).",
    )
    labels = urlstate.widget(labels_column.toggle, "Labels on points", key="labels", default=False)
    return ScatterOptions(int(points), int(dims), bool(normalize), bool(labels))


def vector_choice(names: Sequence[str]) -> str:
    """Which of the neuron's vectors (K, V, -K, -V, ...) the scatter shows."""
    return urlstate.widget(
        st.radio,
        "Vector in the plot",
        key="vector",
        default=names[0],
        options=names,
        horizontal=True,
        help="Whose top tokens the t-SNE places.",
    )
