"""Exact top-k entries of a factored matrix left @ right ([V, r] @ [r, V]) without building it.

The V x V product is scanned in tiles, most promising first; a tile whose norm bound cannot beat
the running k-th best score is never multiplied out (see `top_pairs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from embspace.errors import EmbspaceError

PairPredicate = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""exclude(row_ids int64 [n], col_ids int64 [n]) -> bool [n], True = drop the pair."""

TILE_ROWS = 256  # default row block; a tile is TILE_ROWS x TILE_COLS float32 (2 MiB, cache sized)
TILE_COLS = 2048
MAX_TILE_ENTRIES = 2**24  # 64 MiB of float32, whatever block_rows asks for
_CANDIDATE_CAP = 16_384  # candidates pulled out of one tile per round
_CHUNK_VALUES = 2**20  # float64 values per chunk in the O(V r) passes (8 MiB)
_U32 = 2.0**-24  # float32 unit roundoff


class PairSearchError(EmbspaceError, ValueError):
    """Arguments to `top_pairs` that cannot be used (shapes, masks, k, non-finite weights)."""


@dataclass(frozen=True, eq=False)
class TopPairs:
    """The best k entries, best first: highest scores, or most negative ones for negative=True.

    Ties are broken by (row id, col id) ascending, so results are deterministic.
    The counters describe the search (how much of the V x V matrix was actually computed).
    """

    row_ids: np.ndarray  # int64 [k]
    col_ids: np.ndarray  # int64 [k]
    scores: np.ndarray  # float32 [k], the true (signed) values of left[row] . right[:, col]
    tiles_total: int = 0  # tiles the eligible submatrix was cut into
    tiles_computed: int = 0  # tiles multiplied out (the rest were pruned by their bound)
    entries_computed: int = 0  # matrix entries multiplied out
    pairs_checked: int = 0  # pairs handed to `exclude`

    def __len__(self) -> int:
        return len(self.scores)


def top_pairs(
    left: torch.Tensor,
    right: torch.Tensor,
    k: int,
    *,
    row_mask: np.ndarray | torch.Tensor | None = None,
    col_mask: np.ndarray | torch.Tensor | None = None,
    same_groups: np.ndarray | None = None,
    exclude: PairPredicate | None = None,
    negative: bool = False,
    block_rows: int | None = None,
) -> TopPairs:
    """The k largest (or most negative) eligible entries of left @ right, exactly.

    left: [n_rows, r], right: [r, n_cols] (float32 CPU; other dtypes/devices are converted).
    row_mask / col_mask: bool [n_rows] / [n_cols], only True rows/cols are eligible.
    same_groups: int [V] (square case); pairs with same_groups[row] == same_groups[col] are dropped.
    exclude: vectorised predicate over candidate pairs, True = drop; called only on pairs that
        would enter the current top k (in batches of at most k), never on the whole matrix.
    Returns min(k, #eligible pairs) pairs; scores are dot products of the float32 rows, summed in
    float64 and rounded to float32 (exact to float32 precision, and independent of the tiling).

    How: rows and columns are re-expressed in a balanced factorisation (left S, S^-1 right from the
    SVD of the r x r core, which tightens Cauchy-Schwarz |a.b| <= |a| |b|), sorted by norm and cut
    into tiles of block_rows x 2048. Tiles are visited in descending order of their bound
    (max row norm x max col norm); the scan stops at the first tile whose bound is below the
    running k-th best score, and trims rows/columns of a visited tile that cannot reach it.
    Within a tile only entries above the threshold (minus a float32 rounding margin) are scored
    exactly, so the result equals sorting every eligible entry.
    block_rows: rows per tile (default 256); a tile holds at most 64 MiB whatever the value.

    Speed: the scan is many small matmuls; on a small machine that is busy with other work,
    torch.set_num_threads(1) avoids OpenMP threads waiting on each other.
    """
    if block_rows is not None and (
        isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer)) or block_rows < 1
    ):
        raise PairSearchError(f"block_rows must be a positive integer or None, not {block_rows!r}.")
    problem = _prepare(left, right, k, row_mask, col_mask, same_groups, exclude, negative)
    best = _RunningTopK(problem)
    if problem.k == 0 or len(problem.rows) == 0 or len(problem.cols) == 0:
        return best.result()
    with _full_float32_matmul():
        scan = _scan(problem, best, block_rows)
    return best.result(**scan)


def brute_force_top_pairs(
    left: torch.Tensor,
    right: torch.Tensor,
    k: int,
    *,
    row_mask: np.ndarray | torch.Tensor | None = None,
    col_mask: np.ndarray | torch.Tensor | None = None,
    same_groups: np.ndarray | None = None,
    exclude: PairPredicate | None = None,
    negative: bool = False,
    block_rows: int | None = None,
) -> TopPairs:
    """Reference for `top_pairs`: score every eligible pair, filter, sort. O(V^2) memory; tests only."""
    del block_rows  # accepted for a drop-in signature
    problem = _prepare(left, right, k, row_mask, col_mask, same_groups, exclude, negative)
    rows = np.repeat(problem.rows, len(problem.cols))
    cols = np.tile(problem.cols, len(problem.rows))
    keys = _pair_keys(problem, rows, cols)
    keep = np.ones(len(rows), dtype=bool)
    if problem.groups is not None:
        keep &= problem.groups[rows] != problem.groups[cols]
    if problem.exclude is not None and len(rows):
        keep &= ~_call_exclude(problem.exclude, rows, cols)
    rows, cols, keys = rows[keep], cols[keep], keys[keep]
    order = np.lexsort((cols, rows, -keys))[: problem.k]
    return _result(
        problem,
        rows[order],
        cols[order],
        keys[order],
        tiles_total=1,
        tiles_computed=1,
        entries_computed=len(problem.rows) * len(problem.cols),
        pairs_checked=len(keep) if problem.exclude is not None else 0,
    )


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class _Problem:
    left: np.ndarray  # float32 [n_rows, r]
    right: np.ndarray  # float32 [r, n_cols]
    rows: np.ndarray  # int64, eligible row ids, ascending
    cols: np.ndarray  # int64, eligible col ids, ascending
    groups: np.ndarray | None  # int64 [V]
    exclude: PairPredicate | None
    sign: float  # +1, or -1 for negative=True: we search the largest entries of -M
    k: int


def _prepare(left, right, k, row_mask, col_mask, same_groups, exclude, negative) -> _Problem:
    left = _as_float32_matrix(left, "left")
    right = _as_float32_matrix(right, "right")
    if left.shape[1] != right.shape[0]:
        raise PairSearchError(
            f"left is [n_rows, r] and right [r, n_cols]; got {tuple(left.shape)} and {tuple(right.shape)}."
        )
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise PairSearchError(f"k must be a non-negative integer, not {k!r}.")
    n_rows, n_cols = left.shape[0], right.shape[1]
    if left.shape[1] == 0:  # rank 0: every entry is 0; one zero column keeps the code paths uniform
        left, right = np.zeros((n_rows, 1), np.float32), np.zeros((1, n_cols), np.float32)
    groups = None
    if same_groups is not None:
        groups = np.asarray(same_groups).astype(np.int64, copy=False)
        if groups.shape != (n_rows,) or n_rows != n_cols:
            raise PairSearchError(
                f"same_groups must be one group id per token, shape ({n_rows},), with a square matrix; "
                f"got {groups.shape} for a {n_rows} x {n_cols} matrix."
            )
    return _Problem(
        left=left,
        right=right,
        rows=_eligible(row_mask, n_rows, "row_mask"),
        cols=_eligible(col_mask, n_cols, "col_mask"),
        groups=groups,
        exclude=exclude,
        sign=-1.0 if negative else 1.0,
        k=int(k),
    )


def _as_float32_matrix(x, name: str) -> np.ndarray:
    tensor = torch.as_tensor(x).detach().to(device="cpu", dtype=torch.float32)
    if tensor.ndim != 2:
        raise PairSearchError(f"{name} must be a 2-D matrix, got shape {tuple(tensor.shape)}.")
    if not bool(torch.isfinite(tensor).all()):
        raise PairSearchError(f"{name} contains NaN or inf; clean the weights before ranking pairs.")
    return tensor.contiguous().numpy()


def _eligible(mask, n: int, name: str) -> np.ndarray:
    if mask is None:
        return np.arange(n, dtype=np.int64)
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != (n,):
        raise PairSearchError(f"{name} must be a bool array of shape ({n},), got {mask.dtype} {mask.shape}.")
    return np.flatnonzero(mask).astype(np.int64)


def _call_exclude(exclude: PairPredicate, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    drop = np.asarray(exclude(rows, cols))
    if drop.shape != rows.shape:
        raise PairSearchError(f"exclude must return one bool per pair, shape {rows.shape}; got {drop.shape}.")
    return drop.astype(bool, copy=False)


# ---------------------------------------------------------------------------------------------
# Exact scores and the running top k


def _pair_keys(problem: _Problem, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """sign * (left[row] . right[:, col]) as float32, accumulated in float64: [n].

    The one definition of a pair's score, shared with the brute-force reference: float32 products
    are exact in float64, the float64 sum then rounds to float32, so the value is exact to float32
    precision and the same whichever tile or batch computed it.
    """
    keys = np.empty(len(rows), dtype=np.float32)
    step = max(1, _CHUNK_VALUES // problem.left.shape[1])
    for start in range(0, len(rows), step):
        r, c = rows[start : start + step], cols[start : start + step]
        a = problem.left[r].astype(np.float64)
        b = np.ascontiguousarray(problem.right[:, c].T, dtype=np.float64)
        keys[start : start + step] = (a * b).sum(axis=1)
    return keys if problem.sign > 0 else -keys


class _RunningTopK:
    """Best k accepted pairs so far, ordered by (key desc, row asc, col asc)."""

    def __init__(self, problem: _Problem):
        self.problem = problem
        self.k = problem.k
        self.rows = np.empty(0, np.int64)
        self.cols = np.empty(0, np.int64)
        self.keys = np.empty(0, np.float32)
        self.pairs_checked = 0

    @property
    def threshold(self) -> float:
        """The k-th best key; -inf until k pairs were accepted."""
        return float(self.keys[-1]) if len(self.keys) >= self.k > 0 else -np.inf

    def offer(self, rows: np.ndarray, cols: np.ndarray) -> None:
        """Score candidate pairs exactly, filter them and keep the best k."""
        problem = self.problem
        keys = _pair_keys(problem, rows, cols)
        keep = keys >= self.threshold
        if problem.groups is not None:
            keep &= problem.groups[rows] != problem.groups[cols]
        rows, cols, keys = rows[keep], cols[keep], keys[keep]
        order = np.lexsort((cols, rows, -keys))
        rows, cols, keys = rows[order], cols[order], keys[order]
        if problem.exclude is None:
            self._merge(rows[: self.k], cols[: self.k], keys[: self.k])
            return
        # Best first, k at a time: the threshold rises before weaker pairs reach `exclude`.
        while len(rows):
            batch_rows, batch_cols, batch_keys = rows[: self.k], cols[: self.k], keys[: self.k]
            rows, cols, keys = rows[self.k :], cols[self.k :], keys[self.k :]
            keep = ~_call_exclude(problem.exclude, batch_rows, batch_cols)
            self.pairs_checked += len(batch_rows)
            self._merge(batch_rows[keep], batch_cols[keep], batch_keys[keep])
            still_in = np.searchsorted(-keys, -self.threshold, side="right")
            rows, cols, keys = rows[:still_in], cols[:still_in], keys[:still_in]

    def _merge(self, rows: np.ndarray, cols: np.ndarray, keys: np.ndarray) -> None:
        rows = np.concatenate([self.rows, rows])
        cols = np.concatenate([self.cols, cols])
        keys = np.concatenate([self.keys, keys])
        order = np.lexsort((cols, rows, -keys))[: self.k]
        self.rows, self.cols, self.keys = rows[order], cols[order], keys[order]

    def result(self, **counters: int) -> TopPairs:
        return _result(self.problem, self.rows, self.cols, self.keys, pairs_checked=self.pairs_checked, **counters)


def _result(problem: _Problem, rows: np.ndarray, cols: np.ndarray, keys: np.ndarray, **counters: int) -> TopPairs:
    scores = keys if problem.sign > 0 else -keys  # keys are sign * score; negation is exact
    return TopPairs(rows.astype(np.int64), cols.astype(np.int64), scores.astype(np.float32), **counters)


# ---------------------------------------------------------------------------------------------
# Bounds


@dataclass(frozen=True)
class _Bounds:
    """|a . b| <= row_norm[a] * col_norm[b] + slack for every eligible pair (float64)."""

    row_norm: np.ndarray  # [n_eligible_rows]
    col_norm: np.ndarray  # [n_eligible_cols]
    slack: float
    row_plain: np.ndarray  # |a|, [n_eligible_rows]: scales the float32 rounding margin
    col_plain: np.ndarray  # |b|, [n_eligible_cols]


# The O(V r) passes and the r x r algebra run in torch, not numpy: numpy's own BLAS threads would
# compete with torch's for the cores.


def _gram(x: np.ndarray) -> torch.Tensor:
    """x^T x in float64, chunked: [r, r]."""
    gram = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64)
    step = max(1, _CHUNK_VALUES // x.shape[1])
    for start in range(0, len(x), step):
        chunk = torch.from_numpy(x[start : start + step]).double()
        gram += chunk.T @ chunk
    return gram


def _norms(x: np.ndarray, transform: torch.Tensor | None) -> np.ndarray:
    """Row norms of x @ transform (or of x), float64, chunked: [n]."""
    norms = np.empty(len(x))
    step = max(1, _CHUNK_VALUES // x.shape[1])
    for start in range(0, len(x), step):
        chunk = torch.from_numpy(x[start : start + step]).double()
        if transform is not None:
            chunk = chunk @ transform
        norms[start : start + step] = torch.linalg.vector_norm(chunk, dim=1).numpy()
    return norms


def _balancing(a: np.ndarray, b: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, float] | None:
    """Xa, Xb [r, r] float64 with Xa Xb^T = I (to `error`) so that a Xa and b Xb are SVD-balanced.

    a: [n_a, r] rows, b: [n_b, r] columns of the product. With A = Qa Ra, B = Qb Rb and
    Ra Rb^T = U S V^T: A Xa = Qa U S^1/2 and B Xb = Qb V S^1/2 share the singular values evenly,
    which makes |a Xa| |b Xb| a much tighter bound than |a| |b| when one side carries the scale.
    None when a side is (nearly) rank deficient: plain Cauchy-Schwarz is used then.
    """
    lam_a, p_a = torch.linalg.eigh(_gram(a))
    lam_b, p_b = torch.linalg.eigh(_gram(b))
    if lam_a[0] <= 1e-10 * lam_a[-1] or lam_b[0] <= 1e-10 * lam_b[-1]:
        return None
    r_a = lam_a.sqrt()[:, None] * p_a.T  # r_a^T r_a = a^T a
    r_b = lam_b.sqrt()[:, None] * p_b.T
    u, s, vh = torch.linalg.svd(r_a @ r_b.T)
    x_a = (p_a / lam_a.sqrt()) @ u * s.sqrt()
    x_b = (p_b / lam_b.sqrt()) @ vh.T * s.sqrt()
    size = torch.linalg.norm(x_a) * torch.linalg.norm(x_b)
    error = float(torch.linalg.norm(x_a @ x_b.T - torch.eye(len(x_a), dtype=torch.float64)) + 1e-13 * size)
    if not np.isfinite(error) or error > 1e-6:
        return None
    return x_a, x_b, error


def _bounds(a: np.ndarray, b: np.ndarray) -> _Bounds:
    """Norm bounds for rows a [n_a, r] and columns b [n_b, r], valid for the exact float32 scores.

    Slack covers: the transform not being exactly inverse (error * |a| |b|), float64 rounding in
    the norms, and the float32 rounding of a score (<= 2^-23 |a| |b|).
    """
    plain_a, plain_b = _norms(a, None), _norms(b, None)
    top_a, top_b = float(plain_a.max()), float(plain_b.max())
    balanced = _balancing(a, b)
    if balanced is None:
        return _Bounds(plain_a * (1 + 1e-9), plain_b * (1 + 1e-9), 2 * _U32 * top_a * top_b, plain_a, plain_b)
    x_a, x_b, error = balanced
    row = _norms(a, x_a) * (1 + 1e-9) + 1e-12 * plain_a * float(torch.linalg.norm(x_a))
    col = _norms(b, x_b) * (1 + 1e-9) + 1e-12 * plain_b * float(torch.linalg.norm(x_b))
    return _Bounds(row, col, (error + 2 * _U32) * top_a * top_b, plain_a, plain_b)


# ---------------------------------------------------------------------------------------------
# The scan


def _scan(problem: _Problem, best: _RunningTopK, block_rows: int | None) -> dict[str, int]:
    """Visit tiles of the eligible submatrix best bound first, feeding candidates to `best`."""
    a = problem.left[problem.rows] * np.float32(problem.sign)  # [n_a, r], sign folded in
    b = problem.right[:, problem.cols]  # [r, n_b]
    bounds = _bounds(a, np.ascontiguousarray(b.T))
    row_order = np.argsort(-bounds.row_norm, kind="stable")
    col_order = np.argsort(-bounds.col_norm, kind="stable")
    row_norm, col_norm = bounds.row_norm[row_order], bounds.col_norm[col_order]
    row_ids, col_ids = problem.rows[row_order], problem.cols[col_order]
    a_sorted = torch.from_numpy(np.ascontiguousarray(a[row_order]))
    b_sorted = torch.from_numpy(np.ascontiguousarray(b[:, col_order]))
    plain_a, plain_b = bounds.row_plain[row_order], bounds.col_plain[col_order]

    n_a, n_b, rank = len(row_ids), len(col_ids), a.shape[1]
    tile_rows = min(int(block_rows or TILE_ROWS), MAX_TILE_ENTRIES)
    tile_cols = max(1, min(TILE_COLS, MAX_TILE_ENTRIES // tile_rows))
    row_starts = np.arange(0, n_a, tile_rows)
    col_starts = np.arange(0, n_b, tile_cols)
    # float32 matmul error <= (r + 2) u |a||b| (Higham), plus rounding of the exact score: 2u |a||b|
    row_scale = np.maximum.reduceat(plain_a, row_starts) * (rank + 8) * 2 * _U32
    col_scale = np.maximum.reduceat(plain_b, col_starts)
    tile_bound = np.outer(row_norm[row_starts], col_norm[col_starts]) + bounds.slack
    visit = np.argsort(-tile_bound, axis=None, kind="stable")
    buffer = torch.empty(min(tile_rows, n_a) * min(tile_cols, n_b))

    computed = entries = 0
    for flat in visit:
        i, j = divmod(int(flat), len(col_starts))
        threshold = best.threshold
        if tile_bound[i, j] < threshold:
            break  # every remaining tile has a smaller bound
        r0, c0 = int(row_starts[i]), int(col_starts[j])
        r1, c1 = min(r0 + tile_rows, n_a), min(c0 + tile_cols, n_b)
        if threshold > -np.inf:  # drop rows / cols that cannot reach the threshold in this tile
            r1 = r0 + _count_at_least(row_norm[r0:r1] * col_norm[c0] + bounds.slack, threshold)
            c1 = c0 + _count_at_least(col_norm[c0:c1] * row_norm[r0] + bounds.slack, threshold)
        values = buffer[: (r1 - r0) * (c1 - c0)].view(r1 - r0, c1 - c0)
        torch.mm(a_sorted[r0:r1], b_sorted[:, c0:c1], out=values)
        computed += 1
        entries += values.numel()
        margin = float(row_scale[i] * col_scale[j])
        _harvest(values.numpy(), row_ids[r0:r1], col_ids[c0:c1], margin, best)
    return {"tiles_total": tile_bound.size, "tiles_computed": computed, "entries_computed": entries}


def _count_at_least(descending: np.ndarray, threshold: float) -> int:
    return int(np.searchsorted(-descending, -threshold, side="right"))


def _harvest(values: np.ndarray, row_ids: np.ndarray, col_ids: np.ndarray, margin: float, best: _RunningTopK) -> None:
    """Offer every entry of one computed tile whose exact score could reach the running top k.

    values: float32 [h, w], overwritten (offered entries become -inf). numpy, single-threaded, on
    purpose: interleaving torch's parallel reductions with MKL's matmul threads stalls both.
    """
    flat = values.reshape(-1)
    width = values.shape[1]
    remaining = flat.size
    take = 2 * best.k + 1024
    while remaining:
        threshold = best.threshold
        if threshold == -np.inf:  # top k not filled yet: offer the tile's best entries, growing
            take = min(remaining, take)
            picked = np.argpartition(flat, flat.size - take)[flat.size - take :]
            flat[picked] = -np.inf
            remaining -= take
            take *= 2
            best.offer(row_ids[picked // width], col_ids[picked % width])
            continue
        cut = np.float32(_float32_below(threshold - margin - 4 * _U32 * abs(threshold)))
        hot = np.flatnonzero(values.max(axis=1) >= cut)
        if len(hot) == 0:
            return
        hit_in_hot, hit_cols = np.nonzero(values[hot] >= cut)
        hit_rows = hot[hit_in_hot]
        if len(hit_rows) > _CANDIDATE_CAP:  # many: strongest first, so the threshold rises in between
            hit_values = values[hit_rows, hit_cols]
            strongest = np.argpartition(hit_values, len(hit_values) - _CANDIDATE_CAP)[-_CANDIDATE_CAP:]
            hit_rows, hit_cols = hit_rows[strongest], hit_cols[strongest]
            values[hit_rows, hit_cols] = -np.inf
            remaining -= _CANDIDATE_CAP
        else:
            remaining = 0
        best.offer(row_ids[hit_rows], col_ids[hit_cols])


def _float32_below(x: float) -> float:
    """A float32 value <= x, so comparing float32 tiles against it loses nothing to rounding."""
    return float(np.nextafter(np.float32(x), np.float32(-np.inf)))


@contextmanager
def _full_float32_matmul() -> Iterator[None]:
    """The rounding margin assumes float32 matmul: switch off reduced precision meanwhile."""
    saved = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(saved)
