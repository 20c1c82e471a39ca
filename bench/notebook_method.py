"""The reference notebook's way to list a head's top vocabulary pairs, kept for bench_pairs.py.

Reimplemented from `approx_topk` / `get_top_entries` (shared/seeds/001, "Attention Weights
Interpretation"): build the full V x V float32 matrix E (W1 W2) E' exactly as the notebook does,
search a threshold with full-matrix boolean passes until 500..250k entries survive, list the
survivors with nonzero().tolist(), and sort them to keep the best k.

Only the crashes are fixed (noted where), so the cost and the approximations stay the notebook's:
the result is the exact top k only when at least k entries survived the threshold.
"""

from __future__ import annotations

import numpy as np
import torch


def approx_topk(mat: torch.Tensor, min_k=500, max_k=250_000, th0=10, max_iters=10) -> list[list[int]]:
    """Positions [[row, col], ...] of the entries above a threshold found by doubling + bisection."""

    def count_above(th, th_max):
        return torch.nonzero((mat > th) & (mat < th_max)).shape[0]

    th_max = np.inf
    left, right = 0, th0
    while True:
        actual_k = count_above(right, th_max)
        if actual_k <= max_k:
            break
        left, right = right, right * 2
    mid = right  # fix: the notebook leaves `mid` unbound when max_iters == 0
    if min_k <= actual_k <= max_k:
        th = right
    else:
        for _ in range(max_iters):
            mid = (left + right) / 2
            actual_k = count_above(mid, th_max)
            if min_k <= actual_k <= max_k:
                break
            if actual_k > max_k:
                left = mid
            else:
                right = mid
        th = mid
    return torch.nonzero((mat > th) & (mat < th_max)).tolist()


def get_top_entries(tmp: torch.Tensor, all_high_pos: list[list[int]], k: int = 50) -> np.ndarray:
    """The best k of the listed positions, [n, 2] (row, col), best first (no token filters)."""
    remaining_pos = all_high_pos
    if not remaining_pos:  # fix: the notebook indexes tmp[[]] and crashes when nothing survived
        return np.empty((0, 2), dtype=np.int64)
    pos_val = tmp[tuple(zip(*remaining_pos, strict=True))]  # fix: a list index is deprecated in torch
    return np.array(remaining_pos)[torch.argsort(-pos_val)[:k].numpy()]


def notebook_top_pairs(
    emb_rows: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, emb_cols: torch.Tensor, k: int = 50
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row_ids, col_ids, scores) of the k largest entries of emb_rows @ (w1 @ w2) @ emb_cols.

    emb_rows [V, d], w1 [d, r], w2 [r, d], emb_cols [d, V]: for W_VO the notebook's
    `emb_inv @ (W_V_tmp @ W_O_tmp) @ emb`, for W_QK `emb_inv @ (W_Q_tmp @ W_K_tmp.T) @ emb_inv.T`.
    """
    tmp = emb_rows @ (w1 @ w2) @ emb_cols  # [V, V] float32, as in the notebook
    all_high_pos = approx_topk(tmp, th0=1)  # th0=1: the notebook's call
    best = get_top_entries(tmp, all_high_pos, k)
    rows, cols = best[:, 0].astype(np.int64), best[:, 1].astype(np.int64)
    return rows, cols, tmp[torch.from_numpy(rows), torch.from_numpy(cols)].numpy()
