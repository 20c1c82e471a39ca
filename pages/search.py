"""Token search: where in the whole model a word is read, written or paired (FFN neurons and heads)."""

import streamlit as st

from dashboard import (
    annotations_ui,
    atlas_view,
    links,
    render,
    search_view,
    settings_line,
    state,
    tokenizer_view,
    urlstate,
)
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
        "token (row) or as the written / key token (column), with its best partner. The rank is the place "
        "of its best pair among the head's top pairs under the filters (live: the exact top 200 pairs of each "
        "head; from an atlas: its stored top pairs).\n\n"
        "**A set of words (concept)**: every unit (FFN neuron K and V, head OV read and write sides, QK query "
        "and key sides, SVD directions) ranked by how many of the words are in its top k, then by their mean "
        "rank there.\n\n"
        f"{DISPLAY_CONVENTION}"
    )

mode = urlstate.widget(
    st.radio,
    "Search for",
    key="mode",
    default=search_view.MODES[0],
    options=search_view.MODES,
    format_func=search_view.MODE_LABELS.get,
    horizontal=True,
)
if mode == "concept":
    search_view.concept_mode(settings)
else:
    query = urlstate.widget(st.text_input, "Words or tokens", key="q", default="", placeholder="e.g. pieszo king ##ing")
    limit = urlstate.widget(
        st.number_input, "Results per token and place", key="limit", default=DEFAULT_LIMIT, min_value=1, max_value=100
    )

    words = tuple(query.split())
    if not words:
        st.info("Type a word to see where the model reads, writes or pairs it.")
        st.stop()

    query_words = search_view.query_words(model, words)
    atlas = atlas_view.model_atlas(model)
    frame = search_view.hits_frame(settings, words, int(limit))
    dropped = search_view.dropped_tokens(settings, tuple(sorted({i for w in query_words for i in w.token_ids})))
    frame = frame[~frame["token_id"].isin(list(dropped))]  # a dropped token is named below, never ranked
    st.caption(
        f"From the atlas in `{atlas.directory}`."
        if atlas is not None
        else "Computed live and exactly (no atlas for this model)."
    )
    kept = int(model.vocab_mask(settings.vocab_filter).sum())
    corpus_on = settings.vocab_filter.allowed_ids is not None
    st.markdown(search_view.rank_sentence(kept, model.shape.vocab_size, atlas is not None, corpus_on))
    tokenizer_view.search_note(model)
    settings_line.show(settings, pairs=True)

    shared = {k: v for k, v in urlstate.current_params().items() if k not in ("q", "limit")}
    labels = {(a.kind, a.layer, a.index): a.label for a in annotations_ui.model_annotations(model)}
    for number, word in enumerate(query_words):
        st.subheader(f"“{word.word}”")
        st.caption(f"**{word.word}** → " + " · ".join(f"`{t}`" for t in word.tokens))
        if note := search_view.split_note(word):
            st.info(note, icon=":material/call_split:")
        for token_id, token in zip(word.token_ids, word.tokens, strict=True):
            if token_id in dropped:
                st.warning(f"`{token}` is {dropped[token_id]}: it is left out, not ranked.", icon=":material/block:")
        hits = frame[frame["token_id"].isin(list(word.token_ids))]
        if hits.empty:
            st.info("No result for this word under the sidebar's filters.")
            continue
        st.markdown("**Best hit in each place**")
        search_view.best_links(hits, shared)
        st.markdown("**All hits**")
        links.link_table(
            search_view.results_table(hits, labels),
            search_view.hit_links(hits, shared),
            key=f"hits_{number}",
            column_config={"score": st.column_config.NumberColumn("score", format="%.4f")},
        )
    if frame.empty:
        st.warning("No result: the token is not in the vocabulary or the sidebar's filters drop it.")
        st.stop()
    render.table_downloads(
        "search-" + "-".join(words)[:60],
        frame,
        settings_line.about(settings, pairs=True, view="search", query=" ".join(words), limit=int(limit)),
    )
