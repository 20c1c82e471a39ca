"""The paper's projections: FFN neurons, W_VO / W_QK head pairs, and per-head copying scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from embspace.compute.heads import HeadKind, head_kind
from embspace.compute.topk import top_pairs
from embspace.model.embedding_space import EmbeddingSpaceModel, check_index
from embspace.vocab.filters import PairFilter, VocabFilter

# Display order of a neuron's vectors; gated MLPs add "U", "-U" (see neuron_vector_names).
NEURON_VECTOR_NAMES = ("K", "V", "-K", "-V")
GATED_VECTOR_NAMES = ("U", "-U")

GRAM_BLOCK_ROWS = 8192  # rows of E converted to float64 at a time for E Eᵀ


@dataclass(frozen=True)
class TokenScores:
    """Top tokens of one projected vector, best first."""

    token_ids: np.ndarray  # int64 [k]
    tokens: tuple[str, ...]  # display strings
    scores: np.ndarray  # float32 [k]

    def to_records(self) -> list[dict]:
        return [
            {"token_id": int(i), "token": t, "score": float(s)}
            for i, t, s in zip(self.token_ids, self.tokens, self.scores, strict=True)
        ]


@dataclass(frozen=True)
class PairTable:
    """Top (row token, column token) pairs of one head's W_VO or W_QK, best first."""

    kind: str  # "vo" or "qk"
    layer: int
    head: int
    row_ids: np.ndarray  # int64 [k]
    col_ids: np.ndarray  # int64 [k]
    row_tokens: tuple[str, ...]
    col_tokens: tuple[str, ...]
    scores: np.ndarray  # float32 [k]

    def to_records(self) -> list[dict]:
        return [
            {"row_id": int(r), "col_id": int(c), "row_token": rt, "col_token": ct, "score": float(s)}
            for r, c, rt, ct, s in zip(
                self.row_ids, self.col_ids, self.row_tokens, self.col_tokens, self.scores, strict=True
            )
        ]


def neuron_vector_names(gated: bool) -> tuple[str, ...]:
    """Names of a neuron's vectors in display order: K, V, -K, -V, then U, -U for gated MLPs."""
    return NEURON_VECTOR_NAMES + (GATED_VECTOR_NAMES if gated else ())


def neuron_vectors(model: EmbeddingSpaceModel, layer: int, neuron: int) -> dict[str, torch.Tensor]:
    """Neuron `neuron`'s d_model vectors, keyed in display order (neuron_vector_names): "K" (input
    weights), "V" (output weights), their negations, and for gated MLPs "U" (up_proj row) and "-U"."""
    weights = model.layer(layer)
    check_index("neuron", neuron, weights.ffn_keys.shape[0])
    # Copies: the cached layer is shared by every caller and must not be changed through a view.
    base = {"K": weights.ffn_keys[neuron].clone(), "V": weights.ffn_values[neuron].clone()}
    if weights.ffn_up is not None:
        base["U"] = weights.ffn_up[neuron].clone()
    vectors = {**base, **{f"-{name}": -vec for name, vec in base.items()}}
    return {name: vectors[name] for name in neuron_vector_names(weights.ffn_up is not None)}


def top_tokens(
    model: EmbeddingSpaceModel,
    vector: torch.Tensor,
    k: int,
    vocab_filter: VocabFilter | None = None,
    negative: bool = False,
    *,
    output_side: bool = False,
) -> TokenScores:
    """Top-k tokens of vector · E (vector: [d_model]) among the tokens the filter keeps.

    negative: the k most negative scores instead (reported with their real, negative values).
    output_side: read through model.E_out (the LM head under "input-output"; E otherwise).
    """
    scores = vector.to(torch.float32) @ (model.E_out if output_side else model.E)  # [vocab]
    sign = -1.0 if negative else 1.0
    mask = torch.tensor(model.vocab_mask(vocab_filter))  # a copy: the cached mask is read-only
    ranked = (sign * scores).masked_fill(~mask, float("-inf"))
    k = min(k, int(mask.sum()))
    _, ids = torch.topk(ranked, k)
    ids_np = ids.numpy().astype(np.int64)
    return TokenScores(
        ids_np, tuple(model.vocab.display(int(i)) for i in ids_np), scores[ids].numpy().astype(np.float32)
    )


def neuron_top_tokens(
    model: EmbeddingSpaceModel,
    layer: int,
    neuron: int,
    k: int = 30,
    vocab_filter: VocabFilter | None = None,
    negative: bool = False,
) -> dict[str, TokenScores]:
    """Top tokens of K·E, V·E, -K·E, -V·E (and U·E, -U·E for gated MLPs) for one FFN neuron.

    Under "input-output" K and U (read from the residual stream) go through the input embedding and
    V (written to it) through the LM head."""
    return {
        name: top_tokens(model, vec, k, vocab_filter, negative, output_side=name.endswith("V"))
        for name, vec in neuron_vectors(model, layer, neuron).items()
    }


def head_factors(
    model: EmbeddingSpaceModel, kind: str | HeadKind, layer: int, head: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two factors of a head's V x V matrix, never multiplied out (see embspace.compute.heads).

    vo: W_VO = Eᵀ W_V^h W_O^h E  -> left = Eᵀ W_V^h [V, d_head], right = W_O^h E [d_head, V]
    qk: W_QK = Eᵀ W_Q^h W_K^hᵀ E -> left = Eᵀ W_Q^h [V, d_head], right = W_K^hᵀ E [d_head, V]
    """
    spec = head_kind(kind)
    weights = model.layer(layer)
    check_index("head", head, model.shape.n_heads)
    return spec.factors(model, weights, head)


def head_top_pairs(
    model: EmbeddingSpaceModel,
    kind: str | HeadKind,
    layer: int,
    head: int,
    k: int = 50,
    vocab_filter: VocabFilter | None = None,
    pair_filter: PairFilter | None = None,
    negative: bool = False,
    *,
    row_token: int | None = None,
    col_token: int | None = None,
) -> PairTable:
    """Exact top-k (row token, column token) pairs of W_VO or W_QK under the filters.

    kind: "vo"/"qk" or a HeadKind; the table's `kind` is always the name.
    row_token / col_token: only pairs with this token id as the row (column): its best partners,
    the partners under the filters, the token itself whatever they say (it was asked for by name).
    """
    kind = head_kind(kind).name
    left, right = head_factors(model, kind, layer, head)
    mask = model.vocab_mask(vocab_filter)
    pair_filter = pair_filter or PairFilter()
    found = top_pairs(
        left,
        right,
        k,
        row_mask=mask if row_token is None else _only(row_token, mask.shape[0]),
        col_mask=mask if col_token is None else _only(col_token, mask.shape[0]),
        same_groups=pair_filter.same_groups(model.vocab),
        exclude=pair_filter.near_identical(model.vocab),
        negative=negative,
    )
    return pair_table(model.vocab, kind, layer, head, found)


def _only(token: int, vocab_size: int) -> np.ndarray:
    """Boolean [vocab] mask holding one token."""
    check_index("token", token, vocab_size)
    mask = np.zeros(vocab_size, dtype=bool)
    mask[token] = True
    return mask


def embedding_gram(model: EmbeddingSpaceModel) -> torch.Tensor:
    """E_out Eᵀ: [d_model, d_model] float64 (E Eᵀ unless "input-output"), the only place the
    vocabulary enters the copying score.

    Accumulated over blocks of rows: a float64 copy of the whole E would double its memory."""
    rows, out_rows = model.embedding_rows, model.output_rows  # [V, d_model] float32 each
    gram = torch.zeros(rows.shape[1], rows.shape[1], dtype=torch.float64)
    for start in range(0, rows.shape[0], GRAM_BLOCK_ROWS):
        block = rows[start : start + GRAM_BLOCK_ROWS].to(torch.float64)
        out_block = block if out_rows is rows else out_rows[start : start + GRAM_BLOCK_ROWS].to(torch.float64)
        gram += out_block.T @ block
    return gram


def copying_score(model: EmbeddingSpaceModel, layer: int, head: int, gram: torch.Tensor | None = None) -> float:
    """Σλ / Σ|λ| over the eigenvalues λ of the head's OV circuit in vocabulary space (Elhage et al. 2021).

    The nonzero eigenvalues of Eᵀ W_V W_O E_out ([V, V]) are those of W_O (E_out Eᵀ) W_V ([d_head, d_head]).
    Near 1: the head copies the attended token to the output; near -1: it suppresses it.
    NaN for a head whose W_V or W_O holds NaN/Inf (model.nonfinite_tensors names them), never a made-up 0.
    """
    gram = embedding_gram(model) if gram is None else gram
    weights = model.layer(layer, allow_nonfinite=True)
    check_index("head", head, model.shape.n_heads)
    small = weights.W_O[head].to(torch.float64) @ gram @ weights.W_V[head].to(torch.float64)
    if not bool(torch.isfinite(small).all()):
        return float("nan")
    eigenvalues = torch.linalg.eigvals(small)
    total = eigenvalues.abs().sum().item()
    return float(eigenvalues.sum().real.item() / total) if total > 0 else 0.0


def copying_scores(model: EmbeddingSpaceModel, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Copying score of every head: float64 [n_layers, n_heads]. progress(done, total) per layer."""
    gram = embedding_gram(model)
    n_layers, n_heads = model.shape.n_layers, model.shape.n_heads
    scores = np.zeros((n_layers, n_heads))
    for layer in range(n_layers):
        for head in range(n_heads):
            scores[layer, head] = copying_score(model, layer, head, gram)
        if progress:
            progress(layer + 1, n_layers)
    return scores


def pair_table(vocab, kind: str, layer: int, head: int, found) -> PairTable:
    """A PairTable of `found` (top_pairs' row_ids, col_ids, scores), its tokens displayed from `vocab`."""
    return PairTable(
        kind=kind,
        layer=layer,
        head=head,
        row_ids=found.row_ids,
        col_ids=found.col_ids,
        row_tokens=tuple(vocab.display(int(i)) for i in found.row_ids),
        col_tokens=tuple(vocab.display(int(i)) for i in found.col_ids),
        scores=found.scores,
    )
