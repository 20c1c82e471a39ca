"""The `Adapter` protocol, config.json reading and the reshaping helpers every architecture shares.

Two weight conventions occur in checkpoints: `nn.Linear` stores `[out, in]` (y = x @ W.T) and
GPT-2's `Conv1D` stores `[in, out]` (y = x @ W). The helpers below take the `[out, in]` form;
Conv1D weights are transposed first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from embspace.errors import EmbspaceError
from embspace.model.checkpoint import TensorReader
from embspace.model.layout import LayerWeights, ModelShape

_MISSING = object()


class UnsupportedArchitecture(EmbspaceError, ValueError):
    """config.json names an architecture embspace has no adapter for."""


class Adapter(Protocol):
    """Maps one architecture's checkpoint names and layouts onto `LayerWeights`."""

    name: str

    def shape(self, config: dict) -> ModelShape: ...

    def read_layer(self, reader: TensorReader, shape: ModelShape, layer: int) -> LayerWeights: ...

    def input_embedding_name(self, reader: TensorReader, config: dict) -> str: ...

    def output_embedding_name(self, reader: TensorReader, config: dict) -> str | None: ...


def config_value(config: dict, *keys: str, default: Any = _MISSING) -> Any:
    """The first of `keys` set (not None) in `config`, else `default`."""
    for key in keys:
        if config.get(key) is not None:
            return config[key]
    if default is _MISSING:
        raise UnsupportedArchitecture(
            f"config.json of this {config.get('model_type', 'unknown')} model has none of "
            f"{list(keys)}; the file is incomplete or from an incompatible variant."
        )
    return default


@dataclass(frozen=True)
class ShapeKeys:
    """config.json key names of one architecture, first set wins; `d_ff_default` is a multiple of d_model."""

    d_model: tuple[str, ...] = ("hidden_size",)
    n_heads: tuple[str, ...] = ("num_attention_heads",)
    n_layers: tuple[str, ...] = ("num_hidden_layers",)
    d_ff: tuple[str, ...] = ("intermediate_size",)
    d_ff_default: int | None = None  # None: d_ff is required
    n_kv_heads: tuple[str, ...] = ()  # empty: one K/V head per query head
    head_dim: tuple[str, ...] = ()  # empty: d_model // n_heads


def shape_from_config(architecture: str, config: dict, keys: ShapeKeys, *, gated_mlp: bool = False) -> ModelShape:
    """The checked `ModelShape` of a parsed config.json, read through one architecture's `keys`."""
    d_model = config_value(config, *keys.d_model)
    n_heads = config_value(config, *keys.n_heads)
    d_ff_default = _MISSING if keys.d_ff_default is None else keys.d_ff_default * d_model
    return check_heads(
        ModelShape(
            architecture=architecture,
            n_layers=config_value(config, *keys.n_layers),
            n_heads=n_heads,
            n_kv_heads=config_value(config, *keys.n_kv_heads, default=n_heads),
            d_model=d_model,
            # Mistral-Nemo, Qwen3 and others decouple head_dim from d_model / n_heads.
            d_head=config_value(config, *keys.head_dim, default=d_model // n_heads),
            d_ff=config_value(config, *keys.d_ff, default=d_ff_default),
            vocab_size=config_value(config, "vocab_size"),
            gated_mlp=gated_mlp,
        )
    )


def check_heads(shape: ModelShape) -> ModelShape:
    """`shape` after checking its head counts divide evenly (GQA groups need it)."""
    if shape.n_heads % shape.n_kv_heads:
        raise UnsupportedArchitecture(
            f"{shape.architecture}: {shape.n_heads} attention heads cannot be split into "
            f"{shape.n_kv_heads} key/value groups; config.json is inconsistent."
        )
    return shape


def find_prefix(reader: TensorReader, prefixes: tuple[str, ...], probe: str) -> str:
    """The prefix p (e.g. "model." or "") for which `p + probe` names a checkpoint tensor.

    Headed models (`...ForCausalLM`) nest the base model under a prefix; a bare base model
    (`...Model`) saves without one.
    """
    return reader.first(*(prefix + probe for prefix in prefixes))[: -len(probe)]


def optional(reader: TensorReader, name: str) -> torch.Tensor | None:
    """Tensor `name` if the checkpoint has it (biases are often absent)."""
    return reader.get(name) if reader.has(name) else None


def heads_in(weight: torch.Tensor, n_heads: int, d_head: int) -> torch.Tensor:
    """nn.Linear projection `[n_heads * d_head, d_model]` -> per-head `[n_heads, d_model, d_head]`.

    Output feature h * d_head + e belongs to head h, so W[h][:, e] = weight[h * d_head + e].
    """
    d_model = weight.shape[1]
    return weight.reshape(n_heads, d_head, d_model).transpose(1, 2).contiguous()


def heads_bias(bias: torch.Tensor | None, n_heads: int, d_head: int) -> torch.Tensor | None:
    """Projection bias `[n_heads * d_head]` -> `[n_heads, d_head]`."""
    return None if bias is None else bias.reshape(n_heads, d_head).contiguous()


def heads_out(weight: torch.Tensor, n_heads: int, d_head: int) -> torch.Tensor:
    """nn.Linear output projection `[d_model, n_heads * d_head]` -> `[n_heads, d_head, d_model]`."""
    d_model = weight.shape[0]
    return weight.T.reshape(n_heads, d_head, d_model).contiguous()


def expand_groups(tensor: torch.Tensor | None, n_heads: int) -> torch.Tensor | None:
    """Grouped-query K/V `[n_kv_heads, ...]` -> `[n_heads, ...]`: head h uses group h // (n_heads // n_kv_heads)."""
    if tensor is None or tensor.shape[0] == n_heads:
        return tensor
    return tensor.repeat_interleave(n_heads // tensor.shape[0], dim=0)


def split_fused(
    tensor: torch.Tensor, n_heads: int, d_head: int, *, per_head: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fused q/k/v projection `[3 * n_heads * d_head, ...]` -> q, k, v, each `[n_heads * d_head, ...]`.

    per_head=False (GPT-2 `c_attn`): rows are q | k | v, i.e. `[3, n_heads, d_head, ...]`.
    per_head=True (GPT-NeoX `query_key_value`): rows are head-major, `[n_heads, 3, d_head, ...]`;
    cutting those into thirds would mix heads. Works alike on weights `[.., d_model]` and biases.
    """
    if per_head:
        parts = tensor.unflatten(0, (n_heads, 3, d_head)).transpose(0, 1).flatten(1, 2)
    else:
        parts = tensor.unflatten(0, (3, n_heads * d_head))
    q, k, v = parts.unbind(0)
    return q, k, v
