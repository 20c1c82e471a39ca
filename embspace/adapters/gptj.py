"""GPT-J: bias-free q/k/v/out projections, `fc_in`/`fc_out` MLP, untied LM head (with a bias)."""

from __future__ import annotations

from dataclasses import dataclass

from embspace.adapters.base import check_heads, config_value, find_prefix, heads_in, heads_out, optional
from embspace.checkpoint import TensorReader
from embspace.layout import LayerWeights, ModelShape

_PREFIXES = ("transformer.", "")


@dataclass(frozen=True)
class GPTJAdapter:
    name: str = "gptj"

    def shape(self, config: dict) -> ModelShape:
        d_model = config_value(config, "n_embd", "hidden_size")
        n_heads = config_value(config, "n_head", "num_attention_heads")
        return check_heads(
            ModelShape(
                architecture=self.name,
                n_layers=config_value(config, "n_layer", "num_hidden_layers"),
                n_heads=n_heads,
                n_kv_heads=n_heads,
                d_model=d_model,
                d_head=d_model // n_heads,
                d_ff=config_value(config, "n_inner", default=4 * d_model),
                vocab_size=config_value(config, "vocab_size"),
            )
        )

    def read_layer(self, reader: TensorReader, config: dict, layer: int) -> LayerWeights:
        shape = self.shape(config)
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
