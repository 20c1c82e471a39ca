"""Page widgets shared by several pages: layer + head/neuron pickers, t-SNE plot options.

Each is declared in the page address through `urlstate.url_param` before it is drawn.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import streamlit as st

from dashboard import urlstate
from embspace.model import EmbeddingSpaceModel

MAX_POINTS = 300  # t-SNE beyond this takes many seconds on a small server


@dataclass(frozen=True)
class ScatterOptions:
    """How to draw the t-SNE scatter."""

    points: int  # tokens (neurons) or pairs (heads) whose tokens are placed
    dims: int  # 3 or 2
    normalize: bool  # unit-length embedding rows first (cosine neighbourhoods)
    labels: bool  # write each token next to its point


def _randomise(unit: str, n_layers: int, count: int) -> None:
    st.session_state["layer"] = random.randrange(n_layers)
    st.session_state[unit] = random.randrange(count)


def layer_and_unit(model: EmbeddingSpaceModel, unit: str, count: int) -> tuple[int, int]:
    """Layer and head/neuron number inputs side by side, with a "random" button; returns (layer, index)."""
    n_layers = model.shape.n_layers
    urlstate.url_param("layer", 0, min_value=0, max_value=n_layers - 1)
    urlstate.url_param(unit, 0, min_value=0, max_value=count - 1)
    layer_column, unit_column, button_column = st.columns([2, 2, 1], vertical_alignment="bottom")
    layer = layer_column.number_input(f"Layer (0–{n_layers - 1})", min_value=0, max_value=n_layers - 1, key="layer")
    index = unit_column.number_input(f"{unit.capitalize()} (0–{count - 1})", min_value=0, max_value=count - 1, key=unit)
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
    """A row of t-SNE settings: how many top tokens ("points") or pairs ("pairs"), 3D/2D, normalised embeddings, labels."""
    urlstate.url_param(key, default, min_value=2, max_value=MAX_POINTS)
    urlstate.url_param("dims", 3, options=(3, 2))
    urlstate.url_param("normalize", False)
    urlstate.url_param("labels", False)
    points_column, dims_column, normalize_column, labels_column = st.columns(4, vertical_alignment="bottom")
    points = points_column.number_input(label, min_value=2, max_value=MAX_POINTS, step=10, key=key, help=help)
    dims = dims_column.radio("Plot", (3, 2), key="dims", format_func=lambda d: f"{d}D", horizontal=True)
    normalize = normalize_column.toggle(
        "Normalised",
        key="normalize",
        help="Scale every embedding row to length 1 first: neighbours by angle (cosine).",
    )
    labels = labels_column.toggle("Labels on points", key="labels")
    return ScatterOptions(int(points), int(dims), bool(normalize), bool(labels))


def vector_choice(names: Sequence[str]) -> str:
    """Which of the neuron's vectors (K, V, -K, -V, ...) the scatter shows."""
    urlstate.url_param("vector", names[0], options=names)
    return st.radio(
        "Vector in the plot", names, key="vector", horizontal=True, help="Whose top tokens the t-SNE places."
    )
