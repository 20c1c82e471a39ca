"""dashboard.scatter_plot: the plotly figure of a t-SNE frame and its standalone HTML export."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard.scatter_plot import GROUP_SYMBOLS, figure_html, scatter_figure
from embspace.compute.tsne import scatter_frame

TOKENS = ["<s>", "a&b", "zażółć", "</script>", "##ing", "Łódź", "x"]


def _frame(dims: int = 3, groups: list[str] | None = None, tokens: list[str] = TOKENS):
    rng = np.random.default_rng(0)
    n = len(tokens)
    return scatter_frame(
        token_ids=np.arange(100, 100 + n),
        labels=tokens,
        scores=np.linspace(-1.5, 2.5, n),
        coords=rng.standard_normal((n, dims)),
        groups=groups,
    )


# --- scatter_figure -------------------------------------------------------------------------------


@pytest.mark.parametrize(("dims", "trace_type"), [(2, go.Scatter), (3, go.Scatter3d)])
@pytest.mark.parametrize("groups", [None, ["row token", "column token"] * 3 + ["row token"]])
def test_figure_has_one_marker_per_point(dims, trace_type, groups):
    fig = scatter_figure(_frame(dims=dims, groups=groups), dims=dims)
    assert all(type(trace) is trace_type for trace in fig.data)
    assert sum(len(trace.x) for trace in fig.data) == len(TOKENS)
    if dims == 3:
        assert sum(len(trace.z) for trace in fig.data) == len(TOKENS)
    shown = sorted(row[2] for trace in fig.data for row in trace.customdata)
    assert shown == list(range(100, 100 + len(TOKENS)))


def test_three_d_figure_needs_z():
    with pytest.raises(ValueError, match="dims=2"):
        scatter_figure(_frame(dims=2), dims=3)


def test_hover_shows_escaped_token_and_score():
    """Tokens like "<s>" would be read as plotly markup; they are escaped so they display literally."""
    fig = scatter_figure(_frame(dims=3), dims=3)
    (trace,) = fig.data
    assert "%{customdata[0]}" in trace.hovertemplate and "%{customdata[1]" in trace.hovertemplate
    tokens = [row[0] for row in trace.customdata]
    assert tokens == ["&lt;s&gt;", "a&amp;b", "zażółć", "&lt;/script&gt;", "##ing", "Łódź", "x"]
    np.testing.assert_allclose([row[1] for row in trace.customdata], np.linspace(-1.5, 2.5, len(TOKENS)))


def test_colour_is_score_on_one_shared_axis():
    frame = _frame(dims=3, groups=["row token"] * 3 + ["column token"] * 4)
    fig = scatter_figure(frame, dims=3)
    for trace in fig.data:
        assert trace.marker.coloraxis == "coloraxis"
        np.testing.assert_allclose(trace.marker.color, [row[1] for row in trace.customdata])
    assert fig.layout.coloraxis.cmin == -1.5 and fig.layout.coloraxis.cmax == 2.5
    assert fig.layout.coloraxis.colorbar.title.text == "score"


@pytest.mark.parametrize("dims", [2, 3])
def test_groups_get_their_own_trace_and_symbol(dims):
    groups = ["row token", "column token", "row token", "column token", "both", "row token", "both"]
    fig = scatter_figure(_frame(dims=dims, groups=groups), dims=dims)
    assert [trace.name for trace in fig.data] == ["row token", "column token", "both"]
    assert [len(trace.x) for trace in fig.data] == [3, 2, 2]
    symbols = [trace.marker.symbol for trace in fig.data]
    assert len(set(symbols)) == 3
    assert all(trace.showlegend for trace in fig.data)
    assert all("<extra>%{fullData.name}</extra>" in trace.hovertemplate for trace in fig.data)


def test_single_group_has_no_legend():
    fig = scatter_figure(_frame(dims=2, groups=["tokens"] * len(TOKENS)), dims=2)
    assert len(fig.data) == 1 and fig.data[0].showlegend is False


@pytest.mark.parametrize("dims", [2, 3])
def test_labels_mode_writes_tokens_on_points(dims):
    frame = _frame(dims=dims, groups=["a"] * 4 + ["b"] * 3)
    labelled = scatter_figure(frame, dims=dims, show_labels=True)
    assert all(trace.mode == "markers+text" for trace in labelled.data)
    assert [t for trace in labelled.data for t in trace.text][:3] == ["&lt;s&gt;", "a&amp;b", "zażółć"]
    plain = scatter_figure(frame, dims=dims, show_labels=False)
    assert all(trace.mode == "markers" and trace.text is None for trace in plain.data)


def test_layout_is_readable_and_titled():
    fig = scatter_figure(_frame(dims=3), dims=3, title="L3 H5 <W_QK>")
    assert fig.layout.height == 600 and fig.layout.title.text == "L3 H5 &lt;W_QK&gt;"
    assert fig.layout.margin.l <= 20 and fig.data[0].marker.size >= 5
    assert scatter_figure(_frame(dims=2), dims=2).layout.title.text is None


def test_empty_frame_gives_empty_figure():
    fig = scatter_figure(scatter_frame([], [], [], np.zeros((0, 3))), dims=3)
    assert sum(len(trace.x) for trace in fig.data) == 0


# --- figure_html ----------------------------------------------------------------------------------


def test_html_is_standalone_and_holds_the_data():
    frame = _frame(dims=3, groups=["row token"] * 4 + ["column token"] * 3)
    page = figure_html(scatter_figure(frame, dims=3, show_labels=True))
    assert page.lstrip().lower().startswith("<!doctype html>") and 'src="https://cdn.plot.ly' not in page
    assert len(page) > 1_000_000 and "Plotly.newPlot" in page  # plotly.js is inline
    for token in ("&lt;s&gt;", "zażółć", "Łódź", "##ing"):
        assert token in page or json.dumps(token)[1:-1] in page
    assert "</script>" not in page.split("Plotly.newPlot", 1)[1].split("</script>", 1)[0]
    assert '"row token"' in page and "2.5" in page


@pytest.mark.browser
def test_hover_displays_raw_token_in_browser(tmp_path, chromium):
    """What a person sees: hovering the "<s>" point shows "<s>" and its score, not markup."""
    page_file = tmp_path / "scatter.html"
    page_file.write_text(figure_html(scatter_figure(_frame(dims=2), dims=2)), encoding="utf-8")
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(page_file.as_uri())
        page.wait_for_function("() => document.querySelector('.js-plotly-plot .scatterlayer .point')", timeout=60_000)
        hover = page.evaluate(
            """() => { const gd = document.querySelector('.js-plotly-plot');
                       Plotly.Fx.hover(gd, [{curveNumber: 0, pointNumber: 0}]);
                       return document.querySelector('.hoverlayer').textContent; }"""
        )
    finally:
        context.close()
    assert "<s>" in hover and "score: -1.5" in hover


def test_group_symbols_are_distinct_and_valid_for_both_trace_types():
    assert len(set(GROUP_SYMBOLS)) == len(GROUP_SYMBOLS)
    for symbol in GROUP_SYMBOLS:
        go.Scatter3d(marker=dict(symbol=symbol))
        go.Scatter(marker=dict(symbol=symbol))
