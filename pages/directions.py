"""Singular directions: a head's OV or QK circuit, or a layer's FFN weights, direction by direction in the vocabulary."""

from dataclasses import replace

import streamlit as st

from dashboard import directions_view, pickers, render, settings_line, state, urlstate
from embspace import DISPLAY_CONVENTION, SVD_KINDS, VIEW_KINDS
from embspace.compute.svd import DEFAULT_DIRECTIONS, DEGENERATE_GAP, HEAD_SVD_KINDS

KIND_LABELS = {
    "ov": "OV of a head",
    "qk": "QK of a head",
    "ffn-in": "FFN input (keys)",
    "ffn-out": "FFN output (values)",
}

# Both ends of every direction are shown, so the sidebar's sign does nothing here: left out of the view's
# settings, it neither shows in the filter line nor recomputes the view.
settings = replace(state.current(), negative=False)
model = settings.model
shape = model.shape

st.title("Singular directions")
with st.expander("How to read this page", expanded=False):
    st.markdown(
        "A head's W_V W_O (what it reads and writes) and W_Q W_Kᵀ (which queries meet which keys) have up to "
        "d_head independent directions; a layer's FFN keys and values up to d_model. Each **singular direction** "
        "pairs a left vector u (what is read: the attended-to token, the query, or the residual direction the "
        "neurons read) with a right vector v (what is written, the key, or the direction the neurons write), "
        "weighted by its singular value σ (Millidge & Black 2022). Each vector is read in the vocabulary as "
        "E·x (the **+** end) and E·(−x) (the **−** end): a singular pair's sign is arbitrary (here u's largest "
        "coordinate is made positive), so both ends are shown. For the FFN kinds the neuron side lists the "
        f"neurons that load most on the direction. Directions whose σ is within {DEGENERATE_GAP:g} (relative) of "
        "a neighbour's are marked degenerate: only their span is defined.\n\n"
        f"{DISPLAY_CONVENTION}"
    )

kind_column, layer_column, head_column, count_column = st.columns(4, vertical_alignment="bottom")
kind = urlstate.widget(
    kind_column.selectbox, "Matrix", key="kind", default="ov", options=SVD_KINDS, format_func=KIND_LABELS.get
)
layer = int(
    urlstate.widget(
        layer_column.number_input,
        f"Layer (0–{shape.n_layers - 1})",
        key=pickers.LAYER_KEY,
        default=0,
        min_value=0,
        max_value=shape.n_layers - 1,
    )
)
head = None
if kind in HEAD_SVD_KINDS:
    head_key = VIEW_KINDS["vo"].unit
    head = int(
        urlstate.widget(
            head_column.number_input,
            f"Head (0–{shape.n_heads - 1})",
            key=head_key,
            default=0,
            min_value=0,
            max_value=shape.n_heads - 1,
        )
    )
count = int(
    urlstate.widget(
        count_column.number_input,
        "Directions read out",
        key="directions",
        default=DEFAULT_DIRECTIONS,
        min_value=1,
        max_value=directions_view.MAX_DIRECTIONS,
    )
)

view = directions_view.directions(settings, kind, layer, head, count, settings.k)
unit = f"layer {layer}" + ("" if head is None else f", head {head}")
st.caption(f"{KIND_LABELS[kind]}, {unit}: {directions_view.KIND_TEXT[kind].title}.")
figure = directions_view.spectrum_figure(view)
render.figure(
    figure, f"svd-{kind}-layer{layer}" + ("" if head is None else f"-head{head}") + "-spectrum", key="spectrum"
)
degenerate = [d.index for d in view.directions if d.degenerate]
if degenerate:
    st.caption(f"Degenerate directions (red): {', '.join(map(str, degenerate))}.")
settings_line.show(settings)
for direction in view.directions:
    directions_view.show_direction(settings, view, direction)
