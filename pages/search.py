"""Token search: where in the whole model a word is read, written or paired (FFN neurons and heads)."""

import streamlit as st

from dashboard import annotations_ui, atlas_view, render, search_view, settings_line, state, urlstate
from embspace import DISPLAY_CONVENTION

DEFAULT_LIMIT = 10

settings = state.current()
model = settings.model

st.title("Token search")
with st.expander("How to read this page", expanded=False):
    st.markdown(
        "Type words or tokens; each word is split as the tokenizer splits it and every token is searched "
        "across the whole model. **Rank** is the token's place inside that neuron or head (1 = best) among "
        "the tokens the sidebar's filters keep.\n\n"
        "- *FFN neuron, K·E*: neurons whose key ranks the token highest (what triggers them); *V·E*: whose "
        "value ranks it highest (what they promote).\n"
        "- *W_VO / W_QK row or column*: heads where the token has a strong pair as the attended-to / query "
        "token (row) or as the written / key token (column), with its best partner. Computed live, the rank "
        "is the token's place among all tokens paired with that best partner (1 = a mutual best pair); from "
        "an atlas, the place of its best pair among the head's stored top pairs.\n\n"
        f"{DISPLAY_CONVENTION}"
    )

query = urlstate.widget(st.text_input, "Words or tokens", key="q", default="", placeholder="e.g. pieszo king ##ing")
limit = urlstate.widget(
    st.number_input, "Results per token and place", key="limit", default=DEFAULT_LIMIT, min_value=1, max_value=100
)

words = tuple(query.split())
if not words:
    st.info("Type a word to see where the model reads, writes or pairs it.")
    st.stop()

for word, tokens in search_view.split_words(model, list(words)):
    st.caption(f"**{word}** → " + (" · ".join(f"`{t}`" for t in tokens) if tokens else "no token in this vocabulary"))

atlas = atlas_view.model_atlas(model)
frame = search_view.hits_frame(settings, words, int(limit))
st.caption(
    f"From the atlas in `{atlas.directory}`."
    if atlas is not None
    else "Computed live and exactly (no atlas for this model)."
)
if frame.empty:
    st.warning("No result: the token is not in the vocabulary or the sidebar's filters drop it.")
    st.stop()

shared = {k: v for k, v in urlstate.current_params().items() if k not in ("q", "limit")}
st.subheader("Best hit in each place")
search_view.best_links(frame, shared)
st.subheader("All hits")
labels = {(a.kind, a.layer, a.index): a.label for a in annotations_ui.model_annotations(model)}
shown = search_view.results_table(frame, shared, labels)
st.dataframe(
    shown,
    hide_index=True,
    column_config={
        "open": st.column_config.LinkColumn("open", display_text="open view"),
        "score": st.column_config.NumberColumn("score", format="%.4f"),
    },
)
render.table_downloads(
    "search-" + "-".join(words)[:60],
    frame,
    settings_line.about(settings, pairs=True, view="search", query=" ".join(words), limit=int(limit)),
)
