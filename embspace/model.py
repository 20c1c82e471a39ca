"""Open a model for embedding-space reading: config, tokenizer and E first, layers on demand."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from embspace.adapters import Adapter, adapter_for
from embspace.checkpoint import TensorReader
from embspace.errors import EmbspaceError, OutOfRange
from embspace.filters import VocabFilter
from embspace.layout import LayerWeights, ModelShape
from embspace.sources import ProgressFn, resolve_source
from embspace.tokens import Vocabulary, build_vocabulary

EMBEDDING_CHOICES = ("auto", "input", "output")
# Layers kept in memory at once: enough to flip between heads of one layer, bounded for the cloud.
LAYER_CACHE_SIZE = 2
MASK_CACHE_SIZE = 8
LM_HEAD_SUFFIXES = ("LMHeadModel", "ForCausalLM", "ForMaskedLM", "ForPreTraining")


@dataclass(frozen=True)
class ModelInfo:
    """What was opened, for display and export headers."""

    source: str
    revision: str | None
    path: str
    origin: str  # "bundled", "local" or "hub"
    shape: ModelShape
    embedding: str  # "input" or "output"
    tied: bool  # output embedding is the input embedding
    weight_bytes: int

    def as_dict(self) -> dict:
        shape = vars(self.shape)
        return {
            "source": self.source,
            "revision": self.revision,
            "path": self.path,
            "origin": self.origin,
            **shape,
            "embedding": self.embedding,
            "tied": self.tied,
            "weight_bytes": self.weight_bytes,
        }


class EmbeddingSpaceModel:
    """A model opened lazily: E and the vocabulary in memory, one layer's tensors when asked.

    Safe to share between threads (Streamlit sessions): the only mutable state is bounded,
    lock-protected caches of read-only tensors.
    """

    def __init__(
        self, info: ModelInfo, config: dict, adapter: Adapter, reader: TensorReader, tokenizer, embedding_rows: torch.Tensor
    ):
        self.info = info
        self.shape = info.shape
        self.config = config
        self.tokenizer = tokenizer
        self._reader = reader
        self._adapter = adapter
        self.embedding_rows = embedding_rows  # [vocab, d_model], float32: row t is token t's vector
        self.vocab: Vocabulary = build_vocabulary(tokenizer, info.shape.vocab_size)
        self._layers: OrderedDict[int, LayerWeights] = OrderedDict()
        self._masks: OrderedDict[VocabFilter, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def E(self) -> torch.Tensor:
        """The embedding matrix in the paper's orientation, [d_model, vocab] (a view, no copy)."""
        return self.embedding_rows.T

    def layer(self, index: int) -> LayerWeights:
        """Layer `index`'s weights in the canonical layout, read from disk on first use."""
        check_index("layer", index, self.shape.n_layers)
        with self._lock:
            if index in self._layers:
                self._layers.move_to_end(index)
                return self._layers[index]
        weights = self._adapter.read_layer(self._reader, self.config, index)
        with self._lock:
            self._layers[index] = weights
            while len(self._layers) > LAYER_CACHE_SIZE:
                self._layers.popitem(last=False)
        return weights

    def vocab_mask(self, vocab_filter: VocabFilter | None) -> np.ndarray:
        """Boolean [vocab] mask of the tokens `vocab_filter` keeps (None: the default filter,
        which drops special and padding tokens, as everywhere in embspace)."""
        vocab_filter = vocab_filter or VocabFilter()
        with self._lock:
            if vocab_filter in self._masks:
                return self._masks[vocab_filter]
        mask = vocab_filter.mask(self.vocab)
        mask.setflags(write=False)
        with self._lock:
            self._masks[vocab_filter] = mask
            while len(self._masks) > MASK_CACHE_SIZE:
                self._masks.popitem(last=False)
        return mask


def check_index(what: str, index: int, size: int) -> None:
    """Raise OutOfRange naming the valid range."""
    if not 0 <= index < size:
        raise OutOfRange(f"{what} {index} is out of range: this model has {what}s 0..{size - 1}.")


def open_model(
    source: str,
    *,
    revision: str | None = None,
    embedding: str = "auto",
    weight_budget_bytes: int | None = None,
    progress: ProgressFn | None = None,
) -> EmbeddingSpaceModel:
    """Open `source` (hub id, local directory, or the bundled default) for reading in vocabulary space.

    embedding: "input" (word embeddings), "output" (LM head, transposed) or "auto" (output when
    the checkpoint has an LM head, else input).
    """
    if embedding not in EMBEDDING_CHOICES:
        raise EmbspaceError(f"embedding must be one of {', '.join(EMBEDDING_CHOICES)}, not {embedding!r}.")
    resolved = resolve_source(source, revision=revision, weight_budget_bytes=weight_budget_bytes, progress=progress)
    config = json.loads((resolved.path / "config.json").read_text())
    adapter = adapter_for(config)
    if progress:
        progress("Reading the tokenizer and the embedding matrix", 0.9)
    reader = TensorReader(resolved.path)
    shape = adapter.shape(config)
    embedding_name, used, tied = _choose_embedding(adapter, reader, config, embedding, source)
    embedding_rows = reader.get(embedding_name).contiguous()  # [vocab, d_model]
    if shape.vocab_size != embedding_rows.shape[0]:  # padded embeddings: E's rows are the vocabulary
        shape = replace(shape, vocab_size=embedding_rows.shape[0])
    info = ModelInfo(
        source=source,
        revision=revision,
        path=str(resolved.path),
        origin=resolved.origin,
        shape=shape,
        embedding=used,
        tied=tied,
        weight_bytes=reader.total_bytes,
    )
    model = EmbeddingSpaceModel(info, config, adapter, reader, load_tokenizer(resolved.path), embedding_rows)
    if progress:
        progress("Model ready", 1.0)
    return model


def _choose_embedding(adapter, reader: TensorReader, config: dict, embedding: str, source: str):
    """(tensor name, "input"/"output", tied) for the requested embedding."""
    input_name = adapter.input_embedding_name(reader, config)
    output_name = adapter.output_embedding_name(reader, config)
    has_lm_head = output_name is not None or any(
        arch.endswith(LM_HEAD_SUFFIXES) for arch in config.get("architectures") or []
    )
    tied = has_lm_head and output_name is None
    if embedding == "input" or (embedding == "auto" and not has_lm_head):
        return input_name, "input", tied
    if not has_lm_head:
        raise EmbspaceError(
            f"{source} has no LM head (output embedding) in its checkpoint: use --embedding input."
        )
    return output_name or input_name, "output", tied


def load_tokenizer(path: Path):
    """The model's own tokenizer; repository code is never run."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    except Exception as err:  # transformers raises many types here; one clear line is what helps
        raise EmbspaceError(f"Could not load the tokenizer from {path}: {err}") from err
