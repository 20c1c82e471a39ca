"""The dashboard's settings as plain values: what model was asked for, what a view shows, their cache keys.

Widget-free: the sidebar (dashboard/sidebar.py) builds these from its widgets, the entry point
shares them with the page through `share()`, pages read them with `current()`, and the cached
calls (dashboard/cache.py) key their results on `cache_key()`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

import streamlit as st

from dashboard import page_list
from embspace import EmbeddingSpaceModel, PairFilter, VocabFilter

_SETTINGS = "_view_settings"  # session key: this run's ViewSettings, from the entry point to the page

ModelKey = tuple[str, str | None, str, str]  # (source, revision, embedding read, resolved path)


@dataclass(frozen=True)
class ModelChoice:
    """What the person asked to open (the sidebar's model widgets and the server's budget)."""

    source: str
    revision: str | None
    embedding: str  # one of embspace.EMBEDDING_CHOICES
    weight_budget_bytes: int


def model_key(model: EmbeddingSpaceModel) -> ModelKey:
    """What identifies the weights an opened model reads: the cache key of everything computed from it."""
    info = model.info
    return (info.source, info.revision, info.embedding, info.path)


@dataclass(frozen=True)
class ViewSettings:
    """The sidebar's settings for this run, with the opened model: what every page's tables obey."""

    model: EmbeddingSpaceModel
    k: int  # rows per table
    vocab_filter: VocabFilter
    pair_filter: PairFilter
    negative: bool  # most negative instead of most positive
    corpus_name: str | None = None  # the corpus filter's file name (shown, not part of the cache key)
    corpus_top_n: int | None = None  # the corpus filter keeps its N most common tokens (shown, ditto)

    @cached_property
    def filter_spec(self) -> str:
        """JSON of every filter setting (a corpus by its token-id digest), as stored with results."""
        spec = {**self.vocab_filter.describe(), **self.pair_filter.describe(), "negative": self.negative}
        return json.dumps(spec, sort_keys=True)

    def cache_key(self) -> str:
        """The key of a result computed under these settings: the model's identity and the filters.

        k is left out: cached calls take the number of rows they compute as their own argument."""
        return json.dumps([model_key(self.model), self.filter_spec])


def share(settings: ViewSettings) -> None:
    """Hand this run's settings to the page (called by the entry point after the sidebar)."""
    st.session_state[_SETTINGS] = settings


def current() -> ViewSettings:
    """This run's settings, for the page."""
    settings = st.session_state.get(_SETTINGS)
    if settings is None:
        # A fresh server runs a page named in its first URL without the entry point: Streamlit's
        # legacy pages/ mode, which lasts until the first st.navigation call. Make that call, then
        # rerun: the rerun goes through app.py, to the same page.
        st.navigation(page_list.pages())
        st.rerun()
    return settings


def release() -> None:
    """Forget this run's settings (and with them the model reference) once the page has run."""
    st.session_state.pop(_SETTINGS, None)
