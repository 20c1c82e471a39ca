"""GPT-NeoX / Pythia: fused `query_key_value` interleaved per head, untied `embed_out` head."""

from __future__ import annotations

from dataclasses import dataclass

from embspace.model.adapters.base import ShapeKeys, find_prefix, heads_out, optional, shape_from_config
from embspace.model.checkpoint import TensorReader
from embspace.model.layout import LayerWeights, ModelShape

_PREFIXES = ("gpt_neox.", "")

_KEYS = ShapeKeys(d_ff_default=4)


@dataclass(frozen=True)
class GPTNeoXAdapter:
    name: str = "gpt_neox"

    def shape(self, config: dict) -> ModelShape:
        return shape_from_config(self.name, config, _KEYS)

    def read_layer(self, reader: TensorReader, shape: ModelShape, layer: int) -> LayerWeights:
        n, d_head, d_model = shape.n_heads, shape.d_head, shape.d_model
        block = f"{find_prefix(reader, _PREFIXES, 'embed_in.weight')}layers.{layer}."
        # Unlike GPT-2's q | k | v, NeoX orders the fused output rows head-major:
        # [n_heads, (q, k, v), d_head]. Splitting it into thirds would mix heads.
        qkv = reader.get(block + "attention.query_key_value.weight").reshape(n, 3, d_head, d_model)
        W_Q, W_K, W_V = (qkv[:, i].transpose(1, 2).contiguous() for i in range(3))
        qkv_bias = optional(reader, block + "attention.query_key_value.bias")
        if qkv_bias is not None:
            b_Q, b_K, b_V = (part.contiguous() for part in qkv_bias.reshape(n, 3, d_head).unbind(1))
        else:
            b_Q = b_K = b_V = None
        return LayerWeights(
            W_Q=W_Q,
            W_K=W_K,
            W_V=W_V,
            W_O=heads_out(reader.get(block + "attention.dense.weight"), n, d_head),
            b_Q=b_Q,
            b_K=b_K,
            b_V=b_V,
            b_O=optional(reader, block + "attention.dense.bias"),
            ffn_keys=reader.get(block + "mlp.dense_h_to_4h.weight"),  # [d_ff, d_model]
            ffn_key_bias=optional(reader, block + "mlp.dense_h_to_4h.bias"),
            ffn_values=reader.get(block + "mlp.dense_4h_to_h.weight").T.contiguous(),  # -> [d_ff, d_model]
            ffn_value_bias=optional(reader, block + "mlp.dense_4h_to_h.bias"),
        )

    def input_embedding_name(self, reader: TensorReader, config: dict) -> str:
        return reader.first(*(prefix + "embed_in.weight" for prefix in _PREFIXES))

    def output_embedding_name(self, reader: TensorReader, config: dict) -> str | None:
        return "embed_out.weight" if reader.has("embed_out.weight") else None
