"""The attention-head page, shared by W_VO (`pages/vo.py`) and W_QK (`pages/qk.py`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from dashboard import (
    annotations_ui,
    atlas_view,
    cache,
    pickers,
    prefetch,
    render,
    settings_line,
    state,
    tour_ui,
    urlstate,
)
from dashboard.directions_view import directions_link
from dashboard.pickers import ScatterOptions
from dashboard.settings_line import FileSettings
from dashboard.state import ViewSettings
from embspace import DISPLAY_CONVENTION, HEAD_KINDS, EmbspaceError, HeadKind, query_tokens

DEFAULT_PAIRS_PLOTTED = 30
TOKEN_KEY = "token"  # the word's URL parameter (a search hit's link sets it)
# The "token in this head" input: any word, split as the tokenizer splits it.
TOKEN_INPUT = dict(
    placeholder="e.g. king, ##ing",
    help="Its best partners in this head, whether or not it is among the head's top pairs overall. "
    "A word the tokenizer splits shows each of its tokens (the first three).",
)


@dataclass(frozen=True)
class HeadPage:
    """Page text for one head kind; the title, matrix, rows and columns come from the engine's HeadKind."""

    kind: HeadKind
    subtitle: str  # what the page answers, after the kind's title: "what a head copies"
    how_to_read: str

    @property
    def title(self) -> str:
        return f"{self.kind.title}: {self.subtitle}"


PAGES = {
    "vo": HeadPage(
        kind=HEAD_KINDS["vo"],
        subtitle="what a head copies",
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
        subtitle="what a head attends to",
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
    settings = state.current()
    model = settings.model
    st.title(spec.title)
    with st.expander("How to read this page", expanded=False):
        st.markdown(how_to_read(spec, model.shape.vocab_size))

    layer, head = pickers.layer_and_unit(model, spec.kind.view)
    directions_link(kind, layer, head)  # the head's whole OV / QK, direction by direction
    plot = pickers.scatter_options(
        "pairs",
        "Pairs in the plot",
        DEFAULT_PAIRS_PLOTTED,
        "The row and column tokens of this many top pairs are placed.",
    )
    pairs = head_pairs(settings, kind, layer, head, max(settings.k, plot.points))
    score = cache.head_copying_score(model, layer, head)

    annotations_ui.editor(model, kind, layer, head)
    tour_ui.add_to_tour(settings, kind, layer, head)
    stem = f"{kind}-layer{layer}-head{head}"
    # A view opened for a word (a search hit's link, ?token=king) lands on that word's section.
    word_first = bool(urlstate.url_param(TOKEN_KEY, "").strip())
    if word_first:
        token_in_head(settings, spec, layer, head)
    settings_line.show(settings, pairs=True)
    table_column, plot_column = st.columns([1, 1])
    with table_column:
        about = settings_line.about(settings, pairs=True, view=kind, layer=layer, head=head)
        pairs_table(spec, settings, pairs, score, stem, about)
    with plot_column:
        pairs_scatter(settings, pairs, plot, f"Layer {layer}, head {head}", stem)
    if not word_first:
        token_in_head(settings, spec, layer, head)
    step = pickers.stepped(model, spec.kind.view, layer, head)
    if step and atlas_view.model_atlas(model) is None:  # an atlas answers the next head at once anyway
        next_layer, next_head = pickers.neighbour(model, spec.kind.view, layer, head, step)
        prefetch.in_background(lambda: compute_view(settings, kind, next_layer, next_head, plot))


def compute_view(settings: ViewSettings, kind: str, layer: int, head: int, plot: ScatterOptions) -> None:
    """What the page computes for a head, live, without drawing: its pairs, copying score and scatter."""
    pairs = cache.head_pairs(settings, kind, layer, head, max(settings.k, plot.points))
    cache.head_copying_score(settings.model, layer, head)
    if len(pairs):
        top = pairs.head(plot.points)
        cache.pairs_scatter(settings.model, top, plot, scatter_title(settings, f"Layer {layer}, head {head}", len(top)))


def head_pairs(settings: ViewSettings, kind: str, layer: int, head: int, k: int) -> pd.DataFrame:
    """The head's top pairs from the atlas when it answers (saying so, and when its answer is not the
    exact top k), else computed live."""
    atlas = atlas_view.page_atlas(settings.model, "pairs", layer)
    if atlas is None:
        return cache.head_pairs(settings, kind, layer, head, k)
    pairs, complete = atlas_view.stored_head_pairs(settings, atlas, kind, layer, head, k)
    if complete:
        st.caption(f"From the atlas in `{atlas.directory}`.")
    else:
        atlas_view.offer_live(atlas, "pairs", min(len(pairs), settings.k), settings.k)
    return pairs


def token_in_head(settings: ViewSettings, spec: HeadPage, layer: int, head: int) -> None:
    """A typed word's (or a search hit's) best partners in this head, as a row and as a column."""
    word = urlstate.widget(st.text_input, "A token in this head", key=TOKEN_KEY, default="", **TOKEN_INPUT)
    if not word.strip():
        return
    try:
        (found,) = query_tokens(settings.model, [word])
    except EmbspaceError as err:
        st.warning(str(err))
        return
    partners = "most negative partners" if settings.negative else "best partners"
    for token_id, token in list(zip(found.token_ids, found.tokens, strict=True))[:3]:
        st.subheader(f"{token} (token {token_id}) in this head")
        settings_line.show(settings, pairs=True)
        as_row, as_column = st.columns(2)
        for column, side, fixed, partner in (
            (as_row, "row", spec.kind.rows, spec.kind.columns),
            (as_column, "col", spec.kind.columns, spec.kind.rows),
        ):
            pairs = cache.token_partners(settings, spec.kind.name, layer, head, token_id, side, settings.k)
            with column:
                st.caption(f"As the {fixed}: its {partners} ({partner})")
                shown = {"rank": "rank", "col_token" if side == "row" else "row_token": partner, "score": "score"}
                view = dict(view=spec.kind.name, layer=layer, head=head, token=token, token_id=int(token_id), side=side)
                about = settings_line.about(settings, pairs=True, **view)
                render.table(pairs, f"{spec.kind.name}-layer{layer}-head{head}-{side}-{token_id}", about, shown=shown)


def how_to_read(spec: HeadPage, vocab_size: int) -> str:
    """The page's explanation: the matrix, what a pair means, the copying score, how tokens are written."""
    return (
        f"The head's matrix {spec.kind.title} = {spec.kind.formula} ({vocab_size:,} × {vocab_size:,}) "
        "is never built: its exact top entries are found from its two thin factors. "
        f"{spec.how_to_read}\n\nThe copying score (Elhage et al. 2021) is Σλ / Σ|λ| over the eigenvalues "
        "of the head's W_VO: near 1 the head copies what it attends to, near −1 it suppresses it. It reads "
        "the raw (unfolded) weights through the sidebar's E, the same E on both sides unless the embedding "
        "is *input-output*.\n\n"
        f"{DISPLAY_CONVENTION}"
    )


def pairs_table(
    spec: HeadPage, settings: ViewSettings, pairs: pd.DataFrame, score: float, stem: str, about: FileSettings
) -> None:
    """The copying score and the top-k pairs table, with its downloads."""
    k = settings.k
    st.metric(
        "Copying score",
        f"{score:+.3f}",
        help="Σλ / Σ|λ| over the eigenvalues λ of this head's W_VO: +1 copies, −1 suppresses.",
    )
    st.subheader(capitalized(settings_line.most(settings, min(k, len(pairs)), "pairs")))
    if len(pairs) < k:
        st.info(f"Only {len(pairs)} pairs pass the sidebar's filters, fewer than the {k} asked for.")
    st.caption(f"Row: {spec.kind.rows}. Column: {spec.kind.columns}. Score: the entry of {spec.kind.title}.")
    shown = {"rank": "rank", "row_token": spec.kind.rows, "col_token": spec.kind.columns, "score": "score"}
    render.table(pairs.head(k), stem, about, shown=shown)


def pairs_scatter(settings: ViewSettings, pairs: pd.DataFrame, plot: ScatterOptions, where: str, stem: str) -> None:
    """t-SNE of the row and column tokens of the best `plot.points` pairs."""
    if len(pairs) == 0:
        st.info("No pair passes the filters.")
        return
    top = pairs.head(plot.points)
    figure = cache.pairs_scatter(settings.model, top, plot, scatter_title(settings, where, len(top)))
    render.figure(figure, f"{stem}-tsne", key="tsne", suffix=settings_line.file_suffix(settings, pairs=True))
    st.caption(
        "t-SNE of the tokens' embedding vectors (rows of E): nearby points are tokens the model "
        "embeds alike. Markers tell row tokens from column tokens; colour is the best score of a "
        "pair the token is in."
    )


def scatter_title(settings: ViewSettings, where: str, count: int) -> str:
    """The scatter's title: "Layer 2, head 3: the tokens of its 30 best pairs" (or most negative)."""
    order = "most negative" if settings.negative else "best"
    return f"{where}: the tokens of its {count} {order} pairs"


def capitalized(text: str) -> str:
    """`text` with its first letter upper-case ("top 30 pairs" -> "Top 30 pairs")."""
    return text[:1].upper() + text[1:]
