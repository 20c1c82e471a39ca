"""embspace.compute.tsne: t-SNE coordinates and the scatter frame (the figure: tests/test_scatter_plot.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.manifold import trustworthiness

from embspace.compute.tsne import MIN_TSNE_POINTS, default_perplexity, scatter_frame, tsne_coordinates


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
    tokens = ["<s>", "zażółć", "##ing"]
    frame3 = scatter_frame([100, 101, 102], tokens, [0.5, 0.0, -1.0], np.zeros((3, 3)))
    assert list(frame3.columns) == ["token_id", "token", "score", "x", "y", "z", "group"]
    assert set(frame3["group"]) == {""}
    frame2 = scatter_frame([100, 101, 102], tokens, [0.5, 0.0, -1.0], np.ones((3, 2)), groups=["row token"] * 3)
    assert list(frame2.columns) == ["token_id", "token", "score", "x", "y", "group"]
    assert frame2["token"].tolist() == tokens and set(frame2["group"]) == {"row token"}
    assert frame2["token_id"].tolist() == [100, 101, 102] and frame2["x"].tolist() == [1.0, 1.0, 1.0]


def test_frame_accepts_tensors_and_rejects_mismatched_lengths():
    frame = scatter_frame(torch.tensor([5, 6]), ["a", "b"], torch.tensor([0.5, -1.0]), np.zeros((2, 2)))
    assert frame["token_id"].tolist() == [5, 6] and frame["score"].tolist() == [0.5, -1.0]
    with pytest.raises(ValueError, match="labels has 1 entries"):
        scatter_frame([5, 6], ["a"], [0.5, -1.0], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="coords"):
        scatter_frame([5], ["a"], [0.5], np.zeros((1, 4)))
