"""Which layers of two models correspond: the correlation of their parameters' projections on a shared
vocabulary, kernelised (no V-long vector is built), and the one-to-one layer matching.

For rows x (of A, [d_A]) and y (of B, [d_B]) projected to x E_A and y E_B ([V] each), Pearson's correlation
across the vocabulary is x C_AB yᵀ / (σ_x σ_y) with the centred kernel C_AB = E_A E_Bᵀ / V - m_A m_Bᵀ
([d_A, d_B], m the mean of E's columns) and σ_x² = x C_AA xᵀ.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import torch

from embspace.compare.refusals import check_same_vocabulary
from embspace.errors import EmbspaceError
from embspace.model.embedding_space import EmbeddingSpaceModel, check_index
from embspace.model.layout import LayerWeights

GRAM_BLOCK = 8192  # vocabulary rows converted to float64 at a time
CORR_BLOCK = 2048  # rows of A correlated with all rows of B at a time


def _heads_as_rows(tensor: torch.Tensor) -> torch.Tensor:
    """[H, d, d_head] -> [H * d_head, d]: each head's columns as residual-stream directions."""
    return tensor.transpose(1, 2).reshape(-1, tensor.shape[1])


# part -> (its rows [n, d_model], whether it writes to the residual stream: read through E_out)
PARTS: Mapping[str, tuple[Callable[[LayerWeights], torch.Tensor], bool]] = MappingProxyType(
    {
        "ffn-v": (lambda w: w.ffn_values, True),
        "ffn-k": (lambda w: w.ffn_keys, False),
        "wv": (lambda w: _heads_as_rows(w.W_V), False),
        "wo": (lambda w: w.W_O.reshape(-1, w.W_O.shape[-1]), True),
        "wq": (lambda w: _heads_as_rows(w.W_Q), False),
        "wk": (lambda w: _heads_as_rows(w.W_K), False),
    }
)


@dataclass(frozen=True)
class Alignment:
    """Mean |corr| of every layer pair ([layers of A, layers of B]) and the best one-to-one matching."""

    part: str
    similarity: np.ndarray  # float64 [n_layers_A, n_layers_B]
    matching: tuple[tuple[int, int], ...]  # (layer of A, layer of B), by layer of A

    def to_dict(self) -> dict:
        return {
            "part": self.part,
            "similarity": [[round(float(s), 6) for s in row] for row in self.similarity],
            "matching": [[a, b] for a, b in self.matching],
        }


def centred_kernel(rows_a: torch.Tensor, rows_b: torch.Tensor) -> torch.Tensor:
    """C_AB = E_A E_Bᵀ / V - m_A m_Bᵀ: float64 [d_A, d_B]; rows_*: [V, d] (token t's vector in row t),
    accumulated over blocks of the vocabulary."""
    vocab = rows_a.shape[0]
    kernel = torch.zeros(rows_a.shape[1], rows_b.shape[1], dtype=torch.float64)
    sum_a = torch.zeros(rows_a.shape[1], dtype=torch.float64)
    sum_b = torch.zeros(rows_b.shape[1], dtype=torch.float64)
    for start in range(0, vocab, GRAM_BLOCK):
        block_a = rows_a[start : start + GRAM_BLOCK].to(torch.float64)
        block_b = rows_b[start : start + GRAM_BLOCK].to(torch.float64)
        kernel += block_a.T @ block_b
        sum_a += block_a.sum(dim=0)
        sum_b += block_b.sum(dim=0)
    return kernel / vocab - torch.outer(sum_a / vocab, sum_b / vocab)


def projection_std(rows: torch.Tensor, kernel_self: torch.Tensor) -> torch.Tensor:
    """σ of each row's projection across the vocabulary: sqrt(x C xᵀ), float64 [n] (rows [n, d])."""
    x = rows.to(torch.float64)
    return ((x @ kernel_self) * x).sum(dim=1).clamp_min(0).sqrt()


def correlations(rows_a, rows_b, kernel_ab, kernel_aa, kernel_bb) -> torch.Tensor:
    """Correlation of every row of A with every row of B across the vocabulary: float64 [n_a, n_b]
    (rows of zero variance correlate 0). For tests and small shapes; `mean_abs_correlation` is blocked."""
    return _scaled(rows_a, kernel_ab, kernel_aa) @ _scaled(rows_b, None, kernel_bb).T


def _scaled(rows: torch.Tensor, kernel: torch.Tensor | None, kernel_self: torch.Tensor) -> torch.Tensor:
    """rows / σ (times the cross kernel when given): float64 [n, d]; rows with σ = 0 become 0."""
    std = projection_std(rows, kernel_self)
    x = rows.to(torch.float64) / torch.where(std > 0, std, torch.inf)[:, None]
    return x if kernel is None else x @ kernel


def mean_abs_correlation(left_scaled: torch.Tensor, right_scaled: torch.Tensor) -> float:
    """Mean |corr| over all (row of A, row of B) pairs, in blocks of A's rows (float64 [n_a, d_B], [n_b, d_B])."""
    total = 0.0
    for start in range(0, left_scaled.shape[0], CORR_BLOCK):
        total += float((left_scaled[start : start + CORR_BLOCK] @ right_scaled.T).abs().sum())
    return total / (left_scaled.shape[0] * right_scaled.shape[0])


def align_layers(
    a: EmbeddingSpaceModel,
    b: EmbeddingSpaceModel,
    part: str = "ffn-v",
    progress: Callable[[int, int], None] | None = None,
) -> Alignment:
    """Mean |corr| of `part`'s rows for every (layer of A, layer of B), and the Hungarian matching
    maximising the total. Refuses (ModelsDiffer) models with different vocabularies; sizes may differ.

    Layers of B are read once per layer of A (bounded memory: each model holds at most its layer cache).
    progress(done layers of A, total)."""
    if part not in PARTS:
        raise EmbspaceError(f"part must be one of {', '.join(PARTS)}, not {part!r}.")
    check_same_vocabulary(a, b)
    rows_of, writes = PARTS[part]
    rows_a_e, rows_b_e = (a.output_rows, b.output_rows) if writes else (a.embedding_rows, b.embedding_rows)
    kernel_ab = centred_kernel(rows_a_e, rows_b_e)
    kernel_aa, kernel_bb = centred_kernel(rows_a_e, rows_a_e), centred_kernel(rows_b_e, rows_b_e)
    similarity = np.zeros((a.shape.n_layers, b.shape.n_layers))
    for layer_a in range(a.shape.n_layers):
        left = _scaled(rows_of(a.layer(layer_a)), kernel_ab, kernel_aa)
        for layer_b in range(b.shape.n_layers):
            right = _scaled(rows_of(b.layer(layer_b)), None, kernel_bb)
            similarity[layer_a, layer_b] = mean_abs_correlation(left, right)
        if progress:
            progress(layer_a + 1, a.shape.n_layers)
    return Alignment(part, similarity, best_matching(similarity))


@dataclass(frozen=True)
class CorrelatedRow:
    """One row of B and its correlation with the chosen row of A (a head's: mean |corr| of its rows)."""

    layer: int
    index: int  # neuron (ffn-v, ffn-k) or head (wv, wo, wq, wk)
    corr: float

    def to_record(self) -> dict:
        return {"layer": self.layer, "index": self.index, "corr": round(self.corr, 6)}


def unit_rows(rows: torch.Tensor, part: str, index: int, d_head: int) -> torch.Tensor:
    """The rows of one unit of a part's rows [n, d]: neuron `index` ([1, d]) or head `index` ([d_head, d])."""
    size = 1 if part.startswith("ffn") else d_head
    check_index("neuron" if size == 1 else "head", index, rows.shape[0] // size)
    return rows[index * size : (index + 1) * size]


def unit_correlations(left_scaled: torch.Tensor, right_scaled: torch.Tensor, size: int) -> torch.Tensor:
    """Correlation of one unit of A with every unit of B of one layer: float64 [n_units_B].

    left_scaled [size, d_B] (one unit's rows, scaled, times C_AB), right_scaled [n_units_B * size, d_B];
    a neuron (size 1) keeps its sign, a head (size d_head) is the mean |corr| of its rows with each head's."""
    corr = left_scaled @ right_scaled.T  # [size, n_units_B * size]
    if size == 1:
        return corr[0]
    return corr.abs().reshape(size, -1, size).mean(dim=(0, 2))


def most_correlated_rows(
    a: EmbeddingSpaceModel, b: EmbeddingSpaceModel, part: str, layer: int, index: int, top: int = 10
) -> list[CorrelatedRow]:
    """The `top` units of B (any layer) most correlated with unit `index` of A's layer `layer`, by |corr|.

    A unit is a neuron for ffn-v/ffn-k (signed Pearson correlation of the two rows' projections) or a head
    for wv/wo/wq/wk (mean |corr| of its d_head rows with the other head's, as the layer similarity averages).
    Refuses different vocabularies; B is read layer by layer."""
    if part not in PARTS:
        raise EmbspaceError(f"part must be one of {', '.join(PARTS)}, not {part!r}.")
    if top < 1:
        raise EmbspaceError(f"top must be at least 1, not {top}.")
    check_same_vocabulary(a, b)
    check_index("layer", layer, a.shape.n_layers)
    rows_of, writes = PARTS[part]
    rows_a_e, rows_b_e = (a.output_rows, b.output_rows) if writes else (a.embedding_rows, b.embedding_rows)
    kernel_ab = centred_kernel(rows_a_e, rows_b_e)
    chosen = unit_rows(rows_of(a.layer(layer)), part, index, a.shape.d_head)
    left = _scaled(chosen, kernel_ab, centred_kernel(rows_a_e, rows_a_e))
    kernel_bb = centred_kernel(rows_b_e, rows_b_e)
    found = []
    for layer_b in range(b.shape.n_layers):
        right = _scaled(rows_of(b.layer(layer_b)), None, kernel_bb)
        corr = unit_correlations(left, right, 1 if part.startswith("ffn") else b.shape.d_head).tolist()
        found += [CorrelatedRow(layer_b, i, c) for i, c in enumerate(corr)]
    return sorted(found, key=lambda row: (-abs(row.corr), row.layer, row.index))[:top]


def best_matching(similarity: np.ndarray) -> tuple[tuple[int, int], ...]:
    """The one-to-one (layer of A, layer of B) pairs of largest total similarity (Hungarian assignment),
    min(n_A, n_B) of them, by layer of A."""
    # Imported here: scipy.optimize costs every CLI command about 0.33 s (the CLI imports this module).
    from scipy.optimize import linear_sum_assignment

    matched_a, matched_b = linear_sum_assignment(similarity, maximize=True)
    return tuple((int(x), int(y)) for x, y in zip(matched_a, matched_b, strict=True))
