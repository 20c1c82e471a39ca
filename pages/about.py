"""Start page: what the dashboard shows, what was opened, and where each view lives."""

import streamlit as st

from dashboard import atlas_view, page_list, sidebar, state, tokenizer_view
from embspace import DISPLAY_CONVENTION
from embspace.atlas import describe

model = state.current().model

st.title("embspace: a transformer's weights, read in its vocabulary")
st.markdown(
    "Multiply a weight vector or matrix by the embedding matrix E and every number gets a token attached "
    "(Dar, Geva, Gupta & Berant, *Analyzing Transformers in Embedding Space*, ACL 2023). No text is run "
    "through the model: these views read the parameters alone."
)
st.subheader("Views")
for page in page_list.linked_pages():  # every page of the navigation, from its one list
    st.page_link(page.script, label=page.summary, icon=page.icon)

st.subheader("The opened model")
st.markdown(sidebar.model_card_markdown(model.info))
st.markdown(f"**Its tokenizer:** {tokenizer_view.text_note(model)}")
atlas = atlas_view.model_atlas(model)
buildable = atlas_view.can_build_here(model, sidebar.hosting_policy())
if atlas is not None:
    st.caption(f"Atlas in use for the views and token search: `{atlas.directory}` ({describe(atlas.manifest)}).")
    missing = atlas_view.missing_layers(atlas, model)
    if missing and buildable:
        if st.button(f"Build its {len(missing)} missing layers", key="build_atlas"):
            atlas_view.build_with_progress(model, atlas.directory, atlas.k, missing)
            st.rerun()
else:
    st.caption(
        "No atlas for this model: every view and token search computes live. An atlas holds every head's and "
        "neuron's top N tokens as Parquet; build one with `python -m embspace atlas build MODEL --out "
        "atlases/NAME`" + (" or here (a few seconds per layer for small models)." if buildable else ".")
    )
    if buildable:
        directory = atlas_view.atlas_directory(model)
        build_k = st.number_input("Top N per view", min_value=10, max_value=1000, value=atlas_view.BUILD_K, step=50)
        if st.button(f"Build the atlas in `{directory}`", key="build_atlas"):
            atlas_view.build_with_progress(model, directory, int(build_k), list(range(model.shape.n_layers)))
            st.rerun()
st.caption(
    f"{DISPLAY_CONVENTION} Every choice in the sidebar and on a page is kept in the page address: copy "
    "the URL to share or reopen the same view (an uploaded corpus by its digest, while this server keeps it)."
)
