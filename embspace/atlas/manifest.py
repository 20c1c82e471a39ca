"""What an atlas directory holds and for which model: manifest.json, table schemas, partition paths."""

from __future__ import annotations

import hashlib
import json
import struct
import tomllib
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pyarrow as pa

from embspace.errors import EmbspaceError
from embspace.model.embedding_space import EmbeddingSpaceModel

FORMAT = "embspace-atlas"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# Full sha256 of the weight files up to this size; above it, sha256 of each safetensors header + size
# (the header lists every tensor's name, dtype, shape and offsets) so a 14 GB model is not read twice.
FULL_HASH_LIMIT_BYTES = 4 * 2**30

PAIRS_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),  # "vo" | "qk"
        ("sign", pa.string()),  # "+" (most positive) | "-" (most negative)
        ("layer", pa.int32()),
        ("head", pa.int32()),
        ("rank", pa.int32()),  # 1 = best
        ("row_id", pa.int32()),  # vo: attended-to token, qk: query token
        ("col_id", pa.int32()),  # vo: output token, qk: key token
        ("score", pa.float32()),  # true signed value of W_VO / W_QK at (row, col)
    ]
)
NEURONS_SCHEMA = pa.schema(
    [
        ("layer", pa.int32()),
        ("neuron", pa.int32()),
        ("vector", pa.string()),  # "K" | "V" | "-K" | "-V"
        ("rank", pa.int32()),
        ("token_id", pa.int32()),
        ("score", pa.float32()),  # vector · E, for "-K" the value of (-K)·E, as `neuron` prints it
    ]
)
HEADS_SCHEMA = pa.schema(
    [
        ("layer", pa.int32()),
        ("head", pa.int32()),
        ("copying_score", pa.float64()),
        ("qk_self_score", pa.float64()),
    ]
)
# The first N singular directions of each head's W_VO / W_QK and each layer's FFN keys / values
# (`compute.svd`), each token end's top-N tokens under the default filter (what `concepts` reads).
SVD_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),  # "svd-ov" | "svd-qk" | "svd-ffn-in" | "svd-ffn-out"
        ("layer", pa.int32()),
        ("head", pa.int32()),  # -1 for the FFN kinds
        ("direction", pa.int32()),  # 0 = the largest singular value
        ("side", pa.string()),  # "left" (u_i) | "right" (v_i): only token sides are stored
        ("end", pa.string()),  # "+" (E·x) | "-" (E·(-x))
        ("sigma", pa.float64()),
        ("rank", pa.int32()),  # 1 = the end's top token
        ("token_id", pa.int32()),
        ("score", pa.float32()),  # e_token · (±x)
    ]
)
SVD_DIRECTIONS = 16  # directions stored per matrix by default (`build_atlas(svd_directions=...)`)
# The K and V rows of `neurons` again, sorted by token_id: a token search reads only the row groups
# whose min/max statistics hold the token, instead of every neuron list.
TOKENS_SCHEMA = NEURONS_SCHEMA
SCHEMAS = {
    "pairs": PAIRS_SCHEMA,
    "neurons": NEURONS_SCHEMA,
    "heads": HEADS_SCHEMA,
    "tokens": TOKENS_SCHEMA,
    "svd": SVD_SCHEMA,
}
HEAD_SCORE_MEANING = {
    "copying_score": "Σλ/Σ|λ| over the eigenvalues of W_VO: near 1 the head copies the attended token to the output.",
    "qk_self_score": "Σλ/Σ|λ| over the eigenvalues of W_QK: near 1 a query token attends to keys that are the same "
    "token (or its near-synonyms); near -1 it avoids them.",
}
# Where each unit of work lands; hive-style directories, and the partition keys are also columns in the files.
PATHS = {
    "pairs": "pairs/layer={layer}/kind={kind}/part.parquet",
    "neurons": "neurons/layer={layer}/part.parquet",
    "heads": "heads/layer={layer}/part.parquet",
    "tokens": "tokens/layer={layer}/part.parquet",
    "svd": "svd/layer={layer}/unit={kind}/part.parquet",  # unit: the atlas unit ("vo", "qk", "ffn")
}
IDENTITY_KEYS = ("model", "revision", "embedding", "k", "config_sha256", "weights")


class AtlasError(EmbspaceError):
    """An atlas directory that cannot be used: not an atlas, or an atlas of another model / N."""


def embspace_version() -> str:
    try:
        return metadata.version("embspace")
    except metadata.PackageNotFoundError:  # run from a checkout, not installed
        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


def config_sha256(model: EmbeddingSpaceModel) -> str:
    """sha256 of config.json's bytes (the file, not the parsed dict: any change counts)."""
    return hashlib.sha256((Path(model.info.path) / "config.json").read_bytes()).hexdigest()


def weight_files(directory: Path) -> list[Path]:
    files = sorted(directory.glob("*.safetensors")) or sorted(directory.glob("pytorch_model*.bin"))
    return [f for f in files if f.is_file()]


def weight_hashes(model: EmbeddingSpaceModel) -> dict:
    """{"method": ..., "files": {name: hex}}: full sha256 when the files are small enough, else header + size."""
    files = weight_files(Path(model.info.path))
    total = sum(f.stat().st_size for f in files)
    full = total <= FULL_HASH_LIMIT_BYTES or not all(f.suffix == ".safetensors" for f in files)
    method = "sha256" if full else "sha256(safetensors header)+size"
    return {"method": method, "files": {f.name: (_file_sha256(f) if full else _header_sha256(f)) for f in files}}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(2**24):
            digest.update(chunk)
    return digest.hexdigest()


def _header_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = handle.read(length)
    return f"{hashlib.sha256(header).hexdigest()}:{path.stat().st_size}"


def schema_description(schema: pa.Schema) -> dict[str, str]:
    return {field.name: str(field.type) for field in schema}


def new_manifest(model: EmbeddingSpaceModel, k: int, svd_directions: int = SVD_DIRECTIONS) -> dict:
    """The manifest of an atlas of `model` with N = k (and the first `svd_directions` SVD directions stored)."""
    info = model.info
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": info.source,
        "revision": info.revision,
        "embedding": info.embedding,
        "k": k,
        "svd_directions": svd_directions,
        "config_sha256": config_sha256(model),
        "weights": weight_hashes(model),
        "shape": vars(info.shape),
        "embspace_version": embspace_version(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "filter": "default: special tokens and padding rows dropped; no pair filter",
        "head_scores": HEAD_SCORE_MEANING,
        "tables": {name: {"path": PATHS[name], "schema": schema_description(SCHEMAS[name])} for name in SCHEMAS},
    }


def read_manifest(directory: Path) -> dict:
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AtlasError(f"{directory} holds no atlas ({MANIFEST} is missing).") from None
    except (OSError, ValueError) as err:
        raise AtlasError(f"{path} cannot be read as JSON ({err}).") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise AtlasError(f"{path} is not an embspace atlas manifest.")
    return manifest


def describe(manifest: dict) -> str:
    return (
        f"{manifest.get('model')} (revision {manifest.get('revision') or 'default'}, "
        f"embedding {manifest.get('embedding')}, N={manifest.get('k')})"
    )


def check_same_atlas(existing: dict, wanted: dict, directory: Path) -> None:
    """Raise AtlasError when `directory`'s atlas was built for another model, revision, embedding or N."""
    differs = [key for key in IDENTITY_KEYS if existing.get(key) != wanted.get(key)]
    if differs:
        raise AtlasError(
            f"{directory} holds an atlas of {describe(existing)}, not {describe(wanted)} "
            f"({', '.join(differs)} differ); nothing was overwritten: choose another --out."
        )


def head_pair_columns(found, layer: int, head: int) -> dict[str, np.ndarray]:
    """One head's top pairs (a `compute.TopPairs`, best first) as the `pairs` table's per-row columns
    layer, head, rank, row_id, col_id, score: arrays [n] in the table's dtypes."""
    n = len(found.scores)
    return {
        "layer": np.full(n, layer, dtype=np.int32),
        "head": np.full(n, head, dtype=np.int32),
        "rank": np.arange(1, n + 1, dtype=np.int32),
        "row_id": found.row_ids.astype(np.int32),
        "col_id": found.col_ids.astype(np.int32),
        "score": found.scores.astype(np.float32),
    }
