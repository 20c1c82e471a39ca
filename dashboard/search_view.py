"""The token search page's cached calls, its words and their tokens, what rank means, and its result tables
(each row opens its hit's view in the same tab)."""

from __future__ import annotations

from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from dashboard import page_list, render, settings_line, urlstate
from dashboard.atlas_view import model_atlas
from dashboard.cache import HASH_FUNCS, RESULT_ENTRIES, note_computation
from dashboard.links import OPEN_TEXT, Link, link_table
from dashboard.state import ViewSettings, model_key
from embspace import CONCEPT_SCORE_RULE, EmbeddingSpaceModel
from embspace.search import HEAD_PAIRS_BOUND, QueryWord, SearchIndex, concepts, query_tokens, search, split_words
from embspace.views import VIEW_KINDS, view_kind, view_side


@st.cache_resource(max_entries=2, show_spinner="Indexing the model's FFN weights for search …", hash_funcs=HASH_FUNCS)
def search_index(model: EmbeddingSpaceModel) -> SearchIndex:
    """Every layer's FFN keys and values stacked once per model (the live search's working set)."""
    note_computation("search-index", model_key(model))
    return SearchIndex(model)


@st.cache_data(max_entries=RESULT_ENTRIES, show_spinner="Searching every neuron and head …", hash_funcs=HASH_FUNCS)
def hits_frame(settings: ViewSettings, words: tuple[str, ...], limit: int) -> pd.DataFrame:
    """The hits of `words`, best first: kind, layer, index, token, rank, score, partner, token_id, source."""
    note_computation("search", words, limit, settings.filter_spec)
    model = settings.model
    atlas = model_atlas(model)
    found = search(
        model,
        list(words),
        vocab_filter=settings.vocab_filter,
        pair_filter=settings.pair_filter,
        limit=limit,
        atlas=atlas,
        index=search_index(model) if atlas is None else None,  # an atlas answers without it (GBs for big models)
    )
    columns = ["kind", "layer", "index", "token", "rank", "score", "partner_token", "token_id", "source"]
    frame = pd.DataFrame([hit.as_dict() for hit in found], columns=[*columns, "partner_id"])[columns]
    # The tokenizer's own string ("Ġking", "##ing"): a head page's "token" parameter finds exactly this token.
    frame["vocab_token"] = model.tokenizer.convert_ids_to_tokens([int(i) for i in frame["token_id"]])
    return frame


def query_words(model: EmbeddingSpaceModel, words: tuple[str, ...]) -> list[QueryWord]:
    """Each typed word with its token ids and tokens, in the order typed."""
    return query_tokens(model, list(words))


def dropped_tokens(settings: ViewSettings, token_ids: tuple[int, ...]) -> dict[int, str]:
    """{token id: why} for the tokens the sidebar's filters drop: "not in your corpus" (a corpus filter without
    the token) or "dropped by the token filters". A dropped token's rank would count it among tokens it is not
    part of, so the page names it instead of ranking it."""
    kept = settings.model.vocab_mask(settings.vocab_filter)
    allowed = settings.vocab_filter.allowed_ids
    why = {}
    for token in token_ids:
        if allowed is not None and token not in allowed:
            why[token] = "not in your corpus"
        elif not kept[token]:
            why[token] = "dropped by the token filters"
    return why


def split_note(word: QueryWord) -> str:
    """A sentence when the tokenizer splits the word ("" when it is one token)."""
    if len(word.token_ids) < 2:
        return ""
    return (
        f"**{word.word}** is split into {len(word.token_ids)} tokens: the model has no token for the whole word, "
        "so each hit below is about one piece, not the word."
    )


def rank_sentence(kept: int, vocab_size: int, from_atlas: bool, corpus: bool) -> str:
    """What rank means here (see embspace.search.index), under the filters in effect."""
    among = f"the {kept:,} tokens the sidebar keeps (of {vocab_size:,})" + (
        ", i.e. your corpus's tokens" if corpus else ""
    )
    heads = (
        "the place of its best pair among the head's stored top pairs that pass the filters (1 = the head's top pair)"
        if from_atlas
        else f"the place of its best pair among the head's exact top {HEAD_PAIRS_BOUND} pairs under the filters "
        f"(1 = the head's top pair; a token whose best pair ranks lower is no hit in that head)"
    )
    sentence = (
        f"**Rank** counts only {among}: for a neuron, the token's place in the neuron's list (1 = its top token); "
        f"for a head, {heads}."
    )
    if kept < vocab_size / 10:
        sentence += " With this few tokens kept, rank 1 is common."
    return sentence


def view_params(kind: str, layer: int, index: int, shared: dict[str, str], vocab_token: str | None = None) -> dict:
    """The query parameters of a hit's view (kind: a search kind, "vo-row"): the sidebar's settings, the layer
    and unit, and for a head the token (so its page lists the token's best partners there)."""
    view = view_kind(kind)
    params = {**shared, **view.params(layer, index)}  # the view's layer and unit win over a shared key
    if view.is_head and vocab_token:
        params["token"] = vocab_token  # after layer and unit, as links have always read
    return params


def view_link(kind: str, layer: int, index: int, shared: dict[str, str], vocab_token: str | None = None) -> str:
    """The address of a hit's page with the view set and the sidebar's settings kept."""
    return f"/{view_kind(kind).page}?" + urlencode(view_params(kind, layer, index, shared, vocab_token))


def best_links(frame: pd.DataFrame, shared: dict[str, str]) -> None:
    """One link (same tab) per place the token was found (FFN K, FFN V, W_VO row, ...): its best hit's view."""
    for hit in frame.drop_duplicates("kind").itertuples():
        view, where = view_kind(hit.kind), view_side(hit.kind).meaning.split(":")[0]
        label = f"{where} — layer {hit.layer}, {view.unit} {hit.index}: {hit.token} (rank {hit.rank})"
        params = view_params(hit.kind, hit.layer, hit.index, shared, getattr(hit, "vocab_token", None))
        st.page_link(f"pages/{view.page}.py", label=label, query_params=params)


def hit_links(frame: pd.DataFrame, shared: dict[str, str]) -> list[Link]:
    """Each hit's view (page script and query parameters as strings), row by row."""
    vocab_tokens = frame["vocab_token"] if "vocab_token" in frame else [None] * len(frame)
    rows = zip(frame["kind"], frame["layer"], frame["index"], vocab_tokens, strict=True)
    return [
        Link(
            page_list.view_page(view_kind(kind)).script,
            {key: str(value) for key, value in view_params(kind, int(layer), int(index), shared, token).items()},
        )
        for kind, layer, index, token in rows
    ]


def results_table(frame: pd.DataFrame, labels: dict | None = None) -> pd.DataFrame:
    """What the page shows: open, where, layer, neuron/head, token, rank, score, best partner, label.

    "open" comes first: a click on the row opens the view (links.link_table, with `hit_links`).

    labels: {(view kind "neuron"|"vo"|"qk", layer, index): label} of the annotated views."""
    labels = labels or {}
    views = zip(frame["kind"].map(lambda kind: view_kind(kind).name), frame["layer"], frame["index"], strict=True)
    return pd.DataFrame(
        {
            "open": [OPEN_TEXT] * len(frame),
            "where": frame["kind"].map(lambda kind: view_side(kind).meaning),
            "layer": frame["layer"],
            "neuron / head": frame["index"],
            "token": frame["token"],
            "rank": frame["rank"],
            "score": frame["score"],
            "best partner": frame["partner_token"].fillna(""),
            "label": [labels.get((kind, int(layer), int(index)), "") for kind, layer, index in views],
        },
        index=frame.index,
    )


# ---------------------------------------------------------------------------------------------
# The second mode: a set of words (a concept)

MODES = ("word", "concept")
MODE_LABELS = {"word": "One word", "concept": "A set of words (concept)"}
CONCEPT_VIEW = {  # concept kind -> (the view kind its unit opens, or "directions"; the SVD matrix)
    "neuron-K": ("neuron", None),
    "neuron-V": ("neuron", None),
    "vo-read": ("vo", None),
    "vo-write": ("vo", None),
    "qk-query": ("qk", None),
    "qk-key": ("qk", None),
    "svd-ov": ("directions", "ov"),
    "svd-qk": ("directions", "qk"),
    "svd-ffn-in": ("directions", "ffn-in"),
    "svd-ffn-out": ("directions", "ffn-out"),
}
CONCEPT_MEANING = {
    "neuron-K": "FFN neuron, K·E (what triggers it)",
    "neuron-V": "FFN neuron, V·E (what it promotes)",
    "vo-read": "W_VO rows: what the head reads",
    "vo-write": "W_VO columns: what the head writes",
    "qk-query": "W_QK rows: the query side",
    "qk-key": "W_QK columns: the key side",
    "svd-ov": "SVD direction of a head's W_V W_O",
    "svd-qk": "SVD direction of a head's W_Q W_Kᵀ",
    "svd-ffn-in": "SVD direction of a layer's FFN keys",
    "svd-ffn-out": "SVD direction of a layer's FFN values",
}


def concept_words(text: str, uploaded: bytes | None) -> tuple[str, ...]:
    """The typed words (one per line or comma-separated) and those of an uploaded file, in order, once each."""
    words = split_words(text) + (split_words(uploaded.decode("utf-8", errors="replace")) if uploaded else [])
    return tuple(dict.fromkeys(words))


@st.cache_data(
    max_entries=RESULT_ENTRIES, show_spinner="Ranking every neuron, head and direction …", hash_funcs=HASH_FUNCS
)
def concept_frame(settings: ViewSettings, words: tuple[str, ...], k: int, limit: int) -> pd.DataFrame:
    """The units whose top k holds most of `words`, best first: the `concepts` records as rows."""
    note_computation("concepts", words, k, limit, settings.filter_spec)
    model = settings.model
    atlas = model_atlas(model)
    if atlas is not None and k > atlas.k:
        atlas = None  # the stored lists are shorter than k: live answers
    found = concepts(
        model,
        list(words),
        k=k,
        limit=limit,
        vocab_filter=settings.vocab_filter,
        pair_filter=settings.pair_filter,
        atlas=atlas,
        index=search_index(model) if atlas is None else None,
    )
    columns = ["kind", "layer", "index", "direction", "side", "hits", "score", "words", "source"]
    frame = pd.DataFrame([hit.as_dict() for hit in found], columns=columns)
    frame["words"] = frame["words"].map(", ".join)
    return frame


def concept_table(frame: pd.DataFrame) -> pd.DataFrame:
    """What the page shows: open, what, layer, unit, direction, hits, score, the words that hit."""
    return pd.DataFrame(
        {
            "open": [OPEN_TEXT] * len(frame),
            "what": frame["kind"].map(CONCEPT_MEANING),
            "layer": frame["layer"],
            "neuron / head": frame["index"].map(lambda index: "" if pd.isna(index) else str(int(index))),
            "direction": [
                "" if pd.isna(d) else f"{int(d)} ({side})"
                for d, side in zip(frame["direction"], frame["side"], strict=True)
            ],
            "hits": frame["hits"],
            "score": frame["score"],
            "words that hit": frame["words"],
        },
        index=frame.index,
    )


def concept_links(frame: pd.DataFrame, shared: dict[str, str]) -> list[Link]:
    """Each unit's view: the neuron or head page, or /directions for an SVD direction."""
    links = []
    for row in frame.itertuples():
        view, matrix = CONCEPT_VIEW[row.kind]
        if view == "directions":
            params = {**shared, "kind": matrix, "layer": int(row.layer)}
            params |= {} if pd.isna(row.index) else {"head": int(row.index)}
            params["directions"] = max(8, int(row.direction) + 1)
            links.append(Link("pages/directions.py", {key: str(value) for key, value in params.items()}))
        else:
            kind = VIEW_KINDS[view]
            params = {**shared, **kind.params(int(row.layer), int(row.index))}
            links.append(Link(page_list.view_page(kind).script, {key: str(value) for key, value in params.items()}))
    return links


def concept_mode(settings: ViewSettings) -> None:
    """The second mode: a set of words (typed or a file), the units whose top k holds most of them, each row
    opening its unit's view. Returns early rather than st.stop(), so the mode and words reach the address."""
    text = urlstate.widget(
        st.text_area, "Words (one per line, or comma-separated)", key="words", default="", placeholder="walk\nrun\njump"
    )
    uploaded = st.file_uploader("… or a file with one word per line", type=["txt"], key="words_file")
    top_k = urlstate.widget(st.number_input, "Top k of each unit", key="ck", default=50, min_value=1, max_value=200)
    shown = urlstate.widget(st.number_input, "Units shown", key="units", default=20, min_value=1, max_value=500)
    concept = concept_words(text, uploaded.getvalue() if uploaded else None)
    if not concept:
        st.info("Type a few words (or upload a file) to see which units hold them together.")
        return
    units = concept_frame(settings, concept, int(top_k), int(shown))
    st.caption(f"{len(concept)} words. Order: {CONCEPT_SCORE_RULE}.")
    settings_line.show(settings, pairs=True)
    if units.empty:
        st.warning("No unit holds any of these words in its top k under the sidebar's filters.")
        return
    shared = {
        k: v for k, v in urlstate.current_params().items() if k not in ("q", "limit", "mode", "words", "ck", "units")
    }
    link_table(
        concept_table(units),
        concept_links(units, shared),
        key="concepts",
        column_config={"score": st.column_config.NumberColumn("score", format="%.2f")},
    )
    render.table_downloads(
        "concepts-" + "-".join(concept)[:60],
        units,
        settings_line.about(settings, pairs=True, view="concepts", query=" ".join(concept), k=int(top_k)),
    )
