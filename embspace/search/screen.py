"""Lower bounds on one token's rank inside many rows at once: the screen of the live FFN search.

rank(row) = 1 + #{kept tokens j != t : row · e_j > row · e_t}. Any set of kept tokens that surely
score above t in a row (by more than the float32 rounding margin of both dot products) bounds that
row's rank from below by 1 + its size, so rows can be dropped without multiplying them out. Two
sources of such tokens:
- `StoredSample`: every row's best scores over a fixed, evenly strided vocabulary sample, computed
  once per model; a query then bounds every row with no matmul at all;
- `query_sample`: the token's nearest neighbours in E (they score like the token in every row, so
  where it ranks high about half of them beat it) plus an evenly strided sample, scored per query
  for the few rows the stored bound keeps.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from embspace.compute.numeric import FLOAT32_UNIT_ROUNDOFF
from embspace.runtime import scan_workers

STORED_SAMPLE_TOKENS = 2048  # tokens every row is scored against once, when the index is built
STORED_TOP = 64  # of which each row keeps its best: bounds ranks up to 1 + 64
NEIGHBOUR_TOKENS = 512  # per query: the token's nearest neighbours in E ...
STRIDED_TOKENS = 2048  # ... and an evenly strided sample
_BUILD_ROWS = 2048  # rows per matmul while building


def rounding_margin(d_model: int, row_norms: torch.Tensor, max_token_norm: float) -> torch.Tensor:
    """Bound on |computed - exact| of two float32 dot products row · e (any summation order): [N]."""
    return 2 * (d_model + 2) * FLOAT32_UNIT_ROUNDOFF * row_norms * max_token_norm


def strided_ids(n: int, size: int, offset: float = 0.0) -> np.ndarray:
    """About `size` evenly spaced positions in range(n), shifted by `offset` of a step: int64 ascending."""
    step = max(1.0, n / size)
    return np.unique(np.minimum(n - 1, (np.arange(min(size, n)) * step + offset * step).astype(np.int64)))


@dataclass(frozen=True, eq=False)
class StoredSample:
    """Each row's `top` best scores over a fixed sample of the vocabulary, best first.

    sample_ids: int64 [S] token ids; top_columns: int16/int32 [N, top] positions in sample_ids;
    top_scores: float32 [N, top].
    """

    sample_ids: np.ndarray
    top_columns: np.ndarray
    top_scores: np.ndarray

    @classmethod
    def build(
        cls, weights: torch.Tensor, E: torch.Tensor, size: int = STORED_SAMPLE_TOKENS, top: int = STORED_TOP
    ) -> StoredSample:
        """weights [N, d_model], E [d_model, V]: one [block, S] matmul per block of rows."""
        ids = strided_ids(E.shape[1], size)
        sample_E = E[:, torch.from_numpy(ids)].contiguous()
        top = min(top, len(ids))
        columns = np.empty((len(weights), top), dtype=np.int16 if len(ids) < 2**15 else np.int32)
        scores = np.empty((len(weights), top), dtype=np.float32)

        def score_block(start: int) -> None:
            values, positions = torch.topk(weights[start : start + _BUILD_ROWS] @ sample_E, top, dim=1)
            columns[start : start + len(values)] = positions.numpy()
            scores[start : start + len(values)] = values.numpy()

        with ThreadPoolExecutor(scan_workers(), thread_name_prefix="embspace-screen") as pool:
            list(pool.map(score_block, range(0, len(weights), _BUILD_ROWS)))  # torch releases the GIL
        return cls(ids, columns, scores)

    def lower_bound(self, cut: np.ndarray, usable: np.ndarray) -> np.ndarray:
        """1 + stored sample tokens above `cut` [N] (the token's score plus margin) that `usable` [V]
        allows (kept by the filter, not the token itself): int64 [N], at most 1 + top."""
        allowed = usable[self.sample_ids][self.top_columns]  # [N, top]
        return 1 + ((self.top_scores > cut[:, None]) & allowed).sum(axis=1)


def query_sample(kept_E: torch.Tensor, kept_norms: torch.Tensor, own: int, token_vector: torch.Tensor):
    """Columns of kept_E [d_model, V_kept] to score per query: the token's nearest neighbours by
    cosine and a strided sample, never the token's own column `own` (-1: not kept). int64 [S]."""
    cosine = (token_vector @ kept_E) / (kept_norms * torch.linalg.vector_norm(token_vector) + 1e-30)
    if own >= 0:
        cosine[own] = -float("inf")
    neighbours = torch.topk(cosine, min(NEIGHBOUR_TOKENS, len(cosine) - 1 if own >= 0 else len(cosine))).indices
    strided = torch.from_numpy(strided_ids(kept_E.shape[1], STRIDED_TOKENS, offset=0.5))
    columns = torch.unique(torch.cat([neighbours, strided]))
    return columns[columns != own]
