"""Singular directions of a head's W_V W_O or W_Q W_Kᵀ, and of a layer's FFN weights, read in the vocabulary.

Millidge & Black (2022): each singular vector of a head's OV circuit, or of an MLP's input or output
weights, projected on the embedding matrix often reads as one clean cluster of tokens.

A head's d x d matrix has rank <= d_head: its SVD comes from the two [d, d_head] factors (a QR of each,
then an r x r SVD), never the d x d product. Signs: a singular pair (u_i, v_i) is only defined up to a
common sign, so every pair is turned so that **the coordinate of largest magnitude of u_i is positive**
(the first such coordinate on a tie); both ends (+u_i and -u_i) are shown anyway. Directions whose
singular value is within `DEGENERATE_GAP` (relative) of a neighbour's are not individually defined
(only their span is): they are marked `degenerate`, with the gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from embspace.compute.projections import TokenScores
from embspace.errors import EmbspaceError
from embspace.model.embedding_space import EmbeddingSpaceModel, check_index
from embspace.vocab.filters import VocabFilter

SVD_KINDS = ("ov", "qk", "ffn-in", "ffn-out")
HEAD_SVD_KINDS = ("ov", "qk")
DEGENERATE_GAP = 1e-3  # relative gap to the nearest singular value below which a direction is marked
DEFAULT_DIRECTIONS = 8
# Singular values below s_max * max(m, n) * this are zero: the weights are float32, so their product's
# numerical rank is judged at float32 precision even though the SVD runs in float64.
_ZERO_TOLERANCE = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class SingularDirections:
    """The non-zero part of M = U diag(S) Vᵀ for an [m, n] matrix M, sign-fixed (see the module docstring)."""

    values: np.ndarray  # float64 [r], descending, all > 0
    left: np.ndarray  # float64 [m, r]: u_i in column i
    right: np.ndarray  # float64 [n, r]: v_i in column i

    def gaps(self) -> np.ndarray:
        """float64 [r]: min(s_{i-1} - s_i, s_i - s_{i+1}) / s_i, the value after the last one being 0."""
        s = self.values
        above = np.concatenate([[np.inf], s[:-1]]) - s
        below = s - np.concatenate([s[1:], [0.0]])
        return np.minimum(above, below) / s

    def degenerate(self, threshold: float = DEGENERATE_GAP) -> np.ndarray:
        """bool [r]: directions whose singular value nearly equals a neighbour's (only their span is defined)."""
        return self.gaps() < threshold


def factored_svd(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> SingularDirections:
    """SVD of a @ bᵀ (a: [m, r], b: [n, r]) from the factors: a = Q_a R_a, b = Q_b R_b, then the SVD of the
    r x r matrix R_a R_bᵀ = U' S V'ᵀ gives U = Q_a U', V = Q_b V'. Never builds the [m, n] product."""
    a, b = _float64(a), _float64(b)
    q_a, r_a = np.linalg.qr(a)  # [m, r], [r, r]
    q_b, r_b = np.linalg.qr(b)  # [n, r], [r, r]
    u, s, vt = np.linalg.svd(r_a @ r_b.T)
    return _canonical(q_a @ u, s, q_b @ vt.T, max(a.shape[0], b.shape[0]))


def dense_svd(matrix: torch.Tensor | np.ndarray) -> SingularDirections:
    """SVD of an [m, n] matrix (a layer's FFN weights; the tests' reference for `factored_svd`)."""
    matrix = _float64(matrix)
    u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    return _canonical(u, s, vt.T, max(matrix.shape))


def _float64(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to(device="cpu", dtype=torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _canonical(u: np.ndarray, s: np.ndarray, v: np.ndarray, size: int) -> SingularDirections:
    """Drop the zero singular values and turn each pair so that u_i's largest-|.| coordinate is positive."""
    order = np.argsort(-s, kind="stable")  # LAPACK sorts already; kept explicit for the contract
    u, s, v = u[:, order], s[order], v[:, order]
    keep = s > (s[0] if len(s) else 0.0) * size * _ZERO_TOLERANCE
    u, s, v = u[:, keep], s[keep], v[:, keep]
    signs = np.sign(u[np.argmax(np.abs(u), axis=0), np.arange(u.shape[1])])
    signs[signs == 0] = 1.0
    return SingularDirections(np.ascontiguousarray(s), u * signs, v * signs)


def check_svd_kind(kind: str, head: int | None) -> None:
    """Raise EmbspaceError for an unknown kind, a head kind without a head, or an FFN kind with one."""
    if kind not in SVD_KINDS:
        raise EmbspaceError(f"kind must be one of {', '.join(SVD_KINDS)}, not {kind!r}.")
    if kind in HEAD_SVD_KINDS and head is None:
        raise EmbspaceError(f"kind {kind!r} is a head's matrix: give a head.")
    if kind not in HEAD_SVD_KINDS and head is not None:
        raise EmbspaceError(f"kind {kind!r} is a layer's FFN matrix: give no head.")


def singular_directions(
    model: EmbeddingSpaceModel, kind: str, layer: int, head: int | None = None
) -> SingularDirections:
    """The SVD of one matrix of the model, in the residual stream (no vocabulary yet).

    ov: W_V^h W_O^h [d, d] (u: what the head reads, v: what it writes), from its [d, d_head] factors.
    qk: W_Q^h W_K^hᵀ [d, d] (u: the query side, v: the key side); grouped K heads come expanded.
    ffn-in: the keys [d, d_ff] (u: a direction of the residual stream, v: the neurons that read it).
    ffn-out: the values [d_ff, d] (u: the neurons, v: the direction they write).
    """
    check_svd_kind(kind, head)
    weights = model.layer(layer)
    if kind == "ffn-in":
        return dense_svd(weights.ffn_keys.T)
    if kind == "ffn-out":
        return dense_svd(weights.ffn_values)
    check_index("head", head, model.shape.n_heads)
    if kind == "ov":
        return factored_svd(weights.W_V[head], weights.W_O[head].T)
    return factored_svd(weights.W_Q[head], weights.W_K[head])


@dataclass(frozen=True)
class TokenEnds:
    """Top tokens of both ends of one singular vector: E·x (plus) and E·(-x) (minus), each best first."""

    plus: TokenScores
    minus: TokenScores

    def to_record(self) -> dict:
        return {"plus": self.plus.to_records(), "minus": self.minus.to_records()}


@dataclass(frozen=True)
class NeuronLoadings:
    """The neurons that load most on one singular vector: top by |weight|, with the weight's sign.

    weight: the neuron's coordinate in the unit singular vector; a neuron with a positive weight reads
    (ffn-in) or writes (ffn-out) the token side's plus end, a negative one its minus end."""

    neurons: np.ndarray  # int64 [k]
    weights: np.ndarray  # float32 [k]

    def to_record(self) -> list[dict]:
        return [{"neuron": int(n), "weight": float(w)} for n, w in zip(self.neurons, self.weights, strict=True)]


@dataclass(frozen=True)
class SvdDirection:
    """One singular direction: its value, its gap to the nearest value, and both sides read out."""

    index: int
    sigma: float
    gap: float  # relative: min distance to a neighbouring singular value / sigma
    degenerate: bool  # gap < DEGENERATE_GAP: the direction itself is not defined, only a span
    left: TokenEnds | NeuronLoadings
    right: TokenEnds | NeuronLoadings

    def to_record(self) -> dict:
        return {
            "index": self.index,
            "sigma": self.sigma,
            "gap": self.gap,
            "degenerate": self.degenerate,
            "left": self.left.to_record(),
            "right": self.right.to_record(),
        }


@dataclass(frozen=True)
class SvdView:
    """A matrix's singular values and its first directions read in the vocabulary (or as neurons)."""

    kind: str  # one of SVD_KINDS
    layer: int
    head: int | None  # None for the FFN kinds
    singular_values: np.ndarray  # float64 [r], every non-zero one, descending
    directions: tuple[SvdDirection, ...]

    def to_record(self) -> dict:
        """The CLI's `--json` contract: singular_values and directions (plus kind, layer, head)."""
        return {
            "kind": self.kind,
            "layer": self.layer,
            "head": self.head,
            "singular_values": [float(s) for s in self.singular_values],
            "directions": [d.to_record() for d in self.directions],
        }


def svd_view(
    model: EmbeddingSpaceModel,
    kind: str,
    layer: int,
    head: int | None = None,
    directions: int = DEFAULT_DIRECTIONS,
    k: int = 20,
    vocab_filter: VocabFilter | None = None,
) -> SvdView:
    """The singular values of one matrix and its first `directions` directions, each side read out.

    Token sides: the top-k tokens of E·x and E·(-x) among the tokens `vocab_filter` keeps, with E as the
    head and neuron views use it (a head's left side and the FFN keys through the input embedding, a head's
    right side and the FFN values through the output one; the same E unless embedding is "input-output").
    Neuron sides (ffn-in right, ffn-out left): the k neurons with the largest |weight|.
    """
    if directions < 1 or k < 1:
        raise EmbspaceError(f"directions and k must be at least 1, not {directions} and {k}.")
    found = singular_directions(model, kind, layer, head)
    shown = min(directions, len(found.values))
    left = _side(model, found.left[:, :shown], k, vocab_filter, tokens=kind != "ffn-out", output=False)
    right = _side(model, found.right[:, :shown], k, vocab_filter, tokens=kind != "ffn-in", output=True)
    gaps, degenerate = found.gaps(), found.degenerate()
    return SvdView(
        kind=kind,
        layer=layer,
        head=head,
        singular_values=found.values,
        directions=tuple(
            SvdDirection(i, float(found.values[i]), float(gaps[i]), bool(degenerate[i]), left[i], right[i])
            for i in range(shown)
        ),
    )


def _side(
    model: EmbeddingSpaceModel,
    vectors: np.ndarray,
    k: int,
    vocab_filter: VocabFilter | None,
    *,
    tokens: bool,
    output: bool,
) -> list[TokenEnds] | list[NeuronLoadings]:
    """Each column of `vectors` ([d, n] residual directions, or [d_ff, n] neuron loadings) read out."""
    if not tokens:
        return [_loadings(vectors[:, i], k) for i in range(vectors.shape[1])]
    rows = model.output_rows if output else model.embedding_rows  # [V, d]
    return vocab_ends(model, rows, vectors, k, vocab_filter)


def vocab_ends(
    model: EmbeddingSpaceModel, rows: torch.Tensor, vectors: np.ndarray, k: int, vocab_filter: VocabFilter | None
) -> list[TokenEnds]:
    """TokenEnds of each column of `vectors` ([d, n]): rows @ vectors ([V, n], one GEMM), then top-k of
    each column and of its negation among the tokens the filter keeps."""
    scores = (rows @ torch.from_numpy(vectors.astype(np.float32))).T.contiguous()  # [n, V]
    mask = torch.from_numpy(np.array(model.vocab_mask(vocab_filter)))  # a copy: the cached mask is read-only
    k = min(k, int(mask.sum()))
    ends = []
    for column in scores:
        plus, minus = (_top(model, sign * column, mask, k) for sign in (1.0, -1.0))
        ends.append(TokenEnds(plus, minus))
    return ends


def _top(model: EmbeddingSpaceModel, scores: torch.Tensor, mask: torch.Tensor, k: int) -> TokenScores:
    """Top-k of scores [V] among the masked-in tokens, best first."""
    values, ids = torch.topk(scores.masked_fill(~mask, float("-inf")), k)
    ids_np = ids.numpy().astype(np.int64)
    return TokenScores(ids_np, tuple(model.vocab.display(int(i)) for i in ids_np), values.numpy().astype(np.float32))


def _loadings(weights: np.ndarray, k: int) -> NeuronLoadings:
    """The k entries of weights [d_ff] with the largest |weight| (ties: the lower neuron first)."""
    order = np.argsort(-np.abs(weights), kind="stable")[:k]
    return NeuronLoadings(order.astype(np.int64), weights[order].astype(np.float32))
