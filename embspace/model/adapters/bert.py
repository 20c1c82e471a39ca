"""BERT and RoBERTa encoders: nn.Linear query/key/value, optional masked-LM decoder head."""

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

_EMBEDDING = "embeddings.word_embeddings.weight"
# Masked-LM decoders of BertForMaskedLM / BertForPreTraining and RobertaForMaskedLM; usually
# tied to the input embedding and then not saved at all.
_LM_HEADS = ("cls.predictions.decoder.weight", "lm_head.decoder.weight")

_KEYS = ShapeKeys()


@dataclass(frozen=True)
class BertAdapter:
    name: str = "bert"

    def _prefixes(self) -> tuple[str, ...]:
        # Headed models nest the encoder under "bert." / "roberta."; accept both spellings
        # since some RoBERTa derivatives were converted from BERT code.
        return (f"{self.name}.", "bert.", "roberta.", "")

    def shape(self, config: dict) -> ModelShape:
        return shape_from_config(self.name, config, _KEYS)

    def read_layer(self, reader: TensorReader, shape: ModelShape, layer: int) -> LayerWeights:
        n, d_head = shape.n_heads, shape.d_head
        block = f"{find_prefix(reader, self._prefixes(), _EMBEDDING)}encoder.layer.{layer}."
        attention = block + "attention.self."
        return LayerWeights(
            W_Q=heads_in(reader.get(attention + "query.weight"), n, d_head),
            W_K=heads_in(reader.get(attention + "key.weight"), n, d_head),
            W_V=heads_in(reader.get(attention + "value.weight"), n, d_head),
            W_O=heads_out(reader.get(block + "attention.output.dense.weight"), n, d_head),
            b_Q=heads_bias(optional(reader, attention + "query.bias"), n, d_head),
            b_K=heads_bias(optional(reader, attention + "key.bias"), n, d_head),
            b_V=heads_bias(optional(reader, attention + "value.bias"), n, d_head),
            b_O=optional(reader, block + "attention.output.dense.bias"),
            ffn_keys=reader.get(block + "intermediate.dense.weight"),  # [d_ff, d_model]
            ffn_key_bias=optional(reader, block + "intermediate.dense.bias"),
            ffn_values=reader.get(block + "output.dense.weight").T.contiguous(),  # [d_model, d_ff] -> [d_ff, d_model]
            ffn_value_bias=optional(reader, block + "output.dense.bias"),
        )

    def input_embedding_name(self, reader: TensorReader, config: dict) -> str:
        return reader.first(*(prefix + _EMBEDDING for prefix in self._prefixes()))

    def output_embedding_name(self, reader: TensorReader, config: dict) -> str | None:
        return next((name for name in _LM_HEADS if reader.has(name)), None)
