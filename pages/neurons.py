"""FFN neurons: a neuron's key (K) and value (V) vectors, and their negations, read in the vocabulary."""

import streamlit as st

from dashboard import annotations_ui, atlas_view, cache, pickers, render, settings_line, state, tour_ui
from dashboard.directions_view import directions_link
from embspace import DISPLAY_CONVENTION, VIEW_KINDS, neuron_vector_names

DEFAULT_TOKENS_PLOTTED = 50

settings = state.current()
model = settings.model
gated = model.shape.gated_mlp
vectors = neuron_vector_names(gated)

st.title("FFN neurons")
with st.expander("How to read this page", expanded=False):
    st.markdown(
        "A feed-forward neuron has a **key** K (its row of input weights: how strongly the residual "
        "stream switches it on) and a **value** V (its column of output weights: what it adds to the "
        "residual stream when on). Projected on the embedding matrix E, each becomes a score per "
        "token: K·E lists the tokens that trigger the neuron, V·E the tokens it promotes; −K and −V "
        "the most opposite ones."
        + (
            "\n\nThis model has a gated MLP: the key K is a row of **gate_proj**, the value V a column "
            "of **down_proj**, and U a row of **up_proj** (the linear branch multiplied with the gate)."
            if gated
            else ""
        )
        + f"\n\n{DISPLAY_CONVENTION}"
    )

layer, neuron = pickers.layer_and_unit(model, VIEW_KINDS["neuron"])
directions_link("ffn-in", layer)  # the layer's FFN keys, direction by direction
vector = pickers.vector_choice(vectors)
plot = pickers.scatter_options(
    "points", "Tokens in the plot", DEFAULT_TOKENS_PLOTTED, "This many top tokens of the chosen vector are placed."
)

needed = max(settings.k, plot.points)
atlas = atlas_view.page_atlas(model, "neurons", layer) if not gated else None  # the atlas holds no U
if atlas is None:
    tables = cache.neuron_tables(settings, layer, neuron, needed)
else:
    tables, complete = atlas_view.stored_neuron_tables(settings, atlas, layer, neuron, needed)
    if complete:
        st.caption(f"From the atlas in `{atlas.directory}`.")
    else:
        atlas_view.offer_live(atlas, "tokens", min(len(t) for t in tables.values()), settings.k)
tables = {name: tables[name] for name in vectors}

annotations_ui.editor(model, "neuron", layer, neuron)
tour_ui.add_to_tour(settings, "neuron", layer, neuron)
stem = f"neuron-layer{layer}-{neuron}"
rows = min(settings.k, max(len(table) for table in tables.values()))
st.subheader(f"Layer {layer}, neuron {neuron}: {settings_line.most(settings, rows, 'tokens')} of each vector · E")
if rows < settings.k:
    st.info(f"Only {rows} tokens pass the sidebar's filters, fewer than the {settings.k} rows asked for.")
settings_line.show(settings)
render.neuron_table(tables, settings.k, stem, settings_line.about(settings, view="neuron", layer=layer, neuron=neuron))

top = tables[vector].head(plot.points)
if len(top) == 0:
    st.info("No token passes the filters.")
else:
    settings_line.show(settings)
    title = f"Layer {layer}, neuron {neuron}: {settings_line.most(settings, len(top), 'tokens')} of {vector}·E"
    figure = cache.tokens_scatter(model, top, plot, title)
    render.figure(figure, f"{stem}-{vector}-tsne", key="tsne", suffix=settings_line.file_suffix(settings))
    st.caption(
        "t-SNE of the tokens' embedding vectors (rows of E): nearby points are tokens the model embeds "
        "alike; colour is the token's score. Hover a point for its token and score."
    )
