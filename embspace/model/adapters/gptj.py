"""GPT-J: bias-free q/k/v/out projections, `fc_in`/`fc_out` MLP, untied LM head (with a bias)."""

from __future__ import annotations

from dataclasses import dataclass

from embspace.model.adapters.base import ShapeKeys, find_prefix, heads_in, heads_out, optional, shape_from_config
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
class GPTJAdapter:
    name: str = "gptj"

    def shape(self, config: dict) -> ModelShape:
        return shape_from_config(self.name, config, _KEYS)

    def read_layer(self, reader: TensorReader, shape: ModelShape, layer: int) -> LayerWeights:
        n, d_head = shape.n_heads, shape.d_head
        block = f"{find_prefix(reader, _PREFIXES, 'wte.weight')}h.{layer}."
        attention = block + "attn."
        return LayerWeights(
            W_Q=heads_in(reader.get(attention + "q_proj.weight"), n, d_head),
            W_K=heads_in(reader.get(attention + "k_proj.weight"), n, d_head),
            W_V=heads_in(reader.get(attention + "v_proj.weight"), n, d_head),
            W_O=heads_out(reader.get(attention + "out_proj.weight"), n, d_head),
            ffn_keys=reader.get(block + "mlp.fc_in.weight"),  # [d_ff, d_model]
            ffn_key_bias=optional(reader, block + "mlp.fc_in.bias"),
            ffn_values=reader.get(block + "mlp.fc_out.weight").T.contiguous(),  # [d_model, d_ff] -> [d_ff, d_model]
            ffn_value_bias=optional(reader, block + "mlp.fc_out.bias"),
        )

    def input_embedding_name(self, reader: TensorReader, config: dict) -> str:
        return reader.first(*(prefix + "wte.weight" for prefix in _PREFIXES))

    def output_embedding_name(self, reader: TensorReader, config: dict) -> str | None:
        return "lm_head.weight" if reader.has("lm_head.weight") else None
