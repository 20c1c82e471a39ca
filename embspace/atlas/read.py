"""Read an atlas: one head's pairs, one neuron's tokens, the head scores, where tokens are stored (for search);
filters on stored candidates. The only reader of the tables' columns."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from embspace.atlas.manifest import HEADS_SCHEMA, IDENTITY_KEYS, PATHS, SCHEMAS, config_sha256
from embspace.atlas.remote import AtlasLocation, PartitionCache
from embspace.errors import EmbspaceError
from embspace.model.embedding_space import EmbeddingSpaceModel
from embspace.settings import atlas_dir
from embspace.vocab.filters import PairFilter, VocabFilter

APP_ATLASES = Path(__file__).resolve().parents[2] / "atlases"


@dataclass(frozen=True)
class NeuronPlaces:
    """Places a token holds in stored neuron lists, one per (layer, neuron, vector, token): arrays [n].
    The fields are the columns read from the neurons (tokens) table."""

    layer: np.ndarray  # int32
    neuron: np.ndarray  # int32
    vector: np.ndarray  # str: "K" or "V"
    rank: np.ndarray  # int: 1 = the neuron's top token
    token_id: np.ndarray  # int32
    score: np.ndarray  # float32: vector · e_token


@dataclass(frozen=True)
class StoredPairs:
    """Stored top pairs of heads, one per (layer, head, rank): arrays [n]. The fields are the columns read
    from the pairs table."""

    layer: np.ndarray  # int32
    head: np.ndarray  # int32
    rank: np.ndarray  # int32: 1 = the head's best pair
    row_id: np.ndarray  # int32: vo: attended-to token, qk: query token
    col_id: np.ndarray  # int32: vo: output token, qk: key token
    score: np.ndarray  # float32


class Atlas:
    """An atlas opened for reading (the manifest is read once; tables on each call): a local directory, or a
    URI (hf://, s3://, http(s)://, memory://) read lazily, partition by partition (see remote.py)."""

    def __init__(self, directory: Path | str, manifest: dict, location: AtlasLocation | None = None):
        self.directory = directory  # as given: a Path, or the URI string
        self.manifest = manifest
        self.k: int = int(manifest["k"])
        if location is None:
            location = AtlasLocation.of(directory)
            if location.remote:
                location.read_manifest()  # its identity keys the cache of fetched partitions
        self.location = location

    @classmethod
    def open(cls, directory: str | Path, cache: PartitionCache | None = None) -> Atlas:
        """`directory` a path or URI; `cache` keeps a remote atlas's fetched partitions (default: from settings)."""
        location = AtlasLocation.of(directory, cache)
        manifest = location.read_manifest()
        return cls(location.name, manifest, location)

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
        """Layers with a partition in `table` (a partial build holds only some); lists files, reads none."""
        return sorted({int(keys["layer"]) for keys in self.location.partitions(PATHS[table]).values()})

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
        table = self.dataset("heads").to_table()
        if table.num_rows == 0:
            return HEADS_SCHEMA.empty_table().to_pandas()
        return table.to_pandas().sort_values(["layer", "head"], ignore_index=True)

    def neuron_places(
        self, token_ids: list[int], vectors: list[str], kept_tokens: np.ndarray | None = None
    ) -> NeuronPlaces:
        """Every stored neuron list (vector "K"/"V" in `vectors`) holding one of `token_ids`, in no order.

        kept_tokens: bool [V] of a vocabulary filter other than the one the atlas was built with: each
        place's rank is then 1 + the stored tokens above it that the filter keeps (exact: every token
        scoring above a stored one is stored too); None keeps the stored ranks.
        """
        indexed = self.layers("tokens") == self.layers("neurons")  # older atlases have no tokens table
        frame = (
            self.dataset("tokens" if indexed else "neurons")
            .to_table(
                columns=[field.name for field in fields(NeuronPlaces)],
                filter=pc.field("token_id").isin(token_ids) & pc.field("vector").isin(vectors),
            )
            .to_pandas()
        )
        if kept_tokens is not None and not frame.empty:
            frame["rank"] = 1 + _kept_above(self.dataset("neurons"), frame, kept_tokens)
        return NeuronPlaces(**_columns(frame, NeuronPlaces))

    def all_head_pairs(self, kind: str, sign: str = "+") -> StoredPairs:
        """Every built layer's stored pairs of `kind` ("vo"/"qk") and `sign`, in no order."""
        frame = (
            self.dataset("pairs")
            .to_table(
                columns=[field.name for field in fields(StoredPairs)],
                filter=(pc.field("kind") == kind) & (pc.field("sign") == sign),
            )
            .to_pandas()
        )
        return StoredPairs(**_columns(frame, StoredPairs))

    def dataset(self, table: str) -> ds.Dataset:
        """The whole table ("pairs", "neurons", "heads") as a pyarrow dataset, for scans (remote: read by range,
        only the footers and the row groups a filter keeps)."""
        return self.location.dataset(PATHS[table], SCHEMAS.get(table))

    def _partition(self, table: str, **keys) -> Path | pa.NativeFile:
        """One partition, for pq.read_table: a local path (a remote file fetched into the cache), or a remote
        file read by range when it is larger than the whole cache."""
        found = self.location.partition_file(PATHS[table].format(**keys))
        if found is None:
            raise EmbspaceError(f"the atlas in {self.directory} has no {table} for {keys} (a partial build?).")
        return found

    def svd_tokens(self, token_ids: list[int] | None = None) -> pd.DataFrame | None:
        """Stored top tokens of the SVD directions (table `svd`, columns of SVD_SCHEMA), only the rows of
        `token_ids` when given; None for an atlas built before the table (compute them live)."""
        if not self.layers("svd"):
            return None
        where = None if token_ids is None else pc.field("token_id").isin(list(token_ids))
        return self.dataset("svd").to_table(filter=where).to_pandas()


def _columns(frame: pd.DataFrame, record: type) -> dict[str, np.ndarray]:
    """The frame's columns named by the fields of dataclass `record`, as arrays."""
    return {field.name: frame[field.name].to_numpy() for field in fields(record)}


def _kept_above(neurons: ds.Dataset, places: pd.DataFrame, kept_tokens: np.ndarray) -> np.ndarray:
    """For each place (layer, neuron, vector, rank): the stored tokens ranked above it that `kept_tokens` keeps."""
    keys = ["layer", "neuron", "vector"]
    lists = neurons.to_table(
        columns=[*keys, "rank", "token_id"],
        filter=pc.field("layer").isin(places["layer"].unique().tolist())
        & pc.field("neuron").isin(places["neuron"].unique().tolist())
        & (pc.field("rank") < int(places["rank"].max())),
    ).to_pandas()
    lists = lists[kept_tokens[lists["token_id"].to_numpy()]]
    hits = places[[*keys, "rank"]].reset_index()
    merged = hits.merge(lists, on=keys, suffixes=("", "_above"))
    counts = merged[merged["rank_above"] < merged["rank"]].groupby("index").size()
    return counts.reindex(places.index, fill_value=0).to_numpy()


def find_atlas(
    model: EmbeddingSpaceModel, roots: list[str | Path] | None = None, cache: PartitionCache | None = None
) -> Atlas | None:
    """The first atlas built for `model` under `roots` (default: `atlases/` beside the app, then
    $EMBSPACE_ATLAS_DIR); each root, a directory or a URI, may be an atlas itself or hold atlases one
    level down. `cache`: where a remote atlas's partitions are kept (default: from settings)."""
    if roots is None:
        roots = [APP_ATLASES, *filter(None, [atlas_dir()])]
    for root in roots:
        for candidate in AtlasLocation.of(root).child_atlases():
            try:
                atlas = Atlas.open(candidate, cache)
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
    rows, cols = frame["row_id"].to_numpy(np.int64), frame["col_id"].to_numpy(np.int64)
    keep = (pair_filter or PairFilter()).keep_mask(model.vocab, rows, cols, model.vocab_mask(vocab_filter))
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
