"""t-SNE coordinates of token vectors and the tidy frame of a vector's top tokens placed by them.

The successor of the notebook's `_calc_df`: coordinates, then one row per point. The plotly figure
built from that frame belongs to the dashboard (`dashboard/scatter_plot.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

# Below this many points t-SNE has no neighbourhoods to preserve (perplexity must stay < n),
# so the points are laid out by PCA instead, which keeps their true pairwise distances.
MIN_TSNE_POINTS = 5
# sklearn's default of 1000 iterations costs ~2x the time for no visible change at n <= 500.
TSNE_MAX_ITER = 500
# sklearn's learning_rate="auto" is max(n / (4 * exaggeration), 50); the floor of 50 scatters 3-D
# layouts of fewer than ~300 points at random (trustworthiness ~0.6 on clustered data, where
# n / (4 * exaggeration) with exaggeration 4 gives ~0.98 in 2-D and 3-D alike). The notebook's
# hand-set learning_rate=10 for k=100 points the same way.
TSNE_EARLY_EXAGGERATION = 4.0
# Barnes-Hut accuracy: 0.7 instead of sklearn's 0.5 cut a 500-point 3-D fit by ~25% with the same
# trustworthiness (0.93) on MiniLM top-token embeddings.
TSNE_ANGLE = 0.7
# Threads: Barnes-Hut's OpenMP threads spin-wait (on a 2-core server with anything else running,
# two threads made a 500-point fit 5x slower than one); `embspace.runtime.configure()`, called
# once at start-up, limits OpenMP and BLAS to one thread for the whole process.


def _as_float_array(vectors: torch.Tensor | np.ndarray) -> np.ndarray:
    """[n, d] float64 numpy copy of a tensor or array; raises on wrong rank or non-finite values."""
    if isinstance(vectors, torch.Tensor):
        array = vectors.detach().to(device="cpu", dtype=torch.float64).numpy()
    else:
        array = np.asarray(vectors, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"vectors must be 2-D [n_points, dim], got shape {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise ValueError("vectors contain NaN or inf; drop or fill those rows before the t-SNE")
    return array


def _pca_coordinates(points: np.ndarray, dims: int) -> np.ndarray:
    """[n, d] -> [n, dims] principal-component coordinates, zero-padded, with a fixed sign convention."""
    centred = points - points.mean(axis=0, keepdims=True)
    left, singular, _ = np.linalg.svd(centred, full_matrices=False)
    components = left * singular  # [n, min(n, d)]; pairwise distances are those of `points`
    coords = np.zeros((points.shape[0], dims))
    kept = min(dims, components.shape[1])
    coords[:, :kept] = components[:, :kept]
    # SVD signs are arbitrary; make each axis's largest-magnitude entry positive so the layout is stable.
    pivots = np.abs(coords).argmax(axis=0)
    signs = np.sign(coords[pivots, np.arange(dims)])
    signs[signs == 0] = 1.0
    return coords * signs


def default_perplexity(n_points: int) -> float:
    """t-SNE perplexity for `n_points`: ~n/10 (tight clusters for top-k lists), within [2, 30], below n."""
    return float(min(30.0, max(2.0, n_points / 10), n_points - 1))


def tsne_coordinates(
    vectors: torch.Tensor | np.ndarray,
    *,
    dims: int = 3,
    normalize: bool = False,
    seed: int = 0,
    perplexity: float | None = None,
) -> np.ndarray:
    """t-SNE layout of `vectors` [n, d] -> float64 [n, dims], deterministic for a given seed.

    The layout starts from the PCA projection, so the seed only matters when d < dims (random start).
    normalize=True scales every row to unit length first, so the layout reflects cosine rather
    than Euclidean neighbourhoods. perplexity=None picks `default_perplexity(n)`; any value is
    clipped below n. With fewer than MIN_TSNE_POINTS points (or all points equal) the layout is
    their PCA projection instead.
    """
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims}")
    points = _as_float_array(vectors)
    if normalize:
        norms = np.linalg.norm(points, axis=1, keepdims=True)
        points = points / np.maximum(norms, 1e-12)  # zero rows stay zero
    n_points, dim = points.shape
    if n_points == 0:
        return np.zeros((0, dims))
    if n_points < MIN_TSNE_POINTS or np.ptp(points, axis=0).max(initial=0.0) == 0.0:
        return _pca_coordinates(points, dims)

    # scikit-learn is imported here: `tour export` makes every CLI command import this module (1.5 s).
    from sklearn.manifold import TSNE

    chosen = default_perplexity(n_points) if perplexity is None else float(perplexity)
    chosen = min(max(chosen, 1.0), n_points - 1.0)
    tsne = TSNE(
        n_components=dims,
        perplexity=chosen,
        early_exaggeration=TSNE_EARLY_EXAGGERATION,
        learning_rate=max(n_points / (4 * TSNE_EARLY_EXAGGERATION), 1.0),
        max_iter=TSNE_MAX_ITER,
        angle=TSNE_ANGLE,
        init="pca" if dim >= dims else "random",  # PCA init needs at least `dims` input features
        random_state=seed,
    )
    return tsne.fit_transform(points).astype(np.float64)


def scatter_frame(
    token_ids: Sequence[int] | np.ndarray | torch.Tensor,
    labels: Sequence[str],
    scores: Sequence[float] | np.ndarray | torch.Tensor,
    coords: np.ndarray,
    groups: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per point: token_id, token, score, x, y, (z when coords has 3 columns), group.

    coords is [n, 2] or [n, 3] (e.g. from `tsne_coordinates`); groups (e.g. "row token" /
    "column token" for head pairs) defaults to one unnamed group "".
    """
    if isinstance(token_ids, torch.Tensor):
        token_ids = token_ids.detach().cpu().numpy()
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().to(device="cpu", dtype=torch.float64).numpy()
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] not in (2, 3):
        raise ValueError(f"coords must be [n, 2] or [n, 3], got shape {tuple(coords.shape)}")
    n_points = coords.shape[0]
    columns = {"token_ids": token_ids, "labels": labels, "scores": scores}
    if groups is not None:
        columns["groups"] = groups
    for name, values in columns.items():
        if len(values) != n_points:
            raise ValueError(f"{name} has {len(values)} entries but coords has {n_points} rows")

    frame = pd.DataFrame(
        {
            "token_id": np.asarray(token_ids, dtype=np.int64),
            "token": [str(label) for label in labels],
            "score": np.asarray(scores, dtype=np.float64),
            "x": coords[:, 0],
            "y": coords[:, 1],
        }
    )
    if coords.shape[1] == 3:
        frame["z"] = coords[:, 2]
    frame["group"] = [""] * n_points if groups is None else [str(group) for group in groups]
    return frame
