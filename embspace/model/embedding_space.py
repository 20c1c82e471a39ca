"""Open a model for embedding-space reading: config, tokenizer and E first, layers on demand."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from embspace.errors import EmbspaceError, InconsistentModel, NonFiniteWeights, OutOfRange
from embspace.model.adapters import Adapter, adapter_for
from embspace.model.checkpoint import TensorReader
from embspace.model.layout import LayerWeights, ModelShape
from embspace.model.sources import ProgressFn, ResolvedSource, check_custom_code, resolve_source
from embspace.vocab.filters import VocabFilter
from embspace.vocab.tokens import Vocabulary, build_vocabulary, check_tokenizer_files

# "input-output" (untied models): rows read through the input embedding, columns through the LM head.
EMBEDDING_CHOICES = ("auto", "input", "output", "input-output")
# Layers kept in memory at once: enough to flip between heads of one layer, bounded for the cloud.
LAYER_CACHE_SIZE = 2
MASK_CACHE_SIZE = 8
# Largest k for a table (tokens or pairs): bigger asks ran out of memory and no one reads past it.
MAX_K = 10_000
LM_HEAD_SUFFIXES = ("LMHeadModel", "ForCausalLM", "ForMaskedLM", "ForPreTraining")


@dataclass(frozen=True)
class ModelInfo:
    """What was opened, for display and export headers."""

    source: str
    revision: str | None
    path: str
    origin: str  # "bundled", "local" or "hub"
    shape: ModelShape
    embedding: str  # "input", "output" or "input-output" (rows input, columns output)
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
        self,
        info: ModelInfo,
        config: dict,
        adapter: Adapter,
        reader: TensorReader,
        tokenizer,
        embedding_rows: torch.Tensor,
        output_rows: torch.Tensor | None = None,
    ):
        self.info = info
        self.shape = info.shape
        self.config = config
        self.tokenizer = tokenizer
        self._reader = reader
        self._adapter = adapter
        self.embedding_rows = embedding_rows  # [vocab, d_model], float32: row t is token t's vector
        # The columns' side of every V x V matrix: the same tensor unless embedding is "input-output".
        self.output_rows = embedding_rows if output_rows is None else output_rows  # [vocab, d_model]
        self.vocab: Vocabulary = build_vocabulary(tokenizer, info.shape.vocab_size)
        self._layers: OrderedDict[int, LayerWeights] = OrderedDict()
        self._masks: OrderedDict[VocabFilter, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._nonfinite: dict[int, dict[str, tuple[int, ...]]] = {}  # layer -> broken tensors, found when read

    @property
    def E(self) -> torch.Tensor:
        """The embedding matrix in the paper's orientation, [d_model, vocab] (a view, no copy)."""
        return self.embedding_rows.T

    @property
    def E_out(self) -> torch.Tensor:
        """The columns' embedding matrix, [d_model, vocab]: E itself unless embedding is "input-output"."""
        return self.output_rows.T

    def layer(self, index: int, *, allow_nonfinite: bool = False) -> LayerWeights:
        """Layer `index`'s weights in the canonical layout, read from disk on first use.

        Raises NonFiniteWeights naming the tensors with NaN/Inf values, unless allow_nonfinite
        (copying scores read such layers and report the broken heads as NaN).
        """
        weights = self._layer(index)
        if not allow_nonfinite and self._nonfinite.get(index):
            raise nonfinite_error(index, self._nonfinite[index])
        return weights

    def nonfinite_tensors(self, index: int) -> dict[str, tuple[int, ...]]:
        """{tensor name: broken heads (attention) or neurons (FFN)} of layer `index`; {} when all finite."""
        self._layer(index)
        return dict(self._nonfinite.get(index, {}))

    def _layer(self, index: int) -> LayerWeights:
        check_index("layer", index, self.shape.n_layers)
        with self._lock:
            if index in self._layers:
                self._layers.move_to_end(index)
                return self._layers[index]
        weights = read_layer_checked(self._adapter, self._reader, self.shape, index)
        self._nonfinite[index] = nonfinite_rows(weights)
        with self._lock:
            self._layers[index] = weights
            while len(self._layers) > LAYER_CACHE_SIZE:
                self._layers.popitem(last=False)
                self._reader.release()  # the evicted layer's mapped pages leave resident memory
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


def check_k(k: int, what: str = "k") -> None:
    """Raise EmbspaceError unless 1 <= k <= MAX_K (`what` names the setting in the message, e.g. "--k")."""
    if not 1 <= k <= MAX_K:
        raise EmbspaceError(f"{what} must be between 1 and {MAX_K:,}, not {k:,}.")


def open_model(
    source: str,
    *,
    revision: str | None = None,
    embedding: str = "auto",
    weight_budget_bytes: int | None = None,
    progress: ProgressFn | None = None,
    resolved: ResolvedSource | None = None,
) -> EmbeddingSpaceModel:
    """Open `source` (hub id, local directory, or the bundled default) for reading in vocabulary space.

    embedding: "input" (word embeddings), "output" (LM head, transposed) or "auto" (output when
    the checkpoint has an LM head, else input).
    resolved: where `source`'s files already are (hosting.HostingPolicy resolves them its own way).
    """
    if embedding not in EMBEDDING_CHOICES:
        raise EmbspaceError(f"embedding must be one of {', '.join(EMBEDDING_CHOICES)}, not {embedding!r}.")
    if resolved is None:
        resolved = resolve_source(source, revision=revision, weight_budget_bytes=weight_budget_bytes, progress=progress)
    config = read_config(resolved.path, source)
    check_custom_code(config, resolved.path, source)
    adapter = adapter_for(config)
    if progress:
        progress("Reading the tokenizer and the embedding matrix", 0.9)
    reader = TensorReader(resolved.path)
    shape = adapter.shape(config)
    embedding_name, used, tied = _choose_embedding(adapter, reader, config, embedding, source)
    embedding_rows = reader.get(embedding_name).contiguous()  # [vocab, d_model]
    check_embedding(embedding_rows, shape, config, embedding_name, source)
    output_rows = (
        _output_rows(adapter, reader, config, embedding_rows, shape, source) if used == "input-output" else None
    )
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
    tokenizer = load_tokenizer(resolved.path)
    model = EmbeddingSpaceModel(info, config, adapter, reader, tokenizer, embedding_rows, output_rows)
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
    if embedding == "input-output":
        if output_name is None:
            why = "ties its LM head to the input embedding" if tied else "has no LM head (output embedding)"
            raise EmbspaceError(
                f"{source} {why}: input-output reads rows and columns through two different matrices; "
                "use --embedding input."
            )
        return input_name, "input-output", tied
    if embedding == "input" or (embedding == "auto" and not has_lm_head):
        return input_name, "input", tied
    if not has_lm_head:
        raise EmbspaceError(f"{source} has no LM head (output embedding) in its checkpoint: use --embedding input.")
    return output_name or input_name, "output", tied


def _output_rows(adapter, reader: TensorReader, config: dict, input_rows, shape: ModelShape, source: str):
    """The LM head [vocab, d_model] for "input-output", checked against the input embedding's shape."""
    name = adapter.output_embedding_name(reader, config)
    rows = reader.get(name).contiguous()
    check_embedding(rows, shape, config, name, source)
    if rows.shape != input_rows.shape:
        raise InconsistentModel(
            f"{source}: the LM head {name} is {tuple(rows.shape)} but the input embedding is "
            f"{tuple(input_rows.shape)}; input-output needs one row per token in both."
        )
    return rows


def load_tokenizer(path: Path):
    """The model's own tokenizer; repository code is never run."""
    from transformers import AutoTokenizer

    check_tokenizer_files(path)
    try:
        return AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    except Exception as err:  # transformers raises many types here; one clear line is what helps
        raise EmbspaceError(f"Could not load the tokenizer from {path}: {err}") from err


def read_config(directory: Path, source: str) -> dict:
    """config.json as a dict; a clear error for a file that is not a JSON object."""
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:
        raise InconsistentModel(f"{source}'s config.json cannot be read as JSON ({err}).") from err
    if not isinstance(config, dict):
        raise InconsistentModel(f"{source}'s config.json is not a JSON object.")
    return config


def check_embedding(rows: torch.Tensor, shape: ModelShape, config: dict, name: str, source: str) -> None:
    """Refuse an embedding matrix [vocab, d_model] that disagrees with config.json or holds NaN/Inf."""
    if rows.ndim != 2 or rows.shape[1] != shape.d_model:
        raise InconsistentModel(
            f"{source}: config.json says hidden size {shape.d_model}, but the weights' {name} is "
            f"{list(rows.shape)}; config.json and the weights are from different models."
        )
    explicit_head_dim = config.get("head_dim") is not None
    if not explicit_head_dim and shape.n_heads * shape.d_head != shape.d_model:
        raise InconsistentModel(
            f"{source}: config.json's {shape.n_heads} attention heads do not divide its hidden size "
            f"{shape.d_model}; config.json is inconsistent."
        )
    # In row blocks: a mask of the whole of a large E would cost as much memory as E in bytes / 4.
    broken = sum(int((~torch.isfinite(block)).any(dim=1).sum()) for block in rows.split(8192))
    if broken:
        raise NonFiniteWeights(
            f"{source}: the embedding matrix {name} has NaN or Inf values in {broken:,} token rows; "
            "nothing can be projected on it. The checkpoint is damaged.",
            layer=-1,
            tensors={name: ()},
        )


def read_layer_checked(adapter: Adapter, reader: TensorReader, shape: ModelShape, index: int):
    """adapter.read_layer, with shape mismatches (config.json vs weights) turned into one clear error."""
    try:
        return adapter.read_layer(reader, shape, index)
    except (RuntimeError, ValueError) as err:  # reshape/split of a tensor whose size config.json got wrong
        raise InconsistentModel(
            f"layer {index}'s weights do not match config.json ({shape.n_heads} heads x {shape.d_head} "
            f"per head, hidden size {shape.d_model}): {str(err).splitlines()[0]}"
        ) from err


def nonfinite_rows(weights: LayerWeights) -> dict[str, tuple[int, ...]]:
    """{tensor name: indices along dim 0 (heads, or neurons for FFN) holding NaN/Inf} for the broken tensors."""
    broken = {}
    for name, tensor in vars(weights).items():
        if isinstance(tensor, torch.Tensor) and not bool(torch.isfinite(tensor).all()):
            bad = ~torch.isfinite(tensor)
            rows = bad.reshape(bad.shape[0], -1).any(dim=1) if bad.ndim > 1 else bad
            broken[name] = tuple(int(i) for i in torch.nonzero(rows).flatten())
    return broken


def nonfinite_error(layer: int, tensors: dict[str, tuple[int, ...]]) -> NonFiniteWeights:
    """One message naming each broken tensor of `layer` and where in it."""

    def where(name: str, rows: tuple[int, ...]) -> str:
        unit = "entries" if name in ("b_O", "ffn_value_bias") else "neurons" if name.startswith("ffn") else "heads"
        unit = unit if len(rows) > 1 else unit[:-1]
        shown = ", ".join(map(str, rows[:8])) + (", ..." if len(rows) > 8 else "")
        return f"{name} ({unit} {shown})"

    listed = "; ".join(where(name, rows) for name, rows in tensors.items())
    return NonFiniteWeights(
        f"layer {layer} has NaN or Inf weights in {listed}: its heads and neurons cannot be ranked. "
        "The checkpoint is damaged; the copying scores show its broken heads as nan.",
        layer=layer,
        tensors=tensors,
    )
