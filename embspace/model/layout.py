"""The one canonical per-head layout every architecture adapter maps its checkpoint to."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ModelShape:
    """Sizes read from config.json alone (no weights needed)."""

    architecture: str  # adapter name, e.g. "gpt2", "bert", "llama"
    n_layers: int
    n_heads: int
    n_kv_heads: int  # == n_heads unless grouped-query attention
    d_model: int
    d_head: int
    d_ff: int
    vocab_size: int  # rows of the embedding matrix (may exceed the tokenizer's size)
    gated_mlp: bool = False  # Llama-style gate/up/down MLP


@dataclass(frozen=True)
class LayerWeights:
    """One layer's parameters, float32 on CPU, in the canonical layout.

    Attention (GQA already expanded: head h uses key/value group h // (n_heads // n_kv_heads)):
      W_Q, W_K, W_V: [n_heads, d_model, d_head]   q_h = x @ W_Q[h] (+ b_Q[h])
      W_O:           [n_heads, d_head, d_model]   out = sum_h z_h @ W_O[h] (+ b_O)
    FFN:
      ffn_keys:   [d_ff, d_model]  neuron i's input weights; pre-activation = x @ ffn_keys.T (+ ffn_key_bias)
      ffn_values: [d_ff, d_model]  neuron i's output weights; out = act @ ffn_values (+ ffn_value_bias)
      ffn_up:     [d_ff, d_model]  gated MLPs only: act = f(x @ ffn_keys.T) * (x @ ffn_up.T)
    """

    W_Q: torch.Tensor
    W_K: torch.Tensor
    W_V: torch.Tensor
    W_O: torch.Tensor
    ffn_keys: torch.Tensor
    ffn_values: torch.Tensor
    b_Q: torch.Tensor | None = None  # [n_heads, d_head]
    b_K: torch.Tensor | None = None  # [n_heads, d_head]
    b_V: torch.Tensor | None = None  # [n_heads, d_head]
    b_O: torch.Tensor | None = None  # [d_model]
    ffn_key_bias: torch.Tensor | None = None  # [d_ff]
    ffn_value_bias: torch.Tensor | None = None  # [d_model]
    ffn_up: torch.Tensor | None = None  # [d_ff, d_model]
    ffn_up_bias: torch.Tensor | None = None  # [d_ff]
