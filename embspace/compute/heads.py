"""Head kinds: what a head's V x V matrix in embedding space is, in one place.

The CLI title line, the export, the dashboard head page and the atlas all read the same
`HeadKind` instead of re-spelling "vo"/"qk" rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch

from embspace.compute.vocab_matmul import vocab_factors
from embspace.errors import EmbspaceError
from embspace.model.embedding_space import EmbeddingSpaceModel
from embspace.model.layout import LayerWeights
from embspace.views import HEAD_VIEW_KINDS, VIEW_KINDS, ViewKind

Factors = Callable[[EmbeddingSpaceModel, LayerWeights, int], tuple[torch.Tensor, torch.Tensor]]


def _vo_factors(model: EmbeddingSpaceModel, weights: LayerWeights, head: int) -> tuple[torch.Tensor, torch.Tensor]:
    # left = Eᵀ W_V^h [V, d_head], right = W_O^h E [d_head, V] (E_out on the right: see model.E_out),
    # computed as (E_out's rows @ W_O^hᵀ)ᵀ: one GEMM with the left factor when E_out is E.
    left, right_t = vocab_factors(model.embedding_rows, weights.W_V[head], model.output_rows, weights.W_O[head].T)
    return left, right_t.T


def _qk_factors(model: EmbeddingSpaceModel, weights: LayerWeights, head: int) -> tuple[torch.Tensor, torch.Tensor]:
    # left = Eᵀ W_Q^h [V, d_head], right = W_K^hᵀ E [d_head, V]
    left, right_t = vocab_factors(model.embedding_rows, weights.W_Q[head], model.output_rows, weights.W_K[head])
    return left, right_t.T


@dataclass(frozen=True)
class HeadKind:
    """One kind of head matrix read in the vocabulary, kept as two factors (never V x V).

    Its name, title and page are the view registry's (`embspace.views.VIEW_KINDS`); here the maths."""

    view: ViewKind  # the registry's entry: name "vo"/"qk", title "W_VO"/"W_QK", page, sides
    formula: str  # the matrix, in the paper's notation
    rows: str  # what a row token is
    columns: str  # what a column token is
    factors: Factors  # (model, layer weights, head) -> (left [V, d_head], right [d_head, V])

    @property
    def name(self) -> str:
        return self.view.name

    @property
    def title(self) -> str:
        return self.view.title

    def header(self, layer: int, head: int) -> str:
        """One title line, e.g. for the CLI: 'W_VO layer 3, head 1: rows = ..., columns = ...'."""
        return f"{self.title} layer {layer}, head {head}: rows = {self.rows}, columns = {self.columns}"


# (formula, row token, column token, factors) of each head view kind in the registry.
_HEAD_MATHS = {
    "vo": ("Eᵀ W_V^h W_O^h E", "attended-to token", "promoted output token", _vo_factors),
    "qk": ("Eᵀ W_Q^h W_K^hᵀ E", "query token", "key token", _qk_factors),
}
HEAD_KINDS: Mapping[str, HeadKind] = MappingProxyType(
    {name: HeadKind(VIEW_KINDS[name], *_HEAD_MATHS[name]) for name in HEAD_VIEW_KINDS}
)


def head_kind(kind: str | HeadKind) -> HeadKind:
    """The HeadKind for a name ("vo"/"qk") or the object itself; a clear error otherwise."""
    if isinstance(kind, HeadKind):
        return kind
    try:
        return HEAD_KINDS[kind]
    except (KeyError, TypeError):
        raise EmbspaceError(f"kind must be one of {', '.join(HEAD_KINDS)}, not {kind!r}.") from None
