"""The attention-head page, shared by W_VO (`pages/vo.py`) and W_QK (`pages/qk.py`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from dashboard import annotations_ui, cache, pickers, render, sidebar
from embspace.heads import HEAD_KINDS, HeadKind
from embspace.tokens import DISPLAY_CONVENTION

DEFAULT_PAIRS_PLOTTED = 30


@dataclass(frozen=True)
class HeadPage:
    """Page text for one head kind; the matrix, rows and columns come from the engine's HeadKind."""

    kind: HeadKind
    title: str
    how_to_read: str

    @property
    def matrix(self) -> str:
        return f"{self.kind.title} = {self.kind.formula}"

    @property
    def rows(self) -> str:
        return self.kind.rows

    @property
    def columns(self) -> str:
        return self.kind.columns


PAGES = {
    "vo": HeadPage(
        kind=HEAD_KINDS["vo"],
        title="W_VO: what a head copies",
        how_to_read=(
            "Each pair (row token, column token) says: when this head **attends to** the row token, it "
            "**writes** the column token's direction into the residual stream, i.e. promotes it in the "
            "output. The row is what the head reads, the column what it writes. A head whose top pairs "
            "are the same token (or inflections of it) copies; turn on *Exclude identical pairs* in the "
            "sidebar to see what else it does."
        ),
    ),
    "qk": HeadPage(
        kind=HEAD_KINDS["qk"],
        title="W_QK: what a head attends to",
        how_to_read=(
            "Each pair (row token, column token) says: a position holding the **query** row token "
            "attends strongly to a position holding the **key** column token. Rows are queries, "
            "columns keys."
        ),
    ),
}


def head_page(kind: str) -> None:
    """Pickers, the top-pairs table, the copying score and the t-SNE of the pairs' tokens."""
    spec = PAGES[kind]
    controls = sidebar.current()
    model = controls.model
    st.title(spec.title)
    with st.expander("How to read this page", expanded=False):
        st.markdown(
            f"The head's matrix {spec.matrix} ({model.shape.vocab_size:,} × {model.shape.vocab_size:,}) "
            "is never built: its exact top entries are found from its two thin factors. "
            f"{spec.how_to_read}\n\nThe copying score (Elhage et al. 2021) is Σλ / Σ|λ| over the eigenvalues "
            "of the head's W_VO: near 1 the head copies what it attends to, near −1 it suppresses it.\n\n"
            f"{DISPLAY_CONVENTION}"
        )

    layer, head = pickers.layer_and_unit(model, "head", model.shape.n_heads)
    plot = pickers.scatter_options(
        "pairs",
        "Pairs in the plot",
        DEFAULT_PAIRS_PLOTTED,
        "The row and column tokens of this many top pairs are placed.",
    )
    pairs = cache.head_pairs(
        controls.model_key, controls.filter_key, kind, layer, head, max(controls.k, plot.points), controls
    )
    score = cache.head_copying_score(controls.model_key, layer, head, model)

    annotations_ui.editor(model, kind, layer, head)
    stem = f"{kind}-layer{layer}-head{head}"
    table_column, plot_column = st.columns([1, 1])
    with table_column:
        st.metric(
            "Copying score",
            f"{score:+.3f}",
            help="Σλ / Σ|λ| over the eigenvalues λ of this head's W_VO: +1 copies, −1 suppresses.",
        )
        st.subheader(f"Top {min(controls.k, len(pairs))} pairs")
        if len(pairs) < controls.k:
            st.info(f"Only {len(pairs)} pairs pass the sidebar's filters, fewer than the {controls.k} asked for.")
        st.caption(f"Row: {spec.rows}. Column: {spec.columns}. Score: the entry of {spec.kind.title}.")
        shown = {"rank": "rank", "row_token": spec.rows, "col_token": spec.columns, "score": "score"}
        render.table(pairs.head(controls.k), stem, shown=shown)
    with plot_column:
        if len(pairs) == 0:
            st.info("No pair passes the filters.")
        else:
            tokens = pair_tokens(pairs.head(plot.points))
            frame = cache.tsne_frame(
                controls.model_key,
                tuple(tokens["token_id"]),
                tuple(tokens["token"]),
                tuple(tokens["score"]),
                tuple(tokens["group"]),
                plot.dims,
                plot.normalize,
                model,
            )
            title = f"Layer {layer}, head {head}: the tokens of its {len(pairs.head(plot.points))} best pairs"
            render.scatter(frame, plot, title, f"{stem}-tsne")
            st.caption(
                "t-SNE of the tokens' embedding vectors (rows of E): nearby points are tokens the model "
                "embeds alike. Markers tell row tokens from column tokens; colour is the best score of a "
                "pair the token is in."
            )


def pair_tokens(pairs: pd.DataFrame) -> pd.DataFrame:
    """Distinct row tokens and distinct column tokens of `pairs` (best first), each with its best pair's score."""
    parts = []
    for group, id_column, token_column in (
        ("row token", "row_id", "row_token"),
        ("column token", "col_id", "col_token"),
    ):
        part = pairs.drop_duplicates(id_column)[[id_column, token_column, "score"]]
        parts.append(part.set_axis(["token_id", "token", "score"], axis=1).assign(group=group))
    return pd.concat(parts, ignore_index=True)
