"""The token search page's cached calls, its words and their tokens, what rank means, and its result tables
(each row opens its hit's view in the same tab)."""

from __future__ import annotations

from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from dashboard import page_list
from dashboard.atlas_view import model_atlas
from dashboard.cache import HASH_FUNCS, RESULT_ENTRIES, note_computation
from dashboard.links import OPEN_TEXT, Link
from dashboard.state import ViewSettings, model_key
from embspace import EmbeddingSpaceModel
from embspace.search import QueryWord, SearchIndex, query_tokens, search
from embspace.views import view_kind, view_side


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
        else "its place among the tokens paired with its best partner (1 = a mutual best pair)"
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
