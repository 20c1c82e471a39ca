"""GPT-2: fused `c_attn` and `Conv1D` weights stored `[in, out]`, LM head tied to `wte`."""

from __future__ import annotations

from dataclasses import dataclass

from embspace.model.adapters.base import (
    ShapeKeys,
    find_prefix,
    heads_bias,
    heads_in,
    heads_out,
    optional,
    shape_from_config,
)
from embspace.model.checkpoint import TensorReader
from embspace.model.layout import LayerWeights, ModelShape

_PREFIXES = ("transformer.", "")

_KEYS = ShapeKeys(
    d_model=("n_embd", "hidden_size"),
    n_heads=("n_head", "num_attention_heads"),
    n_layers=("n_layer", "num_hidden_layers"),
    d_ff=("n_inner",),
    d_ff_default=4,
)


@dataclass(frozen=True)
class GPT2Adapter:
    name: str = "gpt2"

    def shape(self, config: dict) -> ModelShape:
        return shape_from_config(self.name, config, _KEYS)

    def read_layer(self, reader: TensorReader, shape: ModelShape, layer: int) -> LayerWeights:
        n, d_head, d_model = shape.n_heads, shape.d_head, shape.d_model
        block = f"{find_prefix(reader, _PREFIXES, 'wte.weight')}h.{layer}."
        # Conv1D [in, out] -> nn.Linear [out, in]; c_attn's outputs are q | k | v, each [d_model].
        qkv = reader.get(block + "attn.c_attn.weight").T
        qkv_bias = optional(reader, block + "attn.c_attn.bias")
        q, k, v = qkv.split(d_model, dim=0)
        b_q, b_k, b_v = qkv_bias.split(d_model) if qkv_bias is not None else (None, None, None)
        return LayerWeights(
            W_Q=heads_in(q, n, d_head),
            W_K=heads_in(k, n, d_head),
            W_V=heads_in(v, n, d_head),
            W_O=heads_out(reader.get(block + "attn.c_proj.weight").T, n, d_head),
            b_Q=heads_bias(b_q, n, d_head),
            b_K=heads_bias(b_k, n, d_head),
            b_V=heads_bias(b_v, n, d_head),
            b_O=optional(reader, block + "attn.c_proj.bias"),
            ffn_keys=reader.get(block + "mlp.c_fc.weight").T.contiguous(),  # [d_model, d_ff] -> [d_ff, d_model]
            ffn_key_bias=optional(reader, block + "mlp.c_fc.bias"),
            ffn_values=reader.get(block + "mlp.c_proj.weight"),  # already [d_ff, d_model]
            ffn_value_bias=optional(reader, block + "mlp.c_proj.bias"),
        )

    def input_embedding_name(self, reader: TensorReader, config: dict) -> str:
        return reader.first(*(prefix + "wte.weight" for prefix in _PREFIXES))

    def output_embedding_name(self, reader: TensorReader, config: dict) -> str | None:
        return "lm_head.weight" if reader.has("lm_head.weight") else None
