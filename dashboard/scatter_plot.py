"""The plotly scatter of a t-SNE frame (`embspace.compute.tsne.scatter_frame`) and its standalone HTML.

The successor of the notebook's `plot_embedding_space`: the figure the pages show and offer as a download.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

# Symbols valid for both Scatter and Scatter3d, in the order groups receive them.
GROUP_SYMBOLS = ("circle", "diamond", "square", "cross", "x", "circle-open", "diamond-open", "square-open")
COLORSCALE = "Viridis"
HEIGHT = 600


def _plotly_text(token: str) -> str:
    """Escape a token for plotly's pseudo-HTML, which would otherwise eat e.g. "<s>" as strikethrough."""
    return html.escape(token, quote=False)


def pair_tokens(pairs: pd.DataFrame) -> pd.DataFrame:
    """Distinct row tokens and distinct column tokens of `pairs` (best first), each with its best pair's score:
    token_id, token, score, group ("row token" / "column token"), what a head's scatter places."""
    parts = []
    for group, id_column, token_column in (
        ("row token", "row_id", "row_token"),
        ("column token", "col_id", "col_token"),
    ):
        part = pairs.drop_duplicates(id_column)[[id_column, token_column, "score"]]
        parts.append(part.set_axis(["token_id", "token", "score"], axis=1).assign(group=group))
    return pd.concat(parts, ignore_index=True)


def scatter_figure(
    frame: pd.DataFrame,
    *,
    dims: int = 3,
    show_labels: bool = False,
    title: str = "",
) -> go.Figure:
    """Scatter3d (dims=3) or Scatter (dims=2) of a `scatter_frame`, coloured by score.

    One trace per group, told apart by marker symbol, all on one shared colour axis; hover shows
    token, score and token id; show_labels writes each token next to its point.
    """
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims}")
    axes = ("x", "y", "z")[:dims]
    missing = [c for c in ("token_id", "token", "score", *axes) if c not in frame.columns]
    if missing:
        hint = " (build the frame from 3-D coordinates, or pass dims=2)" if "z" in missing else ""
        raise ValueError(f"frame lacks columns {missing}{hint}")

    groups = frame["group"] if "group" in frame.columns else pd.Series([""] * len(frame), index=frame.index)
    group_names = list(dict.fromkeys(groups))  # order of first appearance
    several = len(group_names) > 1
    fig = go.Figure()
    for index, name in enumerate(group_names):
        part = frame[(groups == name).to_numpy()]
        fig.add_trace(_group_trace(part, str(name), index, axes, show_labels, several))
    _style_figure(fig, frame["score"].to_numpy(dtype=np.float64), dims, title, several)
    return fig


def _group_trace(
    part: pd.DataFrame, name: str, index: int, axes: tuple[str, ...], show_labels: bool, several: bool
) -> go.Scatter | go.Scatter3d:
    """One group's points: marker symbol by group index, colour on the shared axis, hover box."""
    extra = "<extra>%{fullData.name}</extra>" if several else "<extra></extra>"  # group name beside the box
    hovertemplate = "<b>%{customdata[0]}</b><br>score: %{customdata[1]:.4g}<br>id: %{customdata[2]}" + extra
    shown = [_plotly_text(token) for token in part["token"]]
    customdata = np.empty((len(part), 3), dtype=object)
    customdata[:, 0] = shown
    customdata[:, 1] = part["score"].to_numpy(dtype=np.float64)
    customdata[:, 2] = part["token_id"].to_numpy()
    dims = len(axes)
    trace_kwargs = dict(
        name=_plotly_text(name) or "tokens",
        mode="markers+text" if show_labels else "markers",
        text=shown if show_labels else None,
        textposition="middle right",
        customdata=customdata,
        hovertemplate=hovertemplate,
        showlegend=several,
        marker=dict(
            color=part["score"].to_numpy(dtype=np.float64),
            coloraxis="coloraxis",
            symbol=GROUP_SYMBOLS[index % len(GROUP_SYMBOLS)],
            size=6 if dims == 3 else 10,
            line=dict(width=0.5, color="white") if dims == 2 else None,
        ),
    )
    for axis in axes:
        trace_kwargs[axis] = part[axis].to_numpy(dtype=np.float64)
    return go.Scatter3d(**trace_kwargs) if dims == 3 else go.Scatter(**trace_kwargs)


def _style_figure(fig: go.Figure, scores: np.ndarray, dims: int, title: str, several: bool) -> None:
    """Layout, shared colour axis over `scores` [n] and bare axes, in place."""
    axis_style = dict(showticklabels=False, title="", zeroline=False)
    fig.update_layout(
        template="none",  # plotly_white's template is half of what every view copies and sends; the rest is set here
        paper_bgcolor="white",
        plot_bgcolor="white",
        title=dict(text=_plotly_text(title)) if title else None,
        height=HEIGHT,
        margin=dict(l=10, r=10, t=10 + (40 if title else 0) + (30 if several else 0), b=10),
        font=dict(size=14),
        coloraxis=dict(
            colorscale=COLORSCALE,
            cmin=float(scores.min()) if len(scores) else None,
            cmax=float(scores.max()) if len(scores) else None,
            colorbar=dict(title=dict(text="score"), thickness=15),
        ),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0.0),
        hoverlabel=dict(font_size=14),
    )
    if dims == 3:
        fig.update_layout(scene=dict(xaxis=axis_style, yaxis=axis_style, zaxis=axis_style, aspectmode="cube"))
    else:
        fig.update_xaxes(**axis_style)
        fig.update_yaxes(**axis_style)


def figure_html(fig: go.Figure) -> str:
    """Standalone HTML page of `fig` with plotly.js inline (~5 MB), so the file works offline."""
    return fig.to_html(include_plotlyjs=True, full_html=True, config={"displaylogo": False, "responsive": True})
