"""Views answered from the model's atlas: stored candidates under the sidebar's filters, or None.

A page asks `page_atlas(model, table, layer)` whether to read the atlas (one found for this model,
holding that layer, and the page's "Answer from the atlas" toggle on), then reads its view with
the cached calls below. A view whose filters leave fewer than k stored candidates is incomplete:
`offer_live` says so and turns the toggle off with one click (the exact live computation).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import urlstate
from dashboard.cache import HASH_FUNCS, RESULT_ENTRIES, note_computation, operator_settings
from dashboard.state import ViewSettings
from embspace import EmbeddingSpaceModel
from embspace.atlas import APP_ATLASES, DEFAULT_K, Atlas, build_atlas, filter_pairs, filter_tokens, find_atlas
from embspace.atlas.remote import PartitionCache, is_uri
from embspace.hosting import HostingPolicy
from embspace.settings import atlas_dir

ATLAS_KEY = "atlas"  # the toggle's key and URL parameter (atlas=false: compute live)
ATLAS_HASH_FUNCS = {**HASH_FUNCS, Atlas: lambda atlas: (str(atlas.directory), atlas.manifest.get("created"))}


@st.cache_resource(max_entries=2, show_spinner=False, hash_funcs=HASH_FUNCS)
def model_atlas(model: EmbeddingSpaceModel) -> Atlas | None:
    """The atlas built for this model (atlases/ beside the app or $EMBSPACE_ATLAS_DIR, a directory or a URI
    such as hf://datasets/ORG/NAME read lazily), or None."""
    reader = operator_settings()
    operator_dir = atlas_dir(reader)
    return find_atlas(
        model, [APP_ATLASES, *([operator_dir] if operator_dir else [])], PartitionCache.from_settings(reader)
    )


def page_atlas(model: EmbeddingSpaceModel, table: str, layer: int | None = None) -> Atlas | None:
    """The atlas this view reads, or None (no atlas, `layer` not built, or the page's toggle off)."""
    atlas = model_atlas(model)
    if atlas is None or (layer is not None and layer not in atlas.layers(table)):
        return None
    use = urlstate.widget(
        st.toggle,
        "Answer from the atlas",
        key=ATLAS_KEY,
        default=True,
        help=f"Read this view from the precomputed atlas in `{atlas.directory}` (top {atlas.k} per view, "
        "filtered here) instead of computing it live.",
    )
    return atlas if use else None


def _use_live() -> None:
    st.session_state[ATLAS_KEY] = False


def offer_live(atlas: Atlas, what: str, shown: int, k: int) -> None:
    """Say that the atlas cannot give the exact top k under these filters, with a button to compute it."""
    st.warning(
        f"The atlas stores the top {atlas.k} {what} of this view; {shown} of them pass the sidebar's filters, "
        f"fewer than the {k} asked for (or the filters keep tokens the atlas never stored, like special tokens).",
        icon=":material/filter_alt:",
    )
    st.button(f"Compute the exact top {k} live", icon=":material/bolt:", on_click=_use_live, key="compute_live")


@st.cache_data(max_entries=RESULT_ENTRIES, show_spinner=False, hash_funcs=ATLAS_HASH_FUNCS)
def stored_head_pairs(
    settings: ViewSettings, atlas: Atlas, kind: str, layer: int, head: int, k: int
) -> tuple[pd.DataFrame, bool]:
    """(frame like cache.head_pairs, complete for settings.k) from the atlas: rank, row_token, col_token,
    score, row_id, col_id of the best k stored pairs that pass the filters."""
    note_computation("atlas_head_pairs", kind, layer, head, k, settings.filter_spec)
    model = settings.model
    stored = atlas.head_pairs(kind, layer, head, sign="-" if settings.negative else "+")
    wanted = filter_pairs(stored, model, k, settings.vocab_filter, settings.pair_filter, atlas_k=atlas.k)
    table = filter_pairs(stored, model, settings.k, settings.vocab_filter, settings.pair_filter, atlas_k=atlas.k)
    frame = wanted.frame
    display = model.vocab.display
    frame.insert(1, "row_token", [display(int(i)) for i in frame["row_id"]])
    frame.insert(2, "col_token", [display(int(i)) for i in frame["col_id"]])
    return frame[["rank", "row_token", "col_token", "score", "row_id", "col_id"]], table.complete


# A neuron's vectors as stored (always the most positive), and, for "most negative", the stored
# vector whose top tokens they are: the most negative K·E are the top of -K·E, scores negated.
NEGATIVE_SOURCE = {"K": "-K", "V": "-V", "-K": "K", "-V": "V"}


@st.cache_data(max_entries=RESULT_ENTRIES, show_spinner=False, hash_funcs=ATLAS_HASH_FUNCS)
def stored_neuron_tables(
    settings: ViewSettings, atlas: Atlas, layer: int, neuron: int, k: int
) -> tuple[dict[str, pd.DataFrame], bool]:
    """({"K", "V", "-K", "-V": frame like cache.neuron_tables}, complete for settings.k) from the atlas."""
    note_computation("atlas_neuron_tables", layer, neuron, k, settings.filter_spec)
    model = settings.model
    stored = atlas.neuron_tokens(layer, neuron)
    tables, complete = {}, True
    for name, source in NEGATIVE_SOURCE.items():
        frame = stored[source if settings.negative else name]
        if settings.negative:
            frame = frame.assign(score=-frame["score"])
        view = filter_tokens(frame, model, k, settings.vocab_filter, atlas_k=atlas.k)
        complete &= filter_tokens(frame, model, settings.k, settings.vocab_filter, atlas_k=atlas.k).complete
        top = view.frame
        top.insert(1, "token", [model.vocab.display(int(i)) for i in top["token_id"]])
        tables[name] = top[["rank", "token", "score", "token_id"]].astype({"score": "float64"})
    return tables, complete


@st.cache_data(max_entries=16, show_spinner=False, hash_funcs=ATLAS_HASH_FUNCS)
def stored_copying_scores(model: EmbeddingSpaceModel, atlas: Atlas):
    """Copying score of every head, float64 [n_layers, n_heads], from the atlas; None unless every layer is in it."""
    heads = atlas.head_scores()
    n_layers, n_heads = model.shape.n_layers, model.shape.n_heads
    if len(heads) != n_layers * n_heads:
        return None
    grid = heads.pivot(index="layer", columns="head", values="copying_score")
    return grid.reindex(index=range(n_layers), columns=range(n_heads)).to_numpy(dtype="float64")


BUILD_LIMIT_BYTES = 600_000_000  # "small models": weights up to this size build in minutes on a CPU
BUILD_K = DEFAULT_K


def atlas_directory(model: EmbeddingSpaceModel) -> Path:
    """Where the Start page builds this model's atlas: $EMBSPACE_ATLAS_DIR, else atlases/ beside the app."""
    root = atlas_dir(operator_settings()) or APP_ATLASES
    name = re.sub(r"[^A-Za-z0-9._]+", "-", f"{model.info.source}-{model.info.embedding}").strip("-.")
    return root / name[-100:]


def missing_layers(atlas: Atlas, model: EmbeddingSpaceModel) -> list[int]:
    """Layers a partial atlas lacks (in any of its tables)."""
    built = set(atlas.layers("pairs")) & set(atlas.layers("neurons")) & set(atlas.layers("heads"))
    return [layer for layer in range(model.shape.n_layers) if layer not in built]


def build_with_progress(model: EmbeddingSpaceModel, directory: Path, k: int, layers: list[int]) -> None:
    """Build `layers` of the atlas of `model` in `directory` one at a time, with a progress bar and ETA.

    Each layer is a resumable build of its own: a build stopped by leaving the page keeps finished layers."""
    bar = st.progress(0.0, text=f"Building the atlas in {directory}: layer {layers[0]} …")
    started = time.monotonic()
    for done, layer in enumerate(layers, start=1):
        build_atlas(model, directory, k=k, layers=[layer], progress=False)
        left = (time.monotonic() - started) / done * (len(layers) - done)
        bar.progress(done / len(layers), text=f"{done} of {len(layers)} layers built; about {left:.0f} s left")
    bar.empty()
    model_atlas.clear()


def can_build_here(model: EmbeddingSpaceModel, policy: HostingPolicy) -> bool:
    """The Start page offers a build for small models, never on a public (hosted) server nor into a URI."""
    small = model.info.weight_bytes <= BUILD_LIMIT_BYTES
    return not policy.hosted and small and not is_uri(atlas_dir(operator_settings()) or "")
