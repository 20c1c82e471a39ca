"""The filtered vocabulary a live search scans (kept token ids and their columns of E), cached per filter.

The cache lives on the search index, which every dashboard session shares: one lock guards it, and a
caller always gets the value it looked up or built itself, never a shared attribute read a second time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from embspace.model.embedding_space import EmbeddingSpaceModel
from embspace.vocab.filters import VocabFilter

# Filters kept per index: two sessions with different filters do not rebuild each other's (each entry
# holds kept_E, up to the size of E: 206 MB for GPT-2 medium).
VOCAB_CACHE_ENTRIES = 2


@dataclass(frozen=True, eq=False)
class FilteredVocab:
    """The vocabulary a filter keeps, as every live scan reads it. Read-only: sessions share it."""

    allowed: np.ndarray  # int64 [V_kept]: kept token ids, ascending
    kept_E: torch.Tensor  # float32 [d_model, V_kept]: their columns of E
    kept_norms: torch.Tensor  # float32 [V_kept]: column norms of kept_E
    column_of: np.ndarray  # int64 [V]: column in kept_E, -1 where the filter drops the token

    @classmethod
    def build(cls, model: EmbeddingSpaceModel, vocab_filter: VocabFilter | None) -> FilteredVocab:
        """The columns of model.E that `vocab_filter` keeps (None: the default filter)."""
        mask = np.array(model.vocab_mask(vocab_filter))
        allowed = np.flatnonzero(mask).astype(np.int64)
        column_of = np.full(mask.shape[0], -1, dtype=np.int64)
        column_of[allowed] = np.arange(len(allowed))
        kept_E = model.E[:, torch.from_numpy(allowed)].contiguous()
        allowed.setflags(write=False)
        column_of.setflags(write=False)
        return cls(allowed, kept_E, torch.linalg.vector_norm(kept_E, dim=0), column_of)


class FilteredVocabCache:
    """The filtered vocabularies of one model's last `max_entries` filters, safe to share between threads."""

    def __init__(self, model: EmbeddingSpaceModel, max_entries: int = VOCAB_CACHE_ENTRIES):
        self._model = model
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[VocabFilter, FilteredVocab] = OrderedDict()  # least recently used first

    def get(self, vocab_filter: VocabFilter | None) -> FilteredVocab:
        """The filtered vocabulary of `vocab_filter` (None: the default filter), built on first use."""
        vocab_filter = vocab_filter or VocabFilter()
        with self._lock:
            found = self._entries.get(vocab_filter)
            if found is not None:
                self._entries.move_to_end(vocab_filter)
                return found
        # Built outside the lock, so other sessions' lookups go on; two sessions may both build a new filter once.
        built = FilteredVocab.build(self._model, vocab_filter)
        with self._lock:
            self._entries[vocab_filter] = built
            self._entries.move_to_end(vocab_filter)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return built
