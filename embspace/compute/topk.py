"""Exact top-k entries of a factored matrix left @ right ([V, r] @ [r, V]) without building it.

The V x V product is scanned in tiles, most promising first; a tile whose norm bound cannot beat
the running k-th best score is never multiplied out (see `top_pairs`).
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from embspace.compute.numeric import BFLOAT16_UNIT_ROUNDOFF, FLOAT32_UNIT_ROUNDOFF
from embspace.errors import EmbspaceError
from embspace.runtime import native_bf16_matmul, scan_workers
from embspace.vocab.filters import PairPredicate

TILE_ROWS = 256  # default row block; a tile is TILE_ROWS x TILE_COLS float32 (2 MiB, cache sized)
TILE_COLS = 2048
MAX_TILE_ENTRIES = 2**24  # 64 MiB of float32, whatever block_rows asks for
_CANDIDATE_CAP = 16_384  # candidates pulled out of one tile per round
_CHUNK_VALUES = 2**20  # float64 values per chunk in the O(V r) passes (8 MiB)
_SHAPE_GRID = 64  # trimmed tiles keep multiples of this many rows / cols


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
    screen: bool | None = None,
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
    Within a tile only entries above the threshold (minus a proven bound on the tile's rounding
    error) are scored exactly, so the result equals sorting every eligible entry.
    block_rows: rows per tile (default 256); a tile holds at most 64 MiB whatever the value.
    screen: True: multiply tiles out in bf16 and rescore in fp32 every entry that a proven error
        bound cannot rule out (see `_screen_eps`), so the result is the same; False: fp32 tiles;
        None (default): bf16 where the CPU multiplies it natively (`native_bf16_matmul`: about 3x
        fp32's speed there, 100x slower where it is emulated), else fp32.

    Speed: tiles are spread over `embspace.runtime.scan_workers()` threads (call
    `embspace.runtime.configure()` once at start-up: single-threaded torch, one worker per core).
    """
    if block_rows is not None and (
        isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer)) or block_rows < 1
    ):
        raise PairSearchError(f"block_rows must be a positive integer or None, not {block_rows!r}.")
    problem = _prepare(left, right, k, row_mask, col_mask, same_groups, exclude, negative)
    best = _RunningTopK(problem)
    if problem.k == 0 or len(problem.rows) == 0 or len(problem.cols) == 0:
        return best.result()
    screen = native_bf16_matmul() if screen is None else bool(screen)
    return best.result(**_scan(problem, best, screen, block_rows=block_rows))


def brute_force_top_pairs(
    left: torch.Tensor,
    right: torch.Tensor,
    k: int,
    *,
    block_rows: int | None = None,
    screen: bool | None = None,
    **filters,
) -> TopPairs:
    """Reference for `top_pairs`: score every eligible pair, filter, sort. O(V^2) memory; tests only.

    Takes `top_pairs`'s arguments: filters are its row_mask, col_mask, same_groups, exclude and negative.
    """
    del block_rows, screen  # accepted for a drop-in signature
    problem = _prepare(left, right, k, **filters)
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
    left: np.ndarray  # float32 [n_rows, r], possibly a strided view of the caller's tensor
    right_t: np.ndarray  # float32 [n_cols, r]: the right factor's columns as rows (its transpose)
    rows: np.ndarray  # int64, eligible row ids, ascending
    cols: np.ndarray  # int64, eligible col ids, ascending
    groups: np.ndarray | None  # int64 [V]
    exclude: PairPredicate | None
    sign: float  # +1, or -1 for negative=True: we search the largest entries of -M
    k: int


def _prepare(left, right, k, row_mask=None, col_mask=None, same_groups=None, exclude=None, negative=False) -> _Problem:
    """Check `top_pairs`'s arguments (PairSearchError names the one that is wrong) and gather them."""
    left = _as_float32_matrix(left, "left")
    right_t = _as_float32_matrix(right, "right").T  # a view: no copy when right is itself a transpose
    if left.shape[1] != right_t.shape[1]:
        raise PairSearchError(
            f"left is [n_rows, r] and right [r, n_cols]; got {tuple(left.shape)} and {tuple(right_t.shape[::-1])}."
        )
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise PairSearchError(f"k must be a non-negative integer, not {k!r}.")
    n_rows, n_cols = left.shape[0], right_t.shape[0]
    if left.shape[1] == 0:  # rank 0: every entry is 0; one zero column keeps the code paths uniform
        left, right_t = np.zeros((n_rows, 1), np.float32), np.zeros((n_cols, 1), np.float32)
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
        right_t=right_t,
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
    # A finite sum means every entry is finite (an inf or NaN would carry into it); a cheap first test.
    if not bool(torch.isfinite(tensor.sum())) and not bool(torch.isfinite(tensor).all()):
        raise PairSearchError(f"{name} contains NaN or inf; clean the weights before ranking pairs.")
    return tensor.numpy()  # strided views stay views: the scan gathers its sorted copies once


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
        b = problem.right_t[c].astype(np.float64)
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
        self._lock = threading.Lock()  # scan workers offer concurrently

    @property
    def threshold(self) -> float:
        """The k-th best key; -inf until k pairs were accepted."""
        return float(self.keys[-1]) if len(self.keys) >= self.k > 0 else -np.inf

    def offer(self, rows: np.ndarray, cols: np.ndarray) -> None:
        """Score candidate pairs exactly, filter them and keep the best k (thread-safe)."""
        with self._lock:
            self._offer(rows, cols)

    def _offer(self, rows: np.ndarray, cols: np.ndarray) -> None:
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


# The O(V r) matmuls run in numpy's BLAS (one thread under `embspace.runtime.configure()`):
# torch's float32 CPU matmul builds a oneDNN kernel per new shape (ms each, and cached for good).


def _row_norms(rows: torch.Tensor) -> np.ndarray:
    """Upper bounds on the norms of float32 rows [n, r], float64 [n].

    A float32 reduction, widened by its rounding error ((r + 2) u) and by sqrt(r) 2^-74 for squares
    that underflow; in float64 when a square overflows.
    """
    norms = torch.linalg.vector_norm(rows, dim=1).double().numpy()
    if not np.isfinite(norms).all():
        return torch.linalg.vector_norm(rows, dim=1, dtype=torch.float64).numpy() * (1 + 1e-9)
    return norms * (1 + (rows.shape[1] + 2) * FLOAT32_UNIT_ROUNDOFF) + math.sqrt(rows.shape[1]) * 2.0**-74


def _gram_and_norms(x: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """x^T x [r, r] (float32 products, float64 result) and upper bounds on the row norms of x [n, r].

    The Gram matrix only steers the balancing, whose own error is measured on the transform itself
    (`_balancing`), so float32 is enough.
    """
    return torch.from_numpy(x.T @ x).double(), _row_norms(torch.from_numpy(x))


def _norms(x: np.ndarray, transform: torch.Tensor) -> np.ndarray:
    """Row norms of x @ transform computed in float32, float64 [n]; off by at most
    2 (r + 2) u |x_i| |transform|_F (matmul and rounding of the transform), see `_bounds`."""
    return _row_norms(torch.from_numpy(x @ transform.float().numpy()))


def _both_sides(function, a_args: tuple, b_args: tuple) -> tuple:
    """function(*a_args), function(*b_args), on two threads when the policy allows (GIL released)."""
    if scan_workers() < 2:
        return function(*a_args), function(*b_args)
    with ThreadPoolExecutor(2, thread_name_prefix="embspace-bounds") as pool:
        b_done = pool.submit(function, *b_args)
        return function(*a_args), b_done.result()


def _balancing(gram_a: torch.Tensor, gram_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float] | None:
    """Xa, Xb [r, r] float64 with Xa Xb^T = I (to `error`) so that a Xa and b Xb are SVD-balanced.

    gram_a, gram_b: a^T a, b^T b [r, r] of the rows a [n_a, r] and columns b [n_b, r] of the
    product (any accuracy: `error` is measured on Xa, Xb themselves). With A = Qa Ra, B = Qb Rb and
    Ra Rb^T = U S V^T: A Xa = Qa U S^1/2 and B Xb = Qb V S^1/2 share the singular values evenly,
    which makes |a Xa| |b Xb| a much tighter bound than |a| |b| when one side carries the scale.
    None when a side is (nearly) rank deficient: plain Cauchy-Schwarz is used then.
    """
    lam_a, p_a = torch.linalg.eigh(gram_a)
    lam_b, p_b = torch.linalg.eigh(gram_b)
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

    Slack covers: the transform not being exactly inverse (error * |a| |b|), float32 rounding in
    the transformed norms, and the float32 rounding of a score (<= 2^-23 |a| |b|).
    """
    (gram_a, plain_a), (gram_b, plain_b) = _both_sides(_gram_and_norms, (a,), (b,))
    top_a, top_b = float(plain_a.max()), float(plain_b.max())
    balanced = _balancing(gram_a, gram_b)
    if balanced is None:
        slack = 2 * FLOAT32_UNIT_ROUNDOFF * top_a * top_b
        return _Bounds(plain_a * (1 + 1e-9), plain_b * (1 + 1e-9), slack, plain_a, plain_b)
    x_a, x_b, error = balanced
    row, col = _both_sides(_norms, (a, x_a), (b, x_b))
    # of a float32 [n, r] @ [r, r] row, see _norms
    float32_error = 2 * (a.shape[1] + 2) * FLOAT32_UNIT_ROUNDOFF * (1 + 1e-6)
    row = row * (1 + 1e-9) + float32_error * plain_a * float(torch.linalg.norm(x_a))
    col = col * (1 + 1e-9) + float32_error * plain_b * float(torch.linalg.norm(x_b))
    return _Bounds(row, col, (error + 2 * FLOAT32_UNIT_ROUNDOFF) * top_a * top_b, plain_a, plain_b)


# ---------------------------------------------------------------------------------------------
# The scan


@dataclass(frozen=True)
class _Tiling:
    """The eligible submatrix, rows and columns sorted by bound, cut into tiles (read-only, shared)."""

    a: np.ndarray | torch.Tensor  # [n_a, r]: float32 numpy, or a bf16 tensor when screening; sign folded in
    b: np.ndarray | torch.Tensor  # [n_b, r]: the columns as rows, same type as a
    row_ids: np.ndarray  # int64 [n_a], the token id of each sorted row
    col_ids: np.ndarray  # int64 [n_b]
    row_norm: np.ndarray  # [n_a] float64, descending: |a . b| <= row_norm * col_norm + slack
    col_norm: np.ndarray  # [n_b]
    slack: float
    tile_rows: int
    tile_cols: int
    tile_bound: np.ndarray  # [n_row_tiles, n_col_tiles]: no entry of the tile exceeds it
    margin: np.ndarray  # [n_row_tiles, n_col_tiles]: |computed entry - exact score| <= margin


def _scan(problem: _Problem, best: _RunningTopK, screen: bool, *, block_rows: int | None) -> dict[str, int]:
    """Visit tiles of the eligible submatrix best bound first, feeding candidates to `best`.

    `scan_workers()` threads pull the next tile from one shared queue, so a core taken by another
    process slows one worker instead of stalling all of them at a barrier.
    """
    tiling = _tiling(problem, block_rows, screen)
    queue = _TileQueue(np.argsort(-tiling.tile_bound, axis=None, kind="stable"))
    workers = min(scan_workers(), len(queue.order))
    if workers <= 1:
        _scan_worker(tiling, best, queue)
    else:
        # The best tile alone first: it usually fills the top k, so the workers start with a threshold
        # instead of each harvesting a tile unscreened.
        _scan_worker(tiling, best, queue, max_tiles=1)
        with ThreadPoolExecutor(workers, thread_name_prefix="embspace-scan") as pool:
            for done in [pool.submit(_scan_worker, tiling, best, queue) for _ in range(workers)]:
                done.result()
    return {"tiles_total": tiling.tile_bound.size, "tiles_computed": queue.computed, "entries_computed": queue.entries}


class _TileQueue:
    """Tiles in visiting order, handed out one at a time; stops at the first unbeatable tile."""

    def __init__(self, order: np.ndarray):
        self.order = order
        self.next = 0
        self.stopped = False
        self.computed = 0
        self.entries = 0
        self.lock = threading.Lock()

    def take(self) -> int | None:
        with self.lock:
            if self.stopped or self.next >= len(self.order):
                return None
            self.next += 1
            return int(self.order[self.next - 1])

    def stop(self) -> None:
        self.stopped = True  # every later tile has a smaller bound

    def count(self, entries: int) -> None:
        with self.lock:
            self.computed += 1
            self.entries += entries


def _scan_worker(tiling: _Tiling, best: _RunningTopK, queue: _TileQueue, max_tiles: int | None = None) -> None:
    n_a, n_b = len(tiling.row_ids), len(tiling.col_ids)
    n_col_tiles = tiling.tile_bound.shape[1]
    # One output buffer per worker: a fresh tile per matmul would be a fresh mmap (page faults).
    size = min(tiling.tile_rows, n_a) * min(tiling.tile_cols, n_b)
    buffer = torch.empty(size, dtype=tiling.a.dtype) if _screened(tiling) else np.empty(size, np.float32)
    taken = 0
    while (max_tiles is None or taken < max_tiles) and (flat := queue.take()) is not None:
        taken += 1
        i, j = divmod(flat, n_col_tiles)
        threshold = best.threshold
        if tiling.tile_bound[i, j] < threshold:
            queue.stop()
            return
        r0, c0 = i * tiling.tile_rows, j * tiling.tile_cols
        r1, c1 = min(r0 + tiling.tile_rows, n_a), min(c0 + tiling.tile_cols, n_b)
        if threshold > -np.inf:  # drop rows / cols that cannot reach the threshold in this tile
            rows = _count_at_least(tiling.row_norm[r0:r1] * tiling.col_norm[c0] + tiling.slack, threshold)
            cols = _count_at_least(tiling.col_norm[c0:c1] * tiling.row_norm[r0] + tiling.slack, threshold)
            # Rounded up to a coarse grid: every new matmul shape adds a kernel to oneDNN's primitive
            # cache (resident memory grew ~40 MB per layer with exact sizes).
            r1 = min(r1, r0 + -(-rows // _SHAPE_GRID) * _SHAPE_GRID)
            c1 = min(c1, c0 + -(-cols // _SHAPE_GRID) * _SHAPE_GRID)
        values = _multiply_tile(tiling, slice(r0, r1), slice(c0, c1), buffer)
        queue.count((r1 - r0) * (c1 - c0))
        _harvest_tile(values, tiling.row_ids[r0:r1], tiling.col_ids[c0:c1], float(tiling.margin[i, j]), best)


def _screened(tiling: _Tiling) -> bool:
    return isinstance(tiling.a, torch.Tensor)


def _multiply_tile(tiling: _Tiling, rows: slice, cols: slice, buffer):
    """a[rows] @ b[cols]ᵀ into the worker's buffer: [h, w] (GIL released: workers overlap here).

    fp32 tiles go to numpy's BLAS (OpenBLAS): 8% faster than torch's oneDNN on these shapes, and
    never touched by torch's reduced-precision matmul settings."""
    h, w = rows.stop - rows.start, cols.stop - cols.start
    values = buffer[: h * w].reshape(h, w)  # a view: the buffer is contiguous (numpy or torch alike)
    multiply = torch.mm if _screened(tiling) else np.matmul
    multiply(tiling.a[rows], tiling.b[cols].T, out=values)
    return values


def _tiling(problem: _Problem, block_rows: int | None, screen: bool) -> _Tiling:
    """Sort rows / columns by their balanced bound, cut tiles, and bound each tile's entries and error."""
    a = _eligible_rows(problem.left, problem.rows)  # [n_a, r]
    b_t = _eligible_rows(problem.right_t, problem.cols)  # [n_b, r]: columns as rows
    bounds = _bounds(a, b_t)  # sign-blind: norms and Gram matrices
    # Any order of equal norms will do (results never depend on the tiling): the faster unstable sort.
    row_order, col_order = np.argsort(-bounds.row_norm), np.argsort(-bounds.col_norm)
    row_norm, col_norm = bounds.row_norm[row_order], bounds.col_norm[col_order]
    plain_a, plain_b = bounds.row_plain[row_order], bounds.col_plain[col_order]
    rank = a.shape[1]
    tile_rows = min(int(block_rows or TILE_ROWS), MAX_TILE_ENTRIES)
    tile_cols = max(1, min(TILE_COLS, MAX_TILE_ENTRIES // tile_rows))
    row_starts, col_starts = np.arange(0, len(row_norm), tile_rows), np.arange(0, len(col_norm), tile_cols)
    top_a, top_b = np.maximum.reduceat(plain_a, row_starts), np.maximum.reduceat(plain_b, col_starts)
    screen = screen and _screening_is_safe(float(plain_a.max()), float(plain_b.max()))
    # Error of one computed entry: screening, or an fp32 matmul in any summation order (FMA or not),
    # <= (r + 2) u |a||b| (Higham), widened; plus the float32 rounding of the exact score, 2u |a||b|.
    relative = _screen_eps(rank) if screen else (rank + 6) * 2 * FLOAT32_UNIT_ROUNDOFF
    relative += 2 * FLOAT32_UNIT_ROUNDOFF
    margin = np.outer(top_a, top_b) * relative + _tiny_slack(rank, plain_a.max(), plain_b.max())
    # Gathered once, contiguous (np.take: 3x faster than fancy indexing on a strided view).
    a_sorted, b_sorted = np.take(a, row_order, axis=0), np.take(b_t, col_order, axis=0)
    if problem.sign < 0:
        np.negative(a_sorted, out=a_sorted)  # sign folded in (exact)
    if screen:
        a_sorted, b_sorted = torch.from_numpy(a_sorted).bfloat16(), torch.from_numpy(b_sorted).bfloat16()
    return _Tiling(
        a=a_sorted,
        b=b_sorted,
        row_ids=problem.rows[row_order],
        col_ids=problem.cols[col_order],
        row_norm=row_norm,
        col_norm=col_norm,
        slack=bounds.slack,
        tile_rows=tile_rows,
        tile_cols=tile_cols,
        tile_bound=np.outer(row_norm[row_starts], col_norm[col_starts]) + bounds.slack,
        margin=margin,
    )


def _eligible_rows(x: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """x[ids], or x itself (no copy) when every row is eligible."""
    return x if len(ids) == x.shape[0] else x[ids]


# ---------------------------------------------------------------------------------------------
# bf16 screening: a bound that makes it exact
#
# A screened entry is computed from a, b rounded to bf16 (unit roundoff u_b = 2^-8): a_i(1 + al_i),
# b_i(1 + be_i), |al|, |be| <= u_b. The products of two bf16 values are exact in fp32; the matmul
# accumulates them in fp32 (AVX512-BF16 vdpbf16ps / AMX: fp32 accumulators) and rounds the sum to
# bf16 once when storing. So, with s = a . b and |a|, |b| the float32 vectors' norms:
#   |sum a_i b_i (al_i + be_i + al_i be_i)| <= (2 u_b + u_b^2) |a||b|                (inputs)
#   fp32 accumulation of r terms           <= gamma_r (1 + u_b)^2 |a||b|,  gamma_r = r u / (1 - r u)
#   rounding the result to bf16            <= u_b |s~| <= u_b (1 + c) |a||b|          (output)
# where c is the sum of the first two coefficients. `_screen_eps` budgets the output rounding
# twice (an implementation that rounds one partial sum to bf16 is still covered). Denormals, which
# bf16 arithmetic may flush to zero, add at most 2^-126 per term: `_tiny_slack`. Every entry whose
# screened value + margin reaches the k-th best exact score is rescored exactly (`_pair_keys`), so
# the result is the fp32 result. tests/test_topk.py checks the bound on adversarial inputs.


def _screen_eps(rank: int) -> float:
    """|screened - a.b| <= _screen_eps(r) |a||b| + _tiny_slack (see the derivation above)."""
    u, u_b = FLOAT32_UNIT_ROUNDOFF, BFLOAT16_UNIT_ROUNDOFF  # the derivation's names
    gamma = rank * u / (1 - rank * u)
    inputs_and_sum = 2 * u_b + u_b**2 + gamma * (1 + u_b) ** 2
    return (inputs_and_sum + 2 * u_b * (1 + inputs_and_sum)) * (1 + 1e-6)


def _tiny_slack(rank: int, top_a: float, top_b: float) -> float:
    """Absolute error from flushed denormals: 2^-126 per product, input and output, generously."""
    return 2.0**-120 * (rank + 2) * (1 + float(top_a) + float(top_b))


def _screening_is_safe(top_a: float, top_b: float) -> bool:
    """bf16 has fp32's exponent range; far from overflow, no entry or partial sum can become inf."""
    limit = 2.0**100
    return top_a < limit and top_b < limit and top_a * top_b < limit


def _bf16_bits_at_most(x: float) -> int:
    """The int16 bit pattern of a bf16 value <= x (bf16 is the top half of a float32's bits)."""
    f = np.float32(x)
    if float(f) > x:
        f = np.nextafter(f, np.float32(-np.inf))
    bits = int(np.array(f, dtype=np.float32).view(np.uint32)) >> 16  # rounds toward zero
    if f < 0 and (bits << 16) != int(np.array(f, dtype=np.float32).view(np.uint32)):
        bits += 1  # negative: one step further from zero, so the value stays <= x
    return bits - 65536 if bits >= 32768 else bits


def _hot_rows(values: torch.Tensor, cut: float) -> np.ndarray:
    """Rows of a bf16 tile [h, w] holding an entry >= cut (a superset: never misses one)."""
    bits = _bf16_bits_at_most(cut)
    if bits > 0:
        # Positive bf16 values order like their bits read as int16, and negatives read as negative
        # int16s: an integer max finds the rows with a value >= cut, several times faster.
        row_max = values.view(torch.int16).amax(dim=1)
        return torch.nonzero(row_max >= bits).flatten().numpy()
    floor = torch.tensor(bits, dtype=torch.int16).view(torch.bfloat16)
    return torch.nonzero(values.amax(dim=1) >= floor).flatten().numpy()


def _harvest_tile(
    values: np.ndarray | torch.Tensor, row_ids: np.ndarray, col_ids: np.ndarray, margin: float, best
) -> None:
    """Offer the entries of a computed tile (float32 numpy, or a bf16 screened tensor) that could make the top k."""
    if isinstance(values, np.ndarray):
        _harvest(values, row_ids, col_ids, margin, best)
        return
    threshold = best.threshold
    if threshold == -np.inf:  # the first tiles: no threshold to screen against yet
        _harvest(values.float().numpy(), row_ids, col_ids, margin, best)
        return
    hot = _hot_rows(values, threshold - margin - 4 * FLOAT32_UNIT_ROUNDOFF * abs(threshold))
    if len(hot):
        _harvest(values[hot].float().numpy(), row_ids[hot], col_ids, margin, best)


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
    first_round = True
    while remaining:
        threshold = best.threshold
        if threshold == -np.inf:  # top k not filled yet: offer the tile's best entries, growing
            picked = _above_kth_row_max(values, best.k, take) if first_round else None
            first_round = False
            if picked is not None:
                flat[picked] = -np.inf
                remaining -= len(picked)
                best.offer(row_ids[picked // width], col_ids[picked % width])
                continue
            take = min(remaining, take)
            picked = np.argpartition(flat, flat.size - take)[flat.size - take :]
            flat[picked] = -np.inf
            remaining -= take
            take *= 2
            best.offer(row_ids[picked // width], col_ids[picked % width])
            continue
        cut = np.float32(_float32_below(threshold - margin - 4 * FLOAT32_UNIT_ROUNDOFF * abs(threshold)))
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


def _above_kth_row_max(values: np.ndarray, k: int, at_most: int) -> np.ndarray | None:
    """Flat indices of the entries >= the k-th largest row maximum of a float32 tile [h, w]: at least k
    entries (one per such row), found with two passes instead of a partition of the whole tile.
    None when the tile has fewer than k rows or more than `at_most` entries qualify (ties)."""
    if not 0 < k <= values.shape[0]:
        return None
    row_max = values.max(axis=1)
    cut = np.partition(row_max, len(row_max) - k)[len(row_max) - k]
    picked = np.flatnonzero(values.reshape(-1) >= cut)
    return picked if len(picked) <= at_most else None


def _float32_below(x: float) -> float:
    """A float32 value <= x, so comparing float32 tiles against it loses nothing to rounding."""
    return float(np.nextafter(np.float32(x), np.float32(-np.inf)))
