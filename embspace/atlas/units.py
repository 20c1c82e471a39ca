"""One unit of atlas work, (layer, kind) with kind in vo / qk / ffn, computed into Arrow tables.

The serial build and the Ray workers call the same `compute_unit`, so their tables are identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import torch

from embspace.atlas.manifest import (
    HEADS_SCHEMA,
    NEURONS_SCHEMA,
    PAIRS_SCHEMA,
    PATHS,
    SVD_DIRECTIONS,
    SVD_SCHEMA,
    head_pair_columns,
)
from embspace.compute.ffn_scan import SCAN_VECTORS, NeuronScanner
from embspace.compute.projections import copying_score, embedding_gram, head_top_pairs
from embspace.compute.svd import singular_directions
from embspace.model.embedding_space import EmbeddingSpaceModel
from embspace.vocab.filters import VocabFilter

UNIT_KINDS = ("vo", "qk", "ffn")
SEARCHED_VECTORS = ("K", "V")  # the neuron lists token search reads (the tokens table)
SIGNS = (("+", False), ("-", True))
# The SVD matrices each unit stores: (svd kind in compute.svd, head matrix?)
UNIT_SVD_KINDS = {"vo": ("ov",), "qk": ("qk",), "ffn": ("ffn-in", "ffn-out")}


@dataclass(frozen=True)
class Unit:
    layer: int
    kind: str  # "vo" (W_VO pairs + head scores), "qk" (W_QK pairs) or "ffn" (every neuron)

    def paths(self) -> tuple[str, ...]:
        """The partitions this unit writes, relative to the atlas directory (the SVD table's last)."""
        return (*self.main_paths(), self.svd_path())

    def main_paths(self) -> tuple[str, ...]:
        """The partitions before the SVD table (an atlas built before it holds only these)."""
        if self.kind == "ffn":
            return (PATHS["neurons"].format(layer=self.layer), PATHS["tokens"].format(layer=self.layer))
        pairs = PATHS["pairs"].format(layer=self.layer, kind=self.kind)
        return (PATHS["heads"].format(layer=self.layer), pairs) if self.kind == "vo" else (pairs,)

    def svd_path(self) -> str:
        return PATHS["svd"].format(layer=self.layer, kind=self.kind)


class Workspace:
    """A model plus what every unit of it reuses: the FFN scanner (E on the device) and E Eᵀ."""

    def __init__(self, model: EmbeddingSpaceModel, k: int, device: str = "cpu", svd_directions: int = SVD_DIRECTIONS):
        self.model = model
        self.k = k
        self.svd_directions = svd_directions
        self.device = device
        self._scanner: NeuronScanner | None = None
        self._gram: torch.Tensor | None = None

    @property
    def scanner(self) -> NeuronScanner:
        if self._scanner is None:
            self._scanner = NeuronScanner(self.model, self.k, device=self.device)
        return self._scanner

    @property
    def gram(self) -> torch.Tensor:
        if self._gram is None:
            self._gram = embedding_gram(self.model)  # [d_model, d_model] float64, once per model
        return self._gram

    def expected_rows(self, path: str) -> int | None:
        """Rows a complete partition holds (a shorter file is a truncated one); None: not known before
        computing it (the SVD table: a matrix's number of non-zero singular values)."""
        if path.startswith("svd/"):
            return None
        kept = int(self.model.vocab_mask(None).sum())
        heads = self.model.shape.n_heads
        if path.startswith("neurons/"):
            return self.model.shape.d_ff * len(SCAN_VECTORS) * min(self.k, kept)
        if path.startswith("tokens/"):
            return self.model.shape.d_ff * len(SEARCHED_VECTORS) * min(self.k, kept)
        if path.startswith("heads/"):
            return heads
        return heads * len(SIGNS) * min(self.k, kept * kept)


def compute_unit(workspace: Workspace, unit: Unit) -> dict[str, pa.Table]:
    """{relative partition path: table} for one unit."""
    tables = {unit.svd_path(): svd_table(workspace, unit)}
    if unit.kind == "ffn":
        neurons = neuron_table(workspace, unit.layer)
        return {unit.main_paths()[0]: neurons, unit.main_paths()[1]: token_table(neurons), **tables}
    if unit.kind == "vo":
        tables[unit.main_paths()[0]] = head_score_table(workspace, unit.layer)
    tables[unit.main_paths()[-1]] = pair_table(workspace, unit.kind, unit.layer)
    return tables


def svd_table(workspace: Workspace, unit: Unit) -> pa.Table:
    """The unit's SVD directions (every head's, or the layer's FFN keys and values), top-N tokens per end."""
    model, heads = workspace.model, range(workspace.model.shape.n_heads)
    parts = [
        svd_token_lists(model, kind, unit.layer, head, workspace.svd_directions, workspace.k)
        for kind in UNIT_SVD_KINDS[unit.kind]
        for head in (heads if unit.kind != "ffn" else [None])
    ]
    columns = {name: [part[name] for part in parts] for name in SVD_SCHEMA.names}
    # Sorted by token, as the tokens table: a concept query reads only the row groups holding its tokens.
    return _table(columns, SVD_SCHEMA).sort_by(
        [("token_id", "ascending"), ("kind", "ascending"), ("rank", "ascending")]
    )


def svd_token_lists(
    model: EmbeddingSpaceModel,
    svd_kind: str,
    layer: int,
    head: int | None,
    directions: int,
    k: int,
    vocab_filter: VocabFilter | None = None,
) -> dict[str, np.ndarray]:
    """Columns of SVD_SCHEMA (arrays [n]) for one matrix's first `directions` directions: the top-k tokens
    of E·x and E·(-x) of each token side x (u_i / v_i, as `compute.svd.svd_view` reads them), best first.

    svd_kind: "ov", "qk", "ffn-in", "ffn-out" (stored as "svd-<kind>"); FFN sides made of neurons are skipped.
    The atlas stores these under the default filter; `concepts` computes them live under any filter.
    """
    found = singular_directions(model, svd_kind, layer, head)
    n = min(directions, len(found.values))
    mask = torch.from_numpy(np.array(model.vocab_mask(vocab_filter)))  # a copy: the cached mask is read-only
    kept = min(k, int(mask.sum()))
    parts: list[dict[str, np.ndarray]] = []
    for side, vectors, output in (("left", found.left, False), ("right", found.right, True)):
        if (side, svd_kind) in (("left", "ffn-out"), ("right", "ffn-in")):
            continue  # the neuron side
        rows = model.output_rows if output else model.embedding_rows  # [V, d]
        scores = (rows @ torch.from_numpy(vectors[:, :n].astype(np.float32))).T  # [n, V]
        for end, sign in (("+", 1.0), ("-", -1.0)):
            values, ids = torch.topk((sign * scores).masked_fill(~mask, float("-inf")), kept, dim=1)  # [n, kept]
            parts.append(
                {
                    "direction": np.repeat(np.arange(n, dtype=np.int32), kept),
                    "side": np.full(n * kept, side, dtype=object),
                    "end": np.full(n * kept, end, dtype=object),
                    "sigma": np.repeat(found.values[:n], kept),
                    "rank": np.tile(np.arange(1, kept + 1, dtype=np.int32), n),
                    "token_id": ids.reshape(-1).numpy().astype(np.int32),
                    "score": values.reshape(-1).numpy().astype(np.float32),
                }
            )
    size = sum(len(part["rank"]) for part in parts)
    fixed = {"kind": np.full(size, f"svd-{svd_kind}", dtype=object), "layer": np.full(size, layer, dtype=np.int32)}
    fixed["head"] = np.full(size, -1 if head is None else head, dtype=np.int32)
    stacked = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]} if parts else {}
    return {name: fixed.get(name, stacked.get(name, np.array([]))) for name in SVD_SCHEMA.names}


def pair_table(workspace: Workspace, kind: str, layer: int) -> pa.Table:
    """Every head's top-N most positive and most negative pairs, default filter (as `pairs` prints)."""
    columns: dict[str, list[np.ndarray]] = {name: [] for name in PAIRS_SCHEMA.names}
    for head in range(workspace.model.shape.n_heads):
        for sign, negative in SIGNS:
            found = head_top_pairs(workspace.model, kind, layer, head, workspace.k, negative=negative)
            n = len(found.scores)
            columns["kind"].append(np.full(n, kind, dtype=object))
            columns["sign"].append(np.full(n, sign, dtype=object))
            for name, values in head_pair_columns(found, layer, head).items():
                columns[name].append(values)
    return _table(columns, PAIRS_SCHEMA)


def neuron_table(workspace: Workspace, layer: int) -> pa.Table:
    """Every neuron's top-N tokens of K, V, -K, -V, ordered by neuron, vector, rank."""
    scan = workspace.scanner.scan(layer)
    d_ff, k = scan.token_ids["K"].shape
    n_vectors = len(SCAN_VECTORS)
    ids = np.stack([scan.token_ids[v] for v in SCAN_VECTORS], axis=1)  # [d_ff, 4, k]
    scores = np.stack([scan.scores[v] for v in SCAN_VECTORS], axis=1)
    columns = {
        "layer": np.full(d_ff * n_vectors * k, layer, dtype=np.int32),
        "neuron": np.repeat(np.arange(d_ff, dtype=np.int32), n_vectors * k),
        "vector": np.tile(np.repeat(np.array(SCAN_VECTORS, dtype=object), k), d_ff),
        "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), d_ff * n_vectors),
        "token_id": ids.reshape(-1).astype(np.int32),
        "score": scores.reshape(-1).astype(np.float32),
    }
    return pa.Table.from_pydict(
        {name: pa.array(values, type=NEURONS_SCHEMA.field(name).type) for name, values in columns.items()},
        schema=NEURONS_SCHEMA,
    )


def token_table(neurons: pa.Table) -> pa.Table:
    """The K and V rows of a neuron table, sorted by token_id, vector, rank, neuron (the tokens table)."""
    searched = neurons.filter(pa.compute.is_in(neurons["vector"], pa.array(SEARCHED_VECTORS)))
    return searched.sort_by(
        [("token_id", "ascending"), ("vector", "ascending"), ("rank", "ascending"), ("neuron", "ascending")]
    )


def head_score_table(workspace: Workspace, layer: int) -> pa.Table:
    """Copying score (eigenvalues of W_VO) and QK self score (eigenvalues of W_QK) of each head."""
    model, gram = workspace.model, workspace.gram
    weights = model.layer(layer)
    heads = range(model.shape.n_heads)
    return pa.Table.from_pydict(
        {
            "layer": pa.array([layer] * len(heads), pa.int32()),
            "head": pa.array(list(heads), pa.int32()),
            "copying_score": pa.array([copying_score(model, layer, h, gram) for h in heads], pa.float64()),
            "qk_self_score": pa.array([qk_self_score(weights.W_Q[h], weights.W_K[h], gram) for h in heads]),
        },
        schema=HEADS_SCHEMA,
    )


def qk_self_score(w_q: torch.Tensor, w_k: torch.Tensor, gram: torch.Tensor) -> float:
    """Σλ/Σ|λ| over the eigenvalues λ of W_QK = Eᵀ W_Q W_Kᵀ E ([V, V]).

    w_q, w_k: [d_model, d_head]; gram: E Eᵀ [d_model, d_model]. The nonzero eigenvalues of W_QK are
    those of W_Kᵀ (E Eᵀ) W_Q ([d_head, d_head]), as for the copying score.
    """
    small = w_k.to(torch.float64).T @ gram @ w_q.to(torch.float64)
    eigenvalues = torch.linalg.eigvals(small)
    total = eigenvalues.abs().sum().item()
    return float(eigenvalues.sum().real.item() / total) if total > 0 else 0.0


def _table(columns: dict[str, list[np.ndarray]], schema: pa.Schema) -> pa.Table:
    arrays = {
        name: pa.array(np.concatenate(parts) if parts else np.array([]), type=schema.field(name).type)
        for name, parts in columns.items()
    }
    return pa.Table.from_pydict(arrays, schema=schema)
