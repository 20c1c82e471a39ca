"""One unit's change read in the base model's vocabulary: a neuron's δ · E, a head's Eᵀ ΔW E top pairs."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch

from embspace.compare.diff import DIFF_KINDS, NEURON_TENSORS, circuit_factors, factored_change
from embspace.compare.refusals import check_same_shape, check_same_vocabulary
from embspace.compute.projections import PairTable, TokenScores, pair_table, top_tokens
from embspace.compute.topk import top_pairs
from embspace.compute.vocab_matmul import vocab_factors
from embspace.errors import EmbspaceError
from embspace.model.embedding_space import EmbeddingSpaceModel, check_index
from embspace.vocab.filters import PairFilter, VocabFilter


@dataclass(frozen=True)
class UnitDiff:
    """What a unit's change promotes (`plus`: top-k of the difference) and demotes (`minus`: top-k of its
    negation, scores of the negation); TokenScores for neurons, PairTable for heads."""

    kind: str
    layer: int
    index: int
    plus: TokenScores | PairTable
    minus: TokenScores | PairTable

    def to_dict(self) -> dict:
        return {"plus": self.plus.to_records(), "minus": self.minus.to_records()}


def unit_diff(
    base: EmbeddingSpaceModel,
    tuned: EmbeddingSpaceModel,
    kind: str,
    layer: int,
    index: int,
    k: int = 30,
    vocab_filter: VocabFilter | None = None,
    pair_filter: PairFilter | None = None,
) -> UnitDiff:
    """The change of one unit (kind in DIFF_KINDS) read through the base model's E, under the filters."""
    if kind not in DIFF_KINDS:
        raise EmbspaceError(f"unit kind must be one of {', '.join(DIFF_KINDS)}, not {kind!r}.")
    check_same_vocabulary(base, tuned)
    check_same_shape(base, tuned)
    check_index("layer", layer, base.shape.n_layers)
    if kind in NEURON_TENSORS:
        return _neuron_diff(base, tuned, kind, layer, index, k, vocab_filter)
    check_index("head", index, base.shape.n_heads)
    if _head_unchanged(base, tuned, kind, layer, index):
        # Every pair scores 0: nothing is promoted or demoted (and no bound could prune the exact search).
        empty = pair_table(base.vocab, kind, layer, index, EMPTY_PAIRS)
        return UnitDiff(kind, layer, index, empty, empty)
    left, right = head_diff_factors(base, tuned, kind, layer, index)
    plus, minus = (
        _pair_table(base, kind, layer, index, left, sign * right, k, vocab_filter, pair_filter) for sign in (1, -1)
    )
    return UnitDiff(kind, layer, index, plus, minus)


EMPTY_PAIRS = SimpleNamespace(
    row_ids=np.zeros(0, np.int64), col_ids=np.zeros(0, np.int64), scores=np.zeros(0, np.float32)
)


def _head_unchanged(base, tuned, kind: str, layer: int, head: int) -> bool:
    """Whether the head's circuit is the same in both models (‖ΔW‖_F = 0, from the factored change)."""
    tuned_factors = (x[head : head + 1] for x in circuit_factors(tuned.layer(layer), kind))
    base_factors = (x[head : head + 1] for x in circuit_factors(base.layer(layer), kind))
    delta, _ = factored_change(*tuned_factors, *base_factors)
    return float(delta[0]) == 0.0


def neuron_delta(base: EmbeddingSpaceModel, tuned: EmbeddingSpaceModel, kind: str, layer: int, neuron: int):
    """δ = F - B of one neuron's key ("neuron-K") or value ("neuron-V") vector: [d_model] float32."""
    name = NEURON_TENSORS[kind]
    base_rows, tuned_rows = getattr(base.layer(layer), name), getattr(tuned.layer(layer), name)
    check_index("neuron", neuron, base_rows.shape[0])
    return tuned_rows[neuron] - base_rows[neuron]


def _neuron_diff(base, tuned, kind: str, layer: int, neuron: int, k: int, vocab_filter) -> UnitDiff:
    delta = neuron_delta(base, tuned, kind, layer, neuron)
    # Values are written to the residual stream: read through E_out, as neuron_top_tokens does.
    out = kind == "neuron-V"
    plus = top_tokens(base, delta, k, vocab_filter, output_side=out)
    minus = top_tokens(base, -delta, k, vocab_filter, output_side=out)
    return UnitDiff(kind, layer, neuron, plus, minus)


def head_diff_factors(
    base: EmbeddingSpaceModel, tuned: EmbeddingSpaceModel, kind: str, layer: int, head: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors of Eᵀ (L_F R_F - L_B R_B) E_out, of rank <= 2 d_head: left [V, 2 d_head], right [2 d_head, V].

    The difference is the product [L_F, L_B] [R_F; -R_B], so the exact tile search of a head serves it."""
    left_f, right_f = (x[head] for x in circuit_factors(tuned.layer(layer), kind))  # [d, r], [r, d]
    left_b, right_b = (x[head] for x in circuit_factors(base.layer(layer), kind))
    stacked_left = torch.cat([left_f, left_b], dim=1)  # [d, 2r]
    stacked_right = torch.cat([right_f, -right_b], dim=0)  # [2r, d]
    left, right_t = vocab_factors(base.embedding_rows, stacked_left, base.output_rows, stacked_right.T)
    return left, right_t.T


def _pair_table(base, kind, layer, head, left, right, k, vocab_filter, pair_filter) -> PairTable:
    mask = base.vocab_mask(vocab_filter)
    pair_filter = pair_filter or PairFilter()
    found = top_pairs(
        left,
        right,
        k,
        row_mask=mask,
        col_mask=mask,
        same_groups=pair_filter.same_groups(base.vocab),
        exclude=pair_filter.near_identical(base.vocab),
        # fp32 tiles: the stacked factors are large and their product small (F - B cancels), so bf16's
        # error bound, relative to the factors' norms, passes nearly every entry on to be rescored
        # (measured on MiniLM: minutes with bf16 screening, about a second in fp32).
        screen=False,
    )
    return pair_table(base.vocab, kind, layer, head, found)
