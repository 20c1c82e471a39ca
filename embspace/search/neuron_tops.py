"""The live FFN side of concepts: every neuron's top-k tokens under a filter, computed once per (side, filter, k).

A concept query asks whether each of several tokens is in each neuron's top k; the k-th score of every
neuron is needed whatever the tokens, so the whole [N, V] product is scanned once (block by block, never
held) and the top-k ids kept (MiniLM: 9216 rows x 30522 tokens per side, ~2 s on 2 CPU cores); later
queries with the same filter and k only look the tokens up.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import torch

from embspace.search.filtered_vocab import FilteredVocab

NEURON_BLOCK = 512  # rows per block of the scan: [512, V] float32 scores at a time
TOPS_CACHE_ENTRIES = 4


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


class NeuronTopsCache:
    """Top-k token ids of every neuron per (side, filter, k), the last few kept, safe to share between threads."""

    def __init__(self, max_entries: int = TOPS_CACHE_ENTRIES):
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, np.ndarray] = OrderedDict()  # least recently used first

    def get(self, key: tuple, weights: torch.Tensor, vocab: FilteredVocab, k: int) -> np.ndarray:
        """The tops of `weights` under `vocab` (key: a hashable name of both, plus k), computed on first use."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        built = neuron_top_tokens(weights, vocab, k)  # outside the lock: other sessions go on meanwhile
        built.setflags(write=False)
        with self._lock:
            self._entries[key] = built
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return built
