"""Read an atlas: one head's pairs, one neuron's tokens, the head scores; filters on stored candidates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from embspace.atlas.manifest import HEADS_SCHEMA, IDENTITY_KEYS, MANIFEST, PATHS, config_sha256, read_manifest
from embspace.errors import EmbspaceError
from embspace.model.embedding_space import EmbeddingSpaceModel
from embspace.settings import atlas_dir
from embspace.vocab.filters import PairFilter, VocabFilter

APP_ATLASES = Path(__file__).resolve().parents[2] / "atlases"


class Atlas:
    """An atlas directory opened for reading (the manifest is read once; tables on each call)."""

    def __init__(self, directory: Path, manifest: dict):
        self.directory = directory
        self.manifest = manifest
        self.k: int = int(manifest["k"])

    @classmethod
    def open(cls, directory: str | Path) -> Atlas:
        directory = Path(directory)
        return cls(directory, read_manifest(directory))

    def matches(self, model: EmbeddingSpaceModel) -> bool:
        """Built for this model: same source, revision, embedding and config.json."""
        info = model.info
        return (
            self.manifest.get("model") == info.source
            and self.manifest.get("revision") == info.revision
            and self.manifest.get("embedding") == info.embedding
            and self.manifest.get("config_sha256") == config_sha256(model)
        )

    def identity(self) -> dict:
        return {key: self.manifest.get(key) for key in IDENTITY_KEYS}

    def layers(self, table: str = "pairs") -> list[int]:
        """Layers with a partition in `table` (a partial build holds only some)."""
        root = self.directory / table
        found = (
            (int(p.name.removeprefix("layer=")) for p in root.glob("layer=*") if p.is_dir()) if root.is_dir() else ()
        )
        return sorted(found)

    def head_pairs(self, kind: str, layer: int, head: int, sign: str = "+") -> pd.DataFrame:
        """Stored pairs of one head, best first: columns rank, row_id, col_id, score."""
        table = pq.read_table(
            self._partition("pairs", layer=layer, kind=kind),
            columns=["rank", "row_id", "col_id", "score"],
            filters=[("head", "=", head), ("sign", "=", sign)],
        )
        return table.to_pandas().sort_values("rank", ignore_index=True)

    def neuron_tokens(self, layer: int, neuron: int) -> dict[str, pd.DataFrame]:
        """Stored top tokens of one neuron: {"K"|"V"|"-K"|"-V": frame of rank, token_id, score}."""
        table = pq.read_table(
            self._partition("neurons", layer=layer),
            columns=["vector", "rank", "token_id", "score"],
            filters=[("neuron", "=", neuron)],
        )
        frame = table.to_pandas()
        return {
            vector: group.drop(columns="vector").sort_values("rank", ignore_index=True)
            for vector, group in frame.groupby("vector", sort=False)
        }

    def head_scores(self) -> pd.DataFrame:
        """layer, head, copying_score, qk_self_score for every built layer (meanings in manifest["head_scores"])."""
        root = self.directory / "heads"
        if not root.is_dir():
            return HEADS_SCHEMA.empty_table().to_pandas()
        table = ds.dataset(root, format="parquet").to_table()
        return table.to_pandas().sort_values(["layer", "head"], ignore_index=True)

    def dataset(self, table: str) -> ds.Dataset:
        """The whole table ("pairs", "neurons", "heads") as a pyarrow dataset, for scans."""
        return ds.dataset(self.directory / table, format="parquet")

    def _partition(self, table: str, **keys) -> Path:
        path = self.directory / PATHS[table].format(**keys)
        if not path.exists():
            raise EmbspaceError(f"the atlas in {self.directory} has no {table} for {keys} (a partial build?).")
        return path


def find_atlas(model: EmbeddingSpaceModel, roots: list[str | Path] | None = None) -> Atlas | None:
    """The first atlas built for `model` under `roots` (default: `atlases/` beside the app, then
    $EMBSPACE_ATLAS_DIR); each root may be an atlas itself or hold atlases one level down."""
    if roots is None:
        roots = [APP_ATLASES, *filter(None, [atlas_dir()])]
    for root in map(Path, roots):
        candidates = (
            [root] if (root / MANIFEST).exists() else sorted(root.glob(f"*/{MANIFEST}")) if root.is_dir() else []
        )
        for candidate in candidates:
            directory = candidate if candidate.is_dir() else candidate.parent
            try:
                atlas = Atlas.open(directory)
            except EmbspaceError:
                continue
            if atlas.matches(model):
                return atlas
    return None


@dataclass(frozen=True)
class FilteredView:
    """Stored candidates that pass a filter, renumbered 1..; `complete` says whether they are the exact top k.

    When not complete, fewer than k stored candidates survived (or the filter keeps tokens the atlas
    never stored): offer the live computation.
    """

    frame: pd.DataFrame
    complete: bool
    stored: int  # candidates the atlas holds for this view


def filter_pairs(
    frame: pd.DataFrame,
    model: EmbeddingSpaceModel,
    k: int,
    vocab_filter: VocabFilter | None = None,
    pair_filter: PairFilter | None = None,
    atlas_k: int | None = None,
) -> FilteredView:
    """Apply the filters to one head's stored pairs (rank, row_id, col_id, score), keep the best k."""
    mask = model.vocab_mask(vocab_filter)
    rows, cols = frame["row_id"].to_numpy(np.int64), frame["col_id"].to_numpy(np.int64)
    keep = mask[rows] & mask[cols]
    pair_filter = pair_filter or PairFilter()
    groups = pair_filter.same_groups(model.vocab)
    if groups is not None:
        keep &= groups[rows] != groups[cols]
    near = pair_filter.near_identical(model.vocab)
    if near is not None and keep.any():
        keep[keep] = ~near(rows[keep], cols[keep])
    return _view(frame, keep, k, vocab_filter, atlas_k)


def filter_tokens(
    frame: pd.DataFrame,
    model: EmbeddingSpaceModel,
    k: int,
    vocab_filter: VocabFilter | None = None,
    atlas_k: int | None = None,
) -> FilteredView:
    """Apply the vocabulary filter to one neuron vector's stored tokens (rank, token_id, score), keep the best k."""
    keep = model.vocab_mask(vocab_filter)[frame["token_id"].to_numpy(np.int64)]
    return _view(frame, keep, k, vocab_filter, atlas_k)


def _view(frame: pd.DataFrame, keep: np.ndarray, k: int, vocab_filter: VocabFilter | None, atlas_k: int | None):
    kept = frame[keep].sort_values("rank").head(k).reset_index(drop=True)
    kept["rank"] = np.arange(1, len(kept) + 1, dtype=np.int32)
    # The stored lists hold every eligible candidate when shorter than N: then any filter is exact.
    exhaustive = atlas_k is not None and len(frame) < atlas_k
    stored_tokens_suffice = vocab_filter is None or vocab_filter.exclude_special  # specials were never stored
    complete = stored_tokens_suffice and (len(kept) >= k or exhaustive)
    return FilteredView(kept, complete, len(frame))
