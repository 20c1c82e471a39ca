"""OPT: nn.Linear q/k/v/out projections with biases, `fc1`/`fc2` MLP, LM head tied to the embedding.

OPTAttention multiplies the *output* of `q_proj` by d_head ** -0.5 before the dot product (and
then calls attention with scaling 1.0). The canonical W_Q/b_Q here are the raw `q_proj`
parameters, so q . k scores carry the usual 1/sqrt(d_head) like every other architecture.
"""

from __future__ import annotations

from dataclasses import dataclass

from embspace.model.adapters.base import (
    ShapeKeys,
    UnsupportedArchitecture,
    config_value,
    find_prefix,
    heads_bias,
    heads_in,
    heads_out,
    optional,
    shape_from_config,
)
from embspace.model.checkpoint import TensorReader
from embspace.model.layout import LayerWeights, ModelShape

_PREFIXES = ("model.decoder.", "decoder.", "")
_EMBEDDING = "embed_tokens.weight"

_KEYS = ShapeKeys(d_ff=("ffn_dim",))


@dataclass(frozen=True)
class OPTAdapter:
    name: str = "opt"

    def shape(self, config: dict) -> ModelShape:
        d_model = config_value(config, "hidden_size")
        embedding_dim = config_value(config, "word_embed_proj_dim", default=d_model)
        if embedding_dim != d_model:
            # opt-350m: embeddings live in a smaller space and enter the residual stream
            # through project_in, so E is not [vocab, d_model].
            raise UnsupportedArchitecture(
                f"this OPT model embeds tokens in {embedding_dim} dimensions and projects them to "
                f"its {d_model}-dimensional residual stream (like facebook/opt-350m); embspace "
                "does not map that projection. Pick another OPT size (125m, 1.3b, 2.7b, ...)."
            )
        return shape_from_config(self.name, config, _KEYS)

    def read_layer(self, reader: TensorReader, shape: ModelShape, layer: int) -> LayerWeights:
        n, d_head = shape.n_heads, shape.d_head
        block = f"{find_prefix(reader, _PREFIXES, _EMBEDDING)}layers.{layer}."
        attention = block + "self_attn."
        return LayerWeights(
            W_Q=heads_in(reader.get(attention + "q_proj.weight"), n, d_head),
            W_K=heads_in(reader.get(attention + "k_proj.weight"), n, d_head),
            W_V=heads_in(reader.get(attention + "v_proj.weight"), n, d_head),
            W_O=heads_out(reader.get(attention + "out_proj.weight"), n, d_head),
            b_Q=heads_bias(optional(reader, attention + "q_proj.bias"), n, d_head),
            b_K=heads_bias(optional(reader, attention + "k_proj.bias"), n, d_head),
            b_V=heads_bias(optional(reader, attention + "v_proj.bias"), n, d_head),
            b_O=optional(reader, attention + "out_proj.bias"),
            ffn_keys=reader.get(block + "fc1.weight"),  # [d_ff, d_model]
            ffn_key_bias=optional(reader, block + "fc1.bias"),
            ffn_values=reader.get(block + "fc2.weight").T.contiguous(),  # [d_model, d_ff] -> [d_ff, d_model]
            ffn_value_bias=optional(reader, block + "fc2.bias"),
        )

    def input_embedding_name(self, reader: TensorReader, config: dict) -> str:
        return reader.first(*(prefix + _EMBEDDING for prefix in _PREFIXES))

    def output_embedding_name(self, reader: TensorReader, config: dict) -> str | None:
        return "lm_head.weight" if reader.has("lm_head.weight") else None
