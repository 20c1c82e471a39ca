"""`ArchitectureSpec`: one architecture's checkpoint names and split rules as data, and the one adapter reading any spec.

Every name in a spec is relative: the base model sits under one of `prefixes` ("" for a bare base
model), a layer's tensors under `block`, and a projection `p` is the pair `p.weight` / `p.bias`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from embspace.model.adapters.base import (
    ShapeKeys,
    expand_groups,
    find_prefix,
    heads_bias,
    heads_in,
    heads_out,
    optional,
    shape_from_config,
    split_fused,
)
from embspace.model.checkpoint import TensorReader
from embspace.model.layout import LayerWeights, ModelShape

Fields = dict[str, torch.Tensor | None]  # keyword arguments of `LayerWeights`


@dataclass(frozen=True)
class BlockReader:
    """One layer's tensors by projection name, weights always in the nn.Linear `[out, in]` form."""

    reader: TensorReader
    block: str  # full name of the layer, e.g. "transformer.h.3."
    stored_in_out: bool  # Conv1D checkpoints (GPT-2) store every weight [in, out]

    def weight(self, projection: str) -> torch.Tensor:
        """`projection.weight` as `[out, in]`."""
        weight = self.reader.get(f"{self.block}{projection}.weight")
        return weight.T if self.stored_in_out else weight

    def bias(self, projection: str) -> torch.Tensor | None:
        """`projection.bias` `[out]`, or None where the checkpoint has none (GPT-J, Llama)."""
        return optional(self.reader, f"{self.block}{projection}.bias")


def head_fields(side: str, weight: torch.Tensor, bias: torch.Tensor | None, n_groups: int, shape: ModelShape) -> Fields:
    """`W_<side>` `[n_heads, d_model, d_head]` and `b_<side>` `[n_heads, d_head]` from a projection.

    weight: `[n_groups * d_head, d_model]`, bias: `[n_groups * d_head]`; n_groups < n_heads is
    grouped-query K/V, expanded so head h reads group h // (n_heads // n_groups).
    """
    return {
        f"W_{side}": expand_groups(heads_in(weight, n_groups, shape.d_head), shape.n_heads),
        f"b_{side}": expand_groups(heads_bias(bias, n_groups, shape.d_head), shape.n_heads),
    }


@dataclass(frozen=True)
class SeparateQKV:
    """q, k, v as three projections: q `[n_heads * d_head, d_model]`, k and v `[n_kv_heads * d_head, d_model]`."""

    q: str
    k: str
    v: str
    out: str  # the output projection [d_model, n_heads * d_head]

    def read(self, block: BlockReader, shape: ModelShape) -> Fields:
        counts = {"Q": (self.q, shape.n_heads), "K": (self.k, shape.n_kv_heads), "V": (self.v, shape.n_kv_heads)}
        fields: Fields = {}
        for side, (projection, n_groups) in counts.items():
            fields |= head_fields(side, block.weight(projection), block.bias(projection), n_groups, shape)
        return fields


@dataclass(frozen=True)
class FusedQKV:
    """q, k, v as one projection `[3 * n_heads * d_head, d_model]`, cut by `split_fused` (one K/V head per head)."""

    qkv: str
    out: str  # the output projection [d_model, n_heads * d_head]
    per_head: bool  # True: head-major rows [n_heads, 3, d_head] (GPT-NeoX); False: q | k | v (GPT-2)

    def read(self, block: BlockReader, shape: ModelShape) -> Fields:
        n_heads, d_head = shape.n_heads, shape.d_head
        weights = split_fused(block.weight(self.qkv), n_heads, d_head, per_head=self.per_head)
        bias = block.bias(self.qkv)
        biases = (None, None, None) if bias is None else split_fused(bias, n_heads, d_head, per_head=self.per_head)
        fields: Fields = {}
        for side, weight, part in zip("QKV", weights, biases, strict=True):
            fields |= head_fields(side, weight, part, n_heads, shape)
        return fields


@dataclass(frozen=True)
class MlpNames:
    """The FFN's projections: keys `[d_ff, d_model]` in, values `[d_model, d_ff]` out, up for gated MLPs."""

    keys: str  # the gate of a gated MLP
    values: str
    up: str | None = None  # gated MLPs (Llama): act = f(x @ keys.T) * (x @ up.T)

    def read(self, block: BlockReader) -> Fields:
        fields: Fields = {
            "ffn_keys": block.weight(self.keys).contiguous(),  # [d_ff, d_model]
            "ffn_key_bias": block.bias(self.keys),
            "ffn_values": block.weight(self.values).T.contiguous(),  # [d_model, d_ff] -> [d_ff, d_model]
            "ffn_value_bias": block.bias(self.values),
        }
        if self.up is not None:
            fields |= {"ffn_up": block.weight(self.up).contiguous(), "ffn_up_bias": block.bias(self.up)}
        return fields


@dataclass(frozen=True, kw_only=True)
class ArchitectureSpec:
    """Where one architecture keeps its sizes, E, U and each layer's attention and FFN, and how to cut them.

    Fields in the order a model is opened: config.json, then the embeddings, then layers on demand.
    """

    keys: ShapeKeys = ShapeKeys()
    check_config: Callable[[dict], None] | None = None  # raises UnsupportedArchitecture for variants not covered
    prefixes: tuple[str, ...]  # where headed models nest the base model; "" (a bare base model) last
    embedding: str  # E [vocab, d_model], under the prefix
    lm_heads: tuple[str, ...] = ("lm_head.weight",)  # untied U [vocab, d_model], full names, first present wins
    block: str  # layer `{layer}`'s names start here, under the prefix
    stored_in_out: bool = False  # Conv1D: every layer weight stored [in, out]
    attention: SeparateQKV | FusedQKV
    mlp: MlpNames


@dataclass(frozen=True)
class ArchitectureAdapter:
    """The `Adapter` of every architecture: reads `spec` into the canonical `LayerWeights`."""

    name: str  # the model type, also `ModelShape.architecture`
    spec: ArchitectureSpec

    def shape(self, config: dict) -> ModelShape:
        if self.spec.check_config is not None:
            self.spec.check_config(config)
        return shape_from_config(self.name, config, self.spec.keys, gated_mlp=self.spec.mlp.up is not None)

    def read_layer(self, reader: TensorReader, shape: ModelShape, layer: int) -> LayerWeights:
        prefix = find_prefix(reader, self.spec.prefixes, self.spec.embedding)
        block = BlockReader(reader, prefix + self.spec.block.format(layer=layer), self.spec.stored_in_out)
        return LayerWeights(
            **self.spec.attention.read(block, shape),
            W_O=heads_out(block.weight(self.spec.attention.out), shape.n_heads, shape.d_head),
            b_O=block.bias(self.spec.attention.out),
            **self.spec.mlp.read(block),
        )

    def input_embedding_name(self, reader: TensorReader, config: dict) -> str:
        return reader.first(*(prefix + self.spec.embedding for prefix in self.spec.prefixes))

    def output_embedding_name(self, reader: TensorReader, config: dict) -> str | None:
        return next((name for name in self.spec.lm_heads if reader.has(name)), None)
