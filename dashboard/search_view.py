"""The token search page's cached calls and its result table (links to each hit's view)."""

from __future__ import annotations

from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from dashboard.atlas_view import model_atlas
from dashboard.cache import HASH_FUNCS, RESULT_ENTRIES, note_computation
from dashboard.state import ViewSettings, model_key
from embspace import EmbeddingSpaceModel
from embspace.search import SearchIndex, query_tokens, search
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


def split_words(model: EmbeddingSpaceModel, words: list[str]) -> list[tuple[str, list[str]]]:
    """(word, its tokens) for each word the user typed, as the tokenizer splits it."""
    return [(word.word, list(word.tokens)) for word in query_tokens(model, words)]


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


def results_table(frame: pd.DataFrame, shared: dict[str, str], labels: dict | None = None) -> pd.DataFrame:
    """What the page shows: where, layer, neuron/head, token, rank, score, best partner, label, link.

    labels: {(view kind "neuron"|"vo"|"qk", layer, index): label} of the annotated views."""
    labels = labels or {}
    vocab_tokens = frame["vocab_token"] if "vocab_token" in frame else [None] * len(frame)
    views = zip(frame["kind"].map(lambda kind: view_kind(kind).name), frame["layer"], frame["index"], strict=True)
    return pd.DataFrame(
        {
            "where": frame["kind"].map(lambda kind: view_side(kind).meaning),
            "layer": frame["layer"],
            "neuron / head": frame["index"],
            "token": frame["token"],
            "rank": frame["rank"],
            "score": frame["score"],
            "best partner": frame["partner_token"].fillna(""),
            "label": [labels.get((kind, int(layer), int(index)), "") for kind, layer, index in views],
            "open": [
                view_link(kind, int(layer), int(index), shared, token)
                for kind, layer, index, token in zip(
                    frame["kind"], frame["layer"], frame["index"], vocab_tokens, strict=True
                )
            ],
        }
    )
