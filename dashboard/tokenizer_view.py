"""What the tokenizer does to text before splitting it (lowercasing, accent stripping) and what that does to
an alphabet's letters, said where it matters: the Start page, the sidebar's alphabet filter and search."""

from __future__ import annotations

import streamlit as st

from dashboard.cache import HASH_FUNCS
from embspace import EmbeddingSpaceModel
from embspace.vocab import NormalizerReport, normalize_text, normalizer_report


@st.cache_data(max_entries=64, show_spinner=False, hash_funcs=HASH_FUNCS)
def report(model: EmbeddingSpaceModel, alphabet: str | None = None) -> NormalizerReport:
    """The tokenizer's normalizer report, for the letters of `alphabet` (a name of embspace ALPHABETS)."""
    return normalizer_report(model.tokenizer, alphabet)


def alphabet_note(model: EmbeddingSpaceModel, alphabet: str) -> str:
    """The sidebar's caption under the alphabet: what the tokenizer does to its letters."""
    found = report(model, alphabet)
    if not found.changes_text:
        return f"{found.summary()} Every {alphabet} letter can occur in a token as written."
    letters = found.letters_summary()
    if not letters:
        return f"{found.summary()} No {alphabet} letter is changed beyond case."
    return (
        f"{found.summary()} Of the {alphabet} letters: {letters}. No token holds a letter it turns into another, "
        "so tokens with those letters do not exist here."
    )


def text_note(model: EmbeddingSpaceModel) -> str:
    """One sentence for the Start page and search: what the tokenizer does to typed text, with an example."""
    found = report(model, "polish")
    if not found.changes_text:
        return f"{found.summary()} Text is split as written."
    example = normalize_text(model.tokenizer, "Król żółw")
    said = f"{found.summary()} Before it splits text, “Król żółw” becomes “{example}”"
    return said + " — searches and corpora are read the same way."


def search_note(model: EmbeddingSpaceModel) -> None:
    """A caption on the search page when the tokenizer changes what was typed."""
    if report(model).changes_text:
        st.caption(text_note(model), help=f"The tokenizer's normalizer: {report(model).normalizer}.")
