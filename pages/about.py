"""Start page: what the dashboard shows, what was opened, and where each view lives."""

import streamlit as st

from dashboard import atlas_view, sidebar, state
from embspace.atlas.manifest import describe
from embspace.vocab.tokens import DISPLAY_CONVENTION

model = state.current().model

st.title("embspace: a transformer's weights, read in its vocabulary")
st.markdown(
    "Multiply a weight vector or matrix by the embedding matrix E and every number gets a token attached "
    "(Dar, Geva, Gupta & Berant, *Analyzing Transformers in Embedding Space*, ACL 2023). No text is run "
    "through the model: these views read the parameters alone."
)
st.subheader("Views")
st.page_link(
    "pages/neurons.py",
    label="**FFN neurons**: the tokens a neuron reacts to (K) and promotes (V)",
    icon=":material/hub:",
)
st.page_link(
    "pages/vo.py",
    label="**W_VO**: when a head attends to token a, which token b it writes",
    icon=":material/edit_note:",
)
st.page_link(
    "pages/qk.py", label="**W_QK**: which key tokens a query token attends to", icon=":material/manage_search:"
)
st.page_link(
    "pages/overview.py",
    label="**Copying scores**: every head at a glance; click one to open it",
    icon=":material/grid_on:",
)
st.page_link(
    "pages/search.py",
    label="**Token search**: where in the whole model a word is read, written or paired",
    icon=":material/search:",
)

st.subheader("The opened model")
st.markdown(sidebar.model_card_markdown(model.info))
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
    "the URL to share or reopen the same view (a corpus upload is the exception)."
)
