"""What a table was computed under, said once: the line above it, its download's name, its file's header.

Every table and plot shows `line(settings)` above it; every download carries `file_suffix(settings)`
in its name and `record(settings, ...)` inside (a JSON `settings` object, leading CSV columns), so a
file read a week later still says whether it was the most negative, corpus-filtered, alphabet-only
table. All three read one `ViewSettings` (dashboard/state.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import streamlit as st

from dashboard.state import ViewSettings
from embspace.atlas.manifest import embspace_version

SEPARATOR = " · "


def token_filter_words(settings: ViewSettings) -> list[str]:
    """The token filters in effect, in words ("letters and digits (polish)", "corpus pl.txt (71 tokens)")."""
    vocab_filter = settings.vocab_filter
    words = []
    if vocab_filter.only_alnum:
        alphabet = vocab_filter.alphabet if isinstance(vocab_filter.alphabet, str) else "custom alphabet"
        words.append(f"letters and digits ({alphabet})")
    if vocab_filter.only_ascii:
        words.append("ASCII only")
    if not vocab_filter.exclude_special:
        words.append("special tokens kept")
    if vocab_filter.allowed_ids is not None:
        name = settings.corpus_name or "a corpus"
        top = f", its {settings.corpus_top_n:,} most common" if settings.corpus_top_n else ""
        words.append(f"corpus {name}{top} ({len(vocab_filter.allowed_ids):,} tokens)")
    return words


def pair_filter_words(settings: ViewSettings) -> list[str]:
    """The pair exclusions in effect (head tables only)."""
    if settings.pair_filter.exclude_fuzzy:
        return ["identical and near-identical pairs excluded"]
    if settings.pair_filter.exclude_same:
        return ["identical pairs excluded"]
    return []


def line(settings: ViewSettings, *, pairs: bool = False, filtered: bool = True) -> str:
    """One line naming what a table obeys, e.g. "Filters: letters and digits (polish) · corpus pl.txt
    (71 tokens) · most negative · E: input · k = 30".

    pairs: the table is of token pairs (the pair exclusions apply). filtered: False for results the
    token filters do not touch (copying scores): only the embedding is named."""
    embedding = f"E: {settings.model.info.embedding}"
    if not filtered:
        return f"The sidebar's token filters do not apply here{SEPARATOR}{embedding}"
    words = token_filter_words(settings) or ["no token filter"]
    if pairs:
        words += pair_filter_words(settings)
    if settings.negative:
        words.append("most negative")
    return "Filters: " + SEPARATOR.join([*words, embedding, f"k = {settings.k}"])


def show(settings: ViewSettings, *, pairs: bool = False, filtered: bool = True) -> None:
    """The settings line as a caption, above a table or plot."""
    st.caption(line(settings, pairs=pairs, filtered=filtered), help="Set in the sidebar; part of every download.")


def most(settings: ViewSettings, count: int, noun: str) -> str:
    """ "top 30 pairs" or "30 most negative pairs": what a title calls its rows."""
    return f"{count} most negative {noun}" if settings.negative else f"top {count} {noun}"


def _safe(text: str) -> str:
    """Lowercase letters, digits, dots and dashes only (a file-name part)."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.")[:24]


def file_suffix(settings: ViewSettings, *, pairs: bool = False, filtered: bool = True) -> str:
    """The settings as a short file-name part, e.g. "neg-alnum-polish-corpus-1a2b3c4d-k30"
    (filtered=False: only a non-input embedding, "" for the input one)."""
    embedding = settings.model.info.embedding
    tail = [] if embedding == "input" else [f"e-{_safe(embedding)}"]
    if not filtered:
        return "-".join(tail)
    vocab_filter = settings.vocab_filter
    parts = ["neg"] if settings.negative else []
    if vocab_filter.only_alnum:
        parts += ["alnum", _safe(str(vocab_filter.describe()["alphabet"]))]
    parts += ["ascii"] * vocab_filter.only_ascii + ["special"] * (not vocab_filter.exclude_special)
    if vocab_filter.allowed_ids is not None:
        parts += ["corpus", vocab_filter.describe()["allowed_ids"]["sha256"][:8]]
    if pairs and settings.pair_filter.exclude_fuzzy:
        parts.append("nonear")
    elif pairs and settings.pair_filter.exclude_same:
        parts.append("nosame")
    return "-".join([*parts, *tail, f"k{settings.k}"])


def record(settings: ViewSettings, *, pairs: bool = False, filtered: bool = True, **view: Any) -> dict[str, Any]:
    """The settings as a JSON object (a download's `settings`): model, filters, sign, k, and `view`
    (layer, head, neuron, ...); filtered=False: results the filters and k do not touch (null there)."""
    info = settings.model.info
    corpus = filtered and settings.vocab_filter.allowed_ids is not None
    return {
        "model": info.source,
        "revision": info.revision,
        "embedding": info.embedding,
        **view,
        "k": settings.k if filtered else None,
        "negative": settings.negative if filtered else None,
        "vocab_filter": settings.vocab_filter.describe() if filtered else None,
        "pair_filter": settings.pair_filter.describe() if filtered and pairs else None,
        "corpus": settings.corpus_name if corpus else None,
        "corpus_top_n": settings.corpus_top_n if corpus else None,
        "filters": line(settings, pairs=pairs, filtered=filtered),
        "embspace_version": embspace_version(),
    }


def columns(settings_record: dict[str, Any]) -> dict[str, Any]:
    """The record flattened to CSV columns, nested filters as `vocab_filter.only_alnum` etc."""
    flat: dict[str, Any] = {}
    for key, value in settings_record.items():
        if isinstance(value, dict):
            for inner, item in value.items():
                flat[f"{key}.{inner}"] = (
                    item if not isinstance(item, dict) else ";".join(f"{a}={b}" for a, b in item.items())
                )
        elif key != "filters":  # the line repeats the columns in words
            flat[key] = value
    return flat


@dataclass(frozen=True)
class FileSettings:
    """What a download carries: the file-name suffix and the `settings` record."""

    suffix: str
    record: dict[str, Any]


def about(settings: ViewSettings, *, pairs: bool = False, filtered: bool = True, **view: Any) -> FileSettings:
    """The FileSettings of a table computed under `settings` for `view` (layer=, head=, neuron=, ...)."""
    return FileSettings(
        file_suffix(settings, pairs=pairs, filtered=filtered), record(settings, pairs=pairs, filtered=filtered, **view)
    )
