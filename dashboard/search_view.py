"""The token search page's cached calls and its result table (links to each hit's view)."""

from __future__ import annotations

from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from dashboard.atlas_view import model_atlas
from dashboard.cache import HASH_FUNCS, RESULT_ENTRIES, note_computation
from dashboard.state import ViewSettings
from embspace.model import EmbeddingSpaceModel
from embspace.search import SearchIndex, query_tokens, search

VIEW_OF_KIND = {"neuron": ("neurons", "neuron"), "vo": ("vo", "head"), "qk": ("qk", "head")}
WHERE = {
    "neuron-K": "FFN neuron: the token triggers it (K·E)",
    "neuron-V": "FFN neuron: it promotes the token (V·E)",
    "vo-row": "W_VO row: the head reads (attends to) the token",
    "vo-col": "W_VO column: the head writes the token",
    "qk-row": "W_QK row: the token as the query",
    "qk-col": "W_QK column: the token as the key",
}


@st.cache_resource(max_entries=2, show_spinner="Indexing the model's FFN weights for search …", hash_funcs=HASH_FUNCS)
def search_index(model: EmbeddingSpaceModel) -> SearchIndex:
    """Every layer's FFN keys and values stacked once per model (the live search's working set)."""
    return SearchIndex(model)


@st.cache_data(max_entries=RESULT_ENTRIES, show_spinner="Searching every neuron and head …", hash_funcs=HASH_FUNCS)
def hits_frame(settings: ViewSettings, words: tuple[str, ...], limit: int) -> pd.DataFrame:
    """The hits of `words`, best first: kind, layer, index, token, rank, score, partner, token_id, source."""
    note_computation("search", words, limit, settings.filter_spec)
    model = settings.model
    found = search(
        model,
        list(words),
        vocab_filter=settings.vocab_filter,
        pair_filter=settings.pair_filter,
        limit=limit,
        atlas=model_atlas(model),
        index=search_index(model),
    )
    columns = ["kind", "layer", "index", "token", "rank", "score", "partner_token", "token_id", "source"]
    return pd.DataFrame([hit.as_dict() for hit in found], columns=[*columns, "partner_id"])[columns]


def split_words(model: EmbeddingSpaceModel, words: list[str]) -> list[tuple[str, list[str]]]:
    """(word, its tokens) for each word the user typed, as the tokenizer splits it."""
    return [(word.word, list(word.tokens)) for word in query_tokens(model, words)]


def view_link(kind: str, layer: int, index: int, shared: dict[str, str]) -> str:
    """The address of a hit's page with the view set and the sidebar's settings kept."""
    page, unit = VIEW_OF_KIND[kind.split("-")[0]]
    return f"/{page}?" + urlencode({**shared, "layer": layer, unit: index})


def best_links(frame: pd.DataFrame, shared: dict[str, str]) -> None:
    """One link (same tab) per place the token was found (FFN K, FFN V, W_VO row, ...): its best hit's view."""
    for hit in frame.drop_duplicates("kind").itertuples():
        page, unit = VIEW_OF_KIND[hit.kind.split("-")[0]]
        label = (
            f"{WHERE[hit.kind].split(':')[0]} — layer {hit.layer}, {unit} {hit.index}: {hit.token} (rank {hit.rank})"
        )
        st.page_link(f"pages/{page}.py", label=label, query_params={**shared, "layer": hit.layer, unit: hit.index})


def results_table(frame: pd.DataFrame, shared: dict[str, str], labels: dict | None = None) -> pd.DataFrame:
    """What the page shows: where, layer, neuron/head, token, rank, score, best partner, label, link.

    labels: {(view kind "neuron"|"vo"|"qk", layer, index): label} of the annotated views."""
    labels = labels or {}
    views = zip(frame["kind"].str.split("-").str[0], frame["layer"], frame["index"], strict=True)
    return pd.DataFrame(
        {
            "where": frame["kind"].map(WHERE),
            "layer": frame["layer"],
            "neuron / head": frame["index"],
            "token": frame["token"],
            "rank": frame["rank"],
            "score": frame["score"],
            "best partner": frame["partner_token"].fillna(""),
            "label": [labels.get((kind, int(layer), int(index)), "") for kind, layer, index in views],
            "open": [
                view_link(kind, int(layer), int(index), shared)
                for kind, layer, index in zip(frame["kind"], frame["layer"], frame["index"], strict=True)
            ],
        }
    )
