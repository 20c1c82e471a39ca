"""The live FFN side of concepts: every neuron's top-k tokens under a filter, computed once per (side, filter, k).

A concept query asks whether each of several tokens is in each neuron's top k; the k-th score of every
neuron is needed whatever the tokens, so the whole [N, V] product is scanned once (block by block, never
held) and the top-k ids kept (MiniLM: 9216 rows x 30522 tokens per side, ~2 s on 2 CPU cores); later
queries with the same filter and k only look the tokens up (`SearchIndex` caches them).
"""

from __future__ import annotations

import numpy as np
import torch

from embspace.search.filtered_vocab import FilteredVocab

NEURON_BLOCK = 512  # rows per block of the scan: [512, V] float32 scores at a time


def neuron_top_tokens(weights: torch.Tensor, vocab: FilteredVocab, k: int) -> np.ndarray:
    """int64 [N, min(k, V_kept)]: each row of weights [N, d_model]'s top-k kept token ids, best first
    (the atlas's stored order: torch.topk of weights @ E over the kept tokens)."""
    k = min(k, vocab.kept_E.shape[1])
    tops = np.empty((weights.shape[0], k), dtype=np.int64)
    for start in range(0, weights.shape[0], NEURON_BLOCK):
        scores = weights[start : start + NEURON_BLOCK] @ vocab.kept_E  # [block, V_kept]
        columns = torch.topk(scores, k, dim=1).indices.numpy()
        tops[start : start + len(columns)] = vocab.allowed[columns]
    return tops
