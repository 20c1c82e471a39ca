"""Page widgets shared by several pages: layer + head/neuron pickers, t-SNE plot options.

Each lives in the page address (urlstate.widget); `show_unit` moves the pickers to another view.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import streamlit as st

from dashboard import urlstate
from embspace import EmbeddingSpaceModel, ViewKind
from embspace.views import LAYER_PARAM

MAX_POINTS = 300  # t-SNE beyond this takes many seconds on a small server
NORMALIZE_HELP = "Scale every embedding row to length 1 first: neighbours by angle (cosine)."


@dataclass(frozen=True)
class ScatterOptions:
    """How to draw the t-SNE scatter."""

    points: int  # tokens (neurons) or pairs (heads) whose tokens are placed
    dims: int  # 3 or 2
    normalize: bool  # unit-length embedding rows first (cosine neighbourhoods)
    labels: bool  # write each token next to its point


_STEPPED = "_stepped"  # session key: the Previous / Next step that caused this run
_LAST = "_last_unit"  # session key prefix: the unit this session last viewed, per view kind
LAYER_KEY = LAYER_PARAM  # the layer picker's key and URL parameter; a unit's is its kind's `unit` ("head", "neuron")


def show_unit(layer: int, kind: ViewKind, index: int) -> None:
    """Point the layer and unit pickers at (layer, index), e.g. after a heatmap click, before they are drawn."""
    st.session_state[LAYER_KEY] = int(layer)
    st.session_state[kind.unit] = int(index)


def unit_count(model: EmbeddingSpaceModel, kind: ViewKind) -> int:
    """How many units (heads or neurons) a layer has for views of this kind."""
    return model.shape.n_heads if kind.is_head else model.shape.d_ff


def _randomise(kind: ViewKind, n_layers: int, count: int) -> None:
    show_unit(random.randrange(n_layers), kind, random.randrange(count))


def step_unit(kind: ViewKind, n_layers: int, count: int, delta: int) -> None:
    """Move the pickers `delta` units on, across layers (after layer 2's last head comes layer 3's head 0;
    the last unit of the model wraps to the first): stepping through heads in a lab meeting."""
    state = st.session_state
    flat = int(state.get(LAYER_KEY, 0)) * count + int(state.get(kind.unit, 0)) + delta
    layer, index = divmod(flat % (n_layers * count), count)  # as `neighbour` computes it
    show_unit(layer, kind, index)
    state[_STEPPED] = delta


def stepped(model: EmbeddingSpaceModel, kind: ViewKind, layer: int, index: int) -> int | None:
    """+1 / -1 when this run moved the pickers one unit on (Previous / Next, the keyboard's arrows, or the
    unit input's + / −) since this session's last view of this kind; None otherwise (a first view, a jump)."""
    state = st.session_state
    last = state.get(f"{_LAST}:{kind.name}")
    state[f"{_LAST}:{kind.name}"] = (layer, index)
    explicit = state.pop(_STEPPED, None)
    if explicit or last is None:
        return explicit
    return next((delta for delta in (1, -1) if neighbour(model, kind, *last, delta) == (layer, index)), None)


def neighbour(model: EmbeddingSpaceModel, kind: ViewKind, layer: int, index: int, delta: int) -> tuple[int, int]:
    """(layer, index) of the unit `delta` steps on, as Previous / Next would move."""
    count = unit_count(model, kind)
    return divmod((layer * count + index + delta) % (model.shape.n_layers * count), count)


def _index_input(column, label: str, key: str, count: int) -> int:
    """A number input for an index in 0..count-1 whose value lives in the page address."""
    return int(
        urlstate.widget(
            column.number_input, f"{label} (0–{count - 1})", key=key, default=0, min_value=0, max_value=count - 1
        )
    )


def layer_and_unit(model: EmbeddingSpaceModel, kind: ViewKind) -> tuple[int, int]:
    """Layer and head/neuron number inputs side by side, with previous / next (the keyboard's ← and →)
    and "random" buttons; returns (layer, index)."""
    n_layers, count, unit = model.shape.n_layers, unit_count(model, kind), kind.unit
    columns = st.columns([2, 2, 1, 1, 1], vertical_alignment="bottom")
    layer_column, unit_column, previous_column, next_column, button_column = columns
    layer = _index_input(layer_column, "Layer", LAYER_KEY, n_layers)
    index = _index_input(unit_column, unit.capitalize(), unit, count)
    for column, label, icon, shortcut, delta in (
        (previous_column, "Previous", ":material/arrow_back:", "left", -1),
        (next_column, "Next", ":material/arrow_forward:", "right", 1),
    ):
        column.button(
            label,
            icon=icon,
            on_click=step_unit,
            args=(kind, n_layers, count, delta),
            shortcut=shortcut,
            help=f"{label} {unit}, across layers (keyboard: {'←' if delta < 0 else '→'}).",
            width="stretch",
            key=f"step_{label.lower()}",
        )
    button_column.button(
        f"Random {unit}",
        key="random_unit",
        icon=":material/casino:",
        on_click=_randomise,
        args=(kind, n_layers, count),
        help=f"Jump to a random layer and {unit}.",
        width="stretch",
    )
    return layer, index


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
        normalize_column.toggle, "Normalised", key="normalize", default=False, help=NORMALIZE_HELP
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
