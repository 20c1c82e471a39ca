"""How much fine-tuning changed every unit: FFN neurons' key and value vectors, heads' W_VO and W_QK circuits.

Both models are read layer by layer (each model keeps at most its layer cache in memory). Circuits are
compared factored: ‖A_F B_F - A_B B_B‖_F from d_head x d_head Gram matrices, never a d x d product.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from embspace.compare.refusals import check_same_shape, check_same_vocabulary
from embspace.model.embedding_space import EmbeddingSpaceModel
from embspace.model.layout import LayerWeights

DIFF_KINDS = ("neuron-K", "neuron-V", "vo", "qk")
NEURON_TENSORS = {"neuron-K": "ffn_keys", "neuron-V": "ffn_values"}


@dataclass(frozen=True)
class UnitChange:
    """One unit's change: ‖Δ‖_F / ‖unit in the base‖_F (`change`) and the base's norm."""

    kind: str  # one of DIFF_KINDS
    layer: int
    index: int  # neuron or head
    change: float
    base_norm: float

    def to_record(self) -> dict:
        return {
            "kind": self.kind,
            "layer": self.layer,
            "index": self.index,
            "change": self.change,
            "base_norm": self.base_norm,
        }


def circuit_factors(weights: LayerWeights, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A head circuit's factors for every head: vo -> (W_V [H, d, d_head], W_O [H, d_head, d]),
    qk -> (W_Q [H, d, d_head], W_Kᵀ [H, d_head, d]); the circuit of head h is left[h] @ right[h]."""
    if kind == "vo":
        return weights.W_V, weights.W_O
    return weights.W_Q, weights.W_K.transpose(1, 2)


def factored_change(
    left_f: torch.Tensor, right_f: torch.Tensor, left_b: torch.Tensor, right_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(‖L_F R_F - L_B R_B‖_F, ‖L_B R_B‖_F) per head, float64 [H] each.

    left_*: [H, d, r], right_*: [H, r, d]. By ‖AB - CD‖² = tr((AB)ᵀAB) - 2 tr((AB)ᵀCD) + tr((CD)ᵀCD)
    and tr((AB)ᵀCD) = tr((AᵀC)(DBᵀ)), every term is a trace of r x r products (float64: the difference
    of near-equal terms must keep the small change of a fine-tune)."""
    lf, rf, lb, rb = (x.to(torch.float64) for x in (left_f, right_f, left_b, right_b))

    def inner(a, b, c, d):  # tr((AB)ᵀ CD) per head
        return ((a.transpose(1, 2) @ c) * (b @ d.transpose(1, 2))).sum(dim=(1, 2))  # tr(XY) = sum(X * Yᵀ)

    ff, fb, bb = inner(lf, rf, lf, rf), inner(lf, rf, lb, rb), inner(lb, rb, lb, rb)
    return (ff - 2 * fb + bb).clamp_min(0).sqrt(), bb.clamp_min(0).sqrt()


def layer_changes(base: LayerWeights, tuned: LayerWeights, layer: int) -> list[UnitChange]:
    """Every unit of one layer: neurons' K and V vectors, then heads' vo and qk circuits."""
    found = []
    for kind, name in NEURON_TENSORS.items():
        b, f = getattr(base, name), getattr(tuned, name)  # [d_ff, d_model]
        found += _changes(kind, layer, (f - b).norm(dim=1), b.norm(dim=1))
    for kind in ("vo", "qk"):
        delta, norm = factored_change(*circuit_factors(tuned, kind), *circuit_factors(base, kind))
        found += _changes(kind, layer, delta, norm)
    return found


def _changes(kind: str, layer: int, delta: torch.Tensor, norm: torch.Tensor) -> list[UnitChange]:
    """UnitChange per index from ‖Δ‖ [n] and ‖base‖ [n]; a unit zero in the base changes by inf if it moved."""
    delta, norm = delta.double().tolist(), norm.double().tolist()
    return [
        UnitChange(kind, layer, i, d / n if n > 0 else (float("inf") if d > 0 else 0.0), n)
        for i, (d, n) in enumerate(zip(delta, norm, strict=True))
    ]


def diff_units(
    base: EmbeddingSpaceModel,
    tuned: EmbeddingSpaceModel,
    progress: Callable[[int, int], None] | None = None,
) -> list[UnitChange]:
    """Every unit's change from `base` to `tuned`, most changed first (ties: kind, layer, index).

    Refuses (ModelsDiffer) different vocabularies or shapes before reading a layer.
    progress(done layers, total layers) after each layer."""
    check_same_vocabulary(base, tuned)
    check_same_shape(base, tuned)
    found: list[UnitChange] = []
    n_layers = base.shape.n_layers
    for layer in range(n_layers):
        found += layer_changes(base.layer(layer), tuned.layer(layer), layer)
        if progress:
            progress(layer + 1, n_layers)
    order = {kind: i for i, kind in enumerate(DIFF_KINDS)}
    return sorted(found, key=lambda u: (-u.change, order[u.kind], u.layer, u.index))
