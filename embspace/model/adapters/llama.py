"""Llama, Mistral and Qwen2: separate q/k/v/o projections, grouped-query attention, gated MLP."""

from __future__ import annotations

from dataclasses import dataclass

from embspace.model.adapters.base import (
    ShapeKeys,
    expand_groups,
    find_prefix,
    heads_bias,
    heads_in,
    heads_out,
    optional,
    shape_from_config,
)
from embspace.model.checkpoint import TensorReader
from embspace.model.layout import LayerWeights, ModelShape

_PREFIXES = ("model.", "")
_EMBEDDING = "embed_tokens.weight"

_KEYS = ShapeKeys(n_kv_heads=("num_key_value_heads",), head_dim=("head_dim",), gated_mlp=True)


@dataclass(frozen=True)
class LlamaAdapter:
    name: str = "llama"

    def shape(self, config: dict) -> ModelShape:
        return shape_from_config(self.name, config, _KEYS)

    def read_layer(self, reader: TensorReader, shape: ModelShape, layer: int) -> LayerWeights:
        n, n_kv, d_head = shape.n_heads, shape.n_kv_heads, shape.d_head
        block = f"{find_prefix(reader, _PREFIXES, _EMBEDDING)}layers.{layer}."
        attention, mlp = block + "self_attn.", block + "mlp."

        def kv(projection: str):
            weight = heads_in(reader.get(attention + projection + ".weight"), n_kv, d_head)
            bias = heads_bias(optional(reader, attention + projection + ".bias"), n_kv, d_head)
            return expand_groups(weight, n), expand_groups(bias, n)

        W_K, b_K = kv("k_proj")
        W_V, b_V = kv("v_proj")
        return LayerWeights(
            W_Q=heads_in(reader.get(attention + "q_proj.weight"), n, d_head),
            W_K=W_K,
            W_V=W_V,
            W_O=heads_out(reader.get(attention + "o_proj.weight"), n, d_head),
            b_Q=heads_bias(optional(reader, attention + "q_proj.bias"), n, d_head),
            b_K=b_K,
            b_V=b_V,
            b_O=optional(reader, attention + "o_proj.bias"),
            ffn_keys=reader.get(mlp + "gate_proj.weight"),  # [d_ff, d_model]
            ffn_key_bias=optional(reader, mlp + "gate_proj.bias"),
            ffn_up=reader.get(mlp + "up_proj.weight"),  # [d_ff, d_model]
            ffn_up_bias=optional(reader, mlp + "up_proj.bias"),
            ffn_values=reader.get(mlp + "down_proj.weight").T.contiguous(),  # [d_model, d_ff] -> [d_ff, d_model]
            ffn_value_bias=optional(reader, mlp + "down_proj.bias"),
        )

    def input_embedding_name(self, reader: TensorReader, config: dict) -> str:
        return reader.first(*(prefix + _EMBEDDING for prefix in _PREFIXES))

    def output_embedding_name(self, reader: TensorReader, config: dict) -> str | None:
        return "lm_head.weight" if reader.has("lm_head.weight") else None
