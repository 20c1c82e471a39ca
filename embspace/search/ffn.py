"""The live FFN side of token search: the rows of stacked FFN weights where a token ranks best, exactly.

rank(row) = 1 + #{kept tokens j != token : row · e_j > row · e_token}. Screening (`screen`)
bounds every row's rank from below; rows are then ranked exactly, best bound first, one vocabulary
chunk at a time, and a row stops as soon as it can no longer make the list.
"""

from __future__ import annotations

import numpy as np
import torch

from embspace.search.filtered_vocab import FilteredVocab
from embspace.search.screen import StoredSample, query_sample, rounding_margin

EXACT_BLOCK = 64  # rows per exact-rank step once the list is full
FIRST_BLOCK_MAX = 1024  # rows per exact-rank step while the list fills
EXACT_CHUNK = 8192  # vocabulary columns per matmul of an exact rank


def ffn_ranks(
    weights: torch.Tensor,
    row_norms: torch.Tensor,
    max_token_norm: float,
    token_vector: torch.Tensor,
    vocab: FilteredVocab,
    token: int,
    limit: int,
    stored: StoredSample,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The `limit` rows of weights [N, d_model] where `token` ranks best, exactly: (rows, ranks, scores).

    vocab: the search's filtered vocabulary.
    Every row gets a lower bound from `stored` (no matmul). The `limit` best-bounded rows are ranked
    exactly; then, in order of bound until it exceeds the limit-th best rank r*, blocks of rows are
    screened with the query's own sample (the token's neighbours in E) and ranked with a cap of r*.
    token_vector: e_token [d_model]. Returns int64 [n], int64 [n], float32 [n], best first.
    """
    own = int(vocab.column_of[token])
    scores = weights @ token_vector  # [N]
    cut = scores + rounding_margin(weights.shape[1], row_norms, max_token_norm)
    usable = vocab.column_of >= 0
    usable[token] = False
    bound = stored.lower_bound(cut.numpy(), usable)
    # Within one bound, rows where the token scores high for the row's size first: likelier to rank well.
    order = np.lexsort(((-scores / row_norms.clamp_min(1e-30)).numpy(), bound))
    sample_E = vocab.kept_E[:, query_sample(vocab.kept_E, vocab.kept_norms, own, token_vector)]
    best = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))  # rows, ranks, scores
    start = 0
    while start < len(order):
        full = len(best[1]) >= limit
        if full and bound[order[start]] > best[1][-1]:
            break
        block = order[start : start + (EXACT_BLOCK if full else min(limit - len(best[1]), FIRST_BLOCK_MAX))]
        start += len(block)
        cap = best[1][-1] if full else np.inf
        if full:  # the query's own sample drops rows that cannot reach r*
            index = torch.from_numpy(block)
            sampled = 1 + ((weights[index] @ sample_E) > cut[index, None]).sum(dim=1).numpy()
            block = block[np.maximum(sampled, bound[block]) <= cap]
        kept, ranks, own_scores = capped_ranks(weights[torch.from_numpy(block)], vocab.kept_E, own, token_vector, cap)
        best = _merge(best, (block[kept], ranks, own_scores), limit)
    return best


def capped_ranks(
    rows: torch.Tensor, kept_E: torch.Tensor, own: int, token_vector: torch.Tensor, cap: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact ranks of the token in rows [B, d_model] @ kept_E [d_model, V_kept], one chunk of columns
    at a time; a row whose count already puts it past `cap` is dropped midway.

    The chunk holding the token's own column (own >= 0) goes first and gives the token's scores,
    so the token is compared with itself bit for bit and never counted.
    Returns (positions in rows still kept int64 [n], their ranks int64 [n], token scores float32 [n]).
    """
    starts = list(range(0, kept_E.shape[1], EXACT_CHUNK))
    own_scores = rows @ token_vector if own < 0 else None
    if own >= 0:
        starts.insert(0, starts.pop(own // EXACT_CHUNK))
    alive = torch.arange(len(rows))
    above = torch.zeros(len(rows), dtype=torch.int64)
    for start in starts:
        chunk = rows[alive] @ kept_E[:, start : start + EXACT_CHUNK]  # [alive, chunk]
        if own_scores is None:
            own_scores = chunk[:, own - start].clone()
        above[alive] += (chunk > own_scores[alive, None]).sum(dim=1)
        alive = alive[1 + above[alive] <= cap]
        if len(alive) == 0:
            break
    return alive.numpy(), (1 + above[alive]).numpy(), own_scores[alive].numpy().astype(np.float32)


def _merge(best, found, limit: int):
    """The `limit` best of two (rows, ranks, scores) lists: rank ascending, score descending, row."""
    rows, ranks, scores = (np.concatenate([a, b]) for a, b in zip(best, found, strict=True))
    keep = np.lexsort((rows, -scores, ranks))[:limit]
    return rows[keep], ranks[keep], scores[keep]


def neuron_ranks_brute_force(weights: torch.Tensor, E: torch.Tensor, mask: np.ndarray, token: int) -> np.ndarray:
    """Reference: the rank of `token` in every row of weights [N, d_model] @ E [d_model, V], float64. Tests only."""
    scores = weights.double() @ E.double()  # [N, V]
    others = torch.from_numpy(np.array(mask))
    others[token] = False
    return 1 + (scores[:, others] > scores[:, token : token + 1]).sum(dim=1).numpy()
