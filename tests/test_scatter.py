"""embspace.compute.tsne: t-SNE coordinates, the scatter frame, the plotly figure and its HTML export."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from sklearn.manifold import trustworthiness

from embspace.compute.tsne import (
    GROUP_SYMBOLS,
    MIN_TSNE_POINTS,
    default_perplexity,
    figure_html,
    scatter_figure,
    scatter_frame,
    tsne_coordinates,
)

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


def _pairwise(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)


# --- tsne_coordinates ---------------------------------------------------------------------------


@pytest.mark.parametrize(("dims", "features"), [(3, 16), (2, 1)])
def test_tsne_is_deterministic_for_a_seed(dims, features):
    """Same seed, same layout, whatever the global RNGs did in between (features < dims: random start)."""
    vectors = torch.randn(30, features, generator=torch.Generator().manual_seed(1))
    first = tsne_coordinates(vectors, dims=dims, seed=3)
    np.random.seed(123)
    torch.manual_seed(123)
    again = tsne_coordinates(vectors, dims=dims, seed=3)
    assert first.shape == (30, dims) and first.dtype == np.float64
    np.testing.assert_array_equal(first, again)
    other_seed = tsne_coordinates(vectors, dims=dims, seed=4)
    if features < dims:
        assert not np.allclose(first, other_seed)
    else:  # the start is the PCA projection, so nothing random is left
        np.testing.assert_array_equal(first, other_seed)


@pytest.mark.parametrize("dims", [2, 3])
def test_tsne_keeps_neighbours_together(dims):
    """Trustworthiness of a 40-point, 5-cluster layout stays high in 2-D and 3-D.

    sklearn's default learning rate (floor 50) scores 0.56-0.91 on this data in 3-D; ours >= 0.99.
    """
    rng = np.random.default_rng(0)
    centres = 1.2 * rng.standard_normal((5, 64))
    vectors = centres[np.arange(40) % 5] + 0.5 * rng.standard_normal((40, 64)) * rng.uniform(0.5, 1.5, (40, 1))
    coords = tsne_coordinates(vectors, dims=dims)
    assert coords.shape == (40, dims)
    assert trustworthiness(vectors, coords, n_neighbors=5) > 0.97


@pytest.mark.parametrize("n", [0, 1, 2, 3, MIN_TSNE_POINTS - 1])
@pytest.mark.parametrize("dims", [2, 3])
def test_tiny_inputs_are_laid_out_exactly(n, dims):
    """Below MIN_TSNE_POINTS the layout is a PCA projection: pairwise distances are the inputs' own."""
    vectors = np.random.default_rng(n).standard_normal((n, 8))
    coords = tsne_coordinates(vectors, dims=dims)
    assert coords.shape == (n, dims)
    if n <= dims + 1:  # n points span at most n - 1 dimensions, so nothing is lost
        np.testing.assert_allclose(_pairwise(coords), _pairwise(vectors), atol=1e-9)
    np.testing.assert_array_equal(coords, tsne_coordinates(vectors, dims=dims))
    if n:  # fixed sign convention: each axis's largest-magnitude coordinate is not negative
        assert (coords[np.abs(coords).argmax(axis=0), np.arange(dims)] >= 0).all()


def test_single_point_sits_at_origin():
    np.testing.assert_array_equal(tsne_coordinates(np.ones((1, 5))), np.zeros((1, 3)))


@pytest.mark.parametrize("n", [MIN_TSNE_POINTS, MIN_TSNE_POINTS + 1, 12])
def test_small_inputs_run_tsne_with_valid_perplexity(n):
    vectors = np.random.default_rng(n).standard_normal((n, 6))
    coords = tsne_coordinates(vectors, dims=3, perplexity=50.0)  # clipped below n
    assert coords.shape == (n, 3) and np.isfinite(coords).all()


def test_default_perplexity_stays_below_n():
    for n in range(MIN_TSNE_POINTS, 2000):
        assert 1.0 <= default_perplexity(n) < n
    assert default_perplexity(100) == 10.0 and default_perplexity(5000) == 30.0


def test_identical_points_and_few_features_do_not_break():
    assert np.array_equal(tsne_coordinates(np.full((10, 4), 2.0)), np.zeros((10, 3)))
    coords = tsne_coordinates(np.random.default_rng(0).standard_normal((10, 2)), dims=3)  # d < dims: no PCA init
    assert coords.shape == (10, 3) and np.isfinite(coords).all()


def test_normalize_lays_out_by_direction_only():
    """With normalize=True rescaling rows changes nothing (cosine geometry); without it, it does."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((20, 8))
    rescaled = vectors * rng.uniform(0.2, 5.0, size=(20, 1))
    np.testing.assert_allclose(
        tsne_coordinates(vectors, dims=2, normalize=True),
        tsne_coordinates(rescaled, dims=2, normalize=True),
        atol=1e-6,
    )
    assert not np.allclose(tsne_coordinates(vectors, dims=2), tsne_coordinates(rescaled, dims=2), atol=1e-3)
    tiny = np.array([[3.0, 0.0], [0.0, 0.5]])
    np.testing.assert_allclose(_pairwise(tsne_coordinates(tiny, normalize=True))[0, 1], np.sqrt(2.0))


def test_tsne_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        tsne_coordinates(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        tsne_coordinates(np.array([[0.0, np.nan]] * 6))
    with pytest.raises(ValueError, match="dims"):
        tsne_coordinates(np.zeros((6, 3)), dims=4)


# --- scatter_frame --------------------------------------------------------------------------------


def test_frame_columns_follow_coordinate_dims():
    frame3 = _frame(dims=3)
    assert list(frame3.columns) == ["token_id", "token", "score", "x", "y", "z", "group"]
    frame2 = _frame(dims=2, groups=["row token"] * len(TOKENS))
    assert list(frame2.columns) == ["token_id", "token", "score", "x", "y", "group"]
    assert frame2["token"].tolist() == TOKENS and set(frame2["group"]) == {"row token"}
    assert frame2["token_id"].tolist() == list(range(100, 100 + len(TOKENS)))


def test_frame_accepts_tensors_and_rejects_mismatched_lengths():
    frame = scatter_frame(torch.tensor([5, 6]), ["a", "b"], torch.tensor([0.5, -1.0]), np.zeros((2, 2)))
    assert frame["token_id"].tolist() == [5, 6] and frame["score"].tolist() == [0.5, -1.0]
    with pytest.raises(ValueError, match="labels has 1 entries"):
        scatter_frame([5, 6], ["a"], [0.5, -1.0], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="coords"):
        scatter_frame([5], ["a"], [0.5], np.zeros((1, 4)))


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
