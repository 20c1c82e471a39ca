"""The dashboard's cached calls into embspace: models shared by all sessions, results per view.

Models live in `st.cache_resource`, keyed on the ModelChoice and the hosting policy. Results
live in `st.cache_data`. Cached functions take the objects they need (the model, the view's
settings, an upload) and Streamlit keys them by `HASH_FUNCS`: a model by its identity
(`state.model_key`), settings by `ViewSettings.cache_key()`, an upload by its digest, so a key
always matches its object and no tensor is ever hashed. Long work shows a progress bar created
inside the cached function, so a cache hit replays it as already finished and removed.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from dashboard.pickers import ScatterOptions
from dashboard.scatter_plot import pair_tokens, scatter_figure
from dashboard.state import ModelChoice, ViewSettings, model_key
from embspace import EmbeddingSpaceModel, PairTable, copying_scores, head_top_pairs, neuron_top_tokens
from embspace.compute import copying_score, embedding_gram

# Not on the compute face: t-SNE loads scikit-learn (about 1.3 s), which every CLI command would then pay.
from embspace.compute.tsne import scatter_frame, tsne_coordinates
from embspace.hosting import HostingPolicy
from embspace.settings import SettingReader, compute_log, snapshot
from embspace.vocab import corpus_token_ids, count_corpus_tokens, iter_corpus_texts

RESULT_ENTRIES = 512  # results are small (k rows); bounded anyway for a long-running server
FIGURE_ENTRIES = 128  # built figures (~15 kB of points each), shared by every session that shows one
PROGRESS_STEPS = 50  # at most this many progress-bar updates per job (each is replayed on a hit)


@dataclass(frozen=True)
class CorpusUpload:
    """An uploaded corpus in the session (the page address names it by digest: dashboard/corpus_view.py)."""

    name: str
    data: bytes
    digest: str  # sha256 of data: the upload's cache key


def frame_key(frame: pd.DataFrame) -> tuple:
    """A small result frame's cache key, its columns' values as tuples: Streamlit's own DataFrame hash costs
    a view several times more for the figure caches' 60-row frames."""
    return tuple((name, tuple(frame[name].tolist())) for name in frame.columns)


HASH_FUNCS = {
    EmbeddingSpaceModel: model_key,
    pd.DataFrame: frame_key,
    ViewSettings: ViewSettings.cache_key,
    CorpusUpload: lambda upload: upload.digest,
}


def _progress_bar(text: str) -> tuple[st.delta_generator.DeltaGenerator, Callable[[float, str], None]]:
    """A progress bar and its throttled `update(fraction, text)`; updates from other threads are dropped
    (the hub downloads in a thread pool, and only the script thread may touch elements)."""
    bar = st.progress(0.0, text=text)
    script_thread = threading.get_ident()
    shown = [-1]

    def update(fraction: float, message: str) -> None:
        step = int(min(max(fraction, 0.0), 1.0) * PROGRESS_STEPS)
        if threading.get_ident() == script_thread and step != shown[0]:
            shown[0] = step
            bar.progress(step / PROGRESS_STEPS, text=message)

    return bar, update


@st.cache_resource(show_spinner=False)
def secrets_now() -> dict:
    """`.streamlit/secrets.toml` as a plain dict ({} without one), read once per process and again when
    Streamlit reports the file changed: while there is none, st.secrets looks for its files again on
    every access, which was a tenth of the server's time with 32 viewers."""
    try:
        return dict(st.secrets)
    except Exception:  # st.secrets raises when there is no secrets.toml at all
        return {}


def _secrets_changed(*_) -> None:
    secrets_now.clear()


st.secrets.file_change_listener.connect(_secrets_changed, weak=False)


def operator_settings() -> SettingReader:
    """The operator's settings: the environment first, then `.streamlit/secrets.toml`."""
    return SettingReader.of(os.environ, secrets_now())


def hosting_policy() -> HostingPolicy:
    """The operator's hosting policy, parsed once per change of the settings it reads (not once per run)."""
    reader = operator_settings()
    return _hosting_policy(snapshot(reader), reader)


@st.cache_resource(max_entries=4, show_spinner=False, hash_funcs={SettingReader: lambda reader: None})
def _hosting_policy(key: tuple, reader: SettingReader) -> HostingPolicy:
    return HostingPolicy.from_env(reader.environ, reader.secrets)


def note_computation(name: str, *key) -> None:
    """Append one line per real (uncached) computation to $EMBSPACE_COMPUTE_LOG when set: how the
    sessions benchmark proves that concurrent sessions asking for one view compute it once."""
    path = compute_log(operator_settings())
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps([name, *key]) + "\n")


@st.cache_resource(max_entries=2, show_spinner=False)
def load_model(choice: ModelChoice, policy: HostingPolicy) -> EmbeddingSpaceModel:
    """The opened model, shared read-only by every session (it holds no per-session state).

    Opened under the operator's hosting `policy` (part of the key): in hosted mode it refuses local paths
    with one fixed message and downloads hub models into the app's own bounded cache."""
    bar, update = _progress_bar(f"Opening {choice.source} …")
    try:
        if policy.weight_budget_bytes != choice.weight_budget_bytes:
            policy = replace(policy, weight_budget_bytes=choice.weight_budget_bytes)
        return policy.open_model(
            choice.source,
            revision=choice.revision,
            embedding=choice.embedding,
            progress=lambda message, fraction: update(fraction, message),
        )
    finally:
        bar.empty()


@st.cache_resource(max_entries=2, show_spinner=False, hash_funcs=HASH_FUNCS)
def _embedding_gram(model: EmbeddingSpaceModel) -> torch.Tensor:
    """E Eᵀ [d_model, d_model], float64: shared by every head's copying score."""
    return embedding_gram(model)


@st.cache_data(max_entries=RESULT_ENTRIES, show_spinner=False, hash_funcs=HASH_FUNCS)
def corpus_ids(
    model: EmbeddingSpaceModel, upload: CorpusUpload, fmt: str, field: str | None, top_n: int | None
) -> frozenset[int]:
    """Token ids of an uploaded corpus (its N most common with top_n)."""
    return corpus_token_ids(corpus_counts(model, upload, fmt, field), top_n=top_n)


@st.cache_data(max_entries=RESULT_ENTRIES, show_spinner=False, hash_funcs=HASH_FUNCS)
def corpus_counts(model: EmbeddingSpaceModel, upload: CorpusUpload, fmt: str, field: str | None) -> Counter:
    """Counter token id -> occurrences in an uploaded corpus, with progress (kept: the token list shows them)."""
    texts = list(iter_corpus_texts(upload.data, fmt=fmt, field=field))
    bar, update = _progress_bar(f"Tokenising {upload.name} …")
    try:
        counts = count_corpus_tokens(
            model.tokenizer,
            texts,
            progress=lambda done, total: update(
                done / max(total or 1, 1), f"Tokenising {upload.name}: {done:,} of {total or 0:,} texts"
            ),
        )
    finally:
        bar.empty()
    return counts


@st.cache_data(max_entries=RESULT_ENTRIES, show_spinner="Projecting the neuron's vectors …", hash_funcs=HASH_FUNCS)
def neuron_tables(settings: ViewSettings, layer: int, neuron: int, k: int) -> dict[str, pd.DataFrame]:
    """{"K": frame, "V": ..., "-K", "-V" (and "U", "-U")}: each frame has rank, token, score, token_id."""
    tables = neuron_top_tokens(settings.model, layer, neuron, k, settings.vocab_filter, settings.negative)
    return {
        name: pd.DataFrame(
            {
                "rank": np.arange(1, len(t.token_ids) + 1),
                "token": list(t.tokens),
                "score": t.scores.astype(np.float64),
                "token_id": t.token_ids,
            }
        )
        for name, t in tables.items()
    }


@st.cache_data(max_entries=RESULT_ENTRIES, show_spinner="Finding the head's top token pairs …", hash_funcs=HASH_FUNCS)
def head_pairs(settings: ViewSettings, kind: str, layer: int, head: int, k: int) -> pd.DataFrame:
    """Top pairs of a head's W_VO or W_QK: rank, row_token, col_token, score, row_id, col_id."""
    note_computation("head_pairs", kind, layer, head, k, settings.filter_spec)
    table = head_top_pairs(
        settings.model, kind, layer, head, k, settings.vocab_filter, settings.pair_filter, settings.negative
    )
    return pairs_frame(table)


@st.cache_data(max_entries=RESULT_ENTRIES, show_spinner="Finding the token's partners …", hash_funcs=HASH_FUNCS)
def token_partners(
    settings: ViewSettings, kind: str, layer: int, head: int, token: int, side: str, k: int
) -> pd.DataFrame:
    """The head's top pairs with `token` as the row (side "row") or the column ("col"); like head_pairs."""
    model = settings.model
    only = {f"{side}_token": token}
    table = head_top_pairs(
        model, kind, layer, head, k, settings.vocab_filter, settings.pair_filter, settings.negative, **only
    )
    return pairs_frame(table)


def pairs_frame(table: PairTable) -> pd.DataFrame:
    """rank, row_token, col_token, score (float64), row_id, col_id of a PairTable."""
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(table.scores) + 1),
            "row_token": list(table.row_tokens),
            "col_token": list(table.col_tokens),
            "score": table.scores.astype(np.float64),
            "row_id": table.row_ids,
            "col_id": table.col_ids,
        }
    )


@st.cache_data(max_entries=RESULT_ENTRIES, show_spinner="Computing the copying score …", hash_funcs=HASH_FUNCS)
def head_copying_score(model: EmbeddingSpaceModel, layer: int, head: int) -> float:
    """Copying score of one head, in [-1, 1]."""
    return copying_score(model, layer, head, _embedding_gram(model))


@st.cache_data(max_entries=16, show_spinner=False, hash_funcs=HASH_FUNCS)
def copying_score_grid(model: EmbeddingSpaceModel) -> np.ndarray:
    """Copying score of every head, float64 [n_layers, n_heads], with a progress bar per layer."""
    bar, update = _progress_bar("Copying scores of every head …")
    try:
        return copying_scores(
            model, progress=lambda done, total: update(done / total, f"Copying scores: layer {done} of {total} done")
        )
    finally:
        bar.empty()


@st.cache_data(max_entries=RESULT_ENTRIES, show_spinner="Placing the tokens with t-SNE …", hash_funcs=HASH_FUNCS)
def tsne_frame(
    model: EmbeddingSpaceModel,
    token_ids: tuple[int, ...],
    labels: tuple[str, ...],
    scores: tuple[float, ...],
    groups: tuple[str, ...] | None,
    dims: int,
    normalize: bool,
) -> pd.DataFrame:
    """t-SNE of the tokens' embedding rows (model.embedding_rows[ids], [n, d_model]) as a scatter frame."""
    vectors = model.embedding_rows[torch.as_tensor(token_ids, dtype=torch.long)]
    coords = tsne_coordinates(vectors, dims=dims, normalize=normalize)
    return scatter_frame(token_ids, labels, scores, coords, groups=groups)


@st.cache_resource(max_entries=FIGURE_ENTRIES, show_spinner=False, hash_funcs=HASH_FUNCS)
def tokens_scatter(model: EmbeddingSpaceModel, tokens: pd.DataFrame, options: ScatterOptions, title: str) -> go.Figure:
    """The t-SNE scatter figure of `tokens` (token_id, token, score, and optionally group), built once per
    process: building a plotly figure costs a view more server time than everything else once results
    are cached. Shared read-only (st.plotly_chart serialises a copy)."""
    groups = tuple(tokens["group"]) if "group" in tokens else None
    frame = tsne_frame(
        model,
        tuple(int(i) for i in tokens["token_id"]),
        tuple(tokens["token"]),
        tuple(float(s) for s in tokens["score"]),
        groups,
        options.dims,
        options.normalize,
    )
    return scatter_figure(frame, dims=options.dims, show_labels=options.labels, title=title)


@st.cache_resource(max_entries=FIGURE_ENTRIES, show_spinner=False, hash_funcs=HASH_FUNCS)
def pairs_scatter(model: EmbeddingSpaceModel, pairs: pd.DataFrame, options: ScatterOptions, title: str) -> go.Figure:
    """The t-SNE scatter figure of the row and column tokens of `pairs` (like head_pairs' frame), built once."""
    return tokens_scatter(model, pair_tokens(pairs), options, title)
