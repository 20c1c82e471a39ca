"""Build an atlas: every unit (layer, kind) computed once, written atomically, skipped when done."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from embspace.atlas.manifest import (
    MANIFEST,
    SCHEMAS,
    SVD_DIRECTIONS,
    AtlasError,
    check_same_atlas,
    new_manifest,
    read_manifest,
)
from embspace.atlas.ray_build import run_on_ray
from embspace.atlas.remote import check_remote_out, local_directory, upload_atlas
from embspace.atlas.units import UNIT_KINDS, Unit, Workspace, compute_unit, svd_table, token_table
from embspace.atlas.write import write_unit
from embspace.compute.devices import resolve_device
from embspace.errors import Busy, EmbspaceError
from embspace.files import TEMPORARY_SUFFIX, locked, write_json_atomic
from embspace.model.embedding_space import EmbeddingSpaceModel, check_k

DEFAULT_K = 200
LOCK_FILE = ".lock"  # held (flock) by the one build writing the directory


@dataclass(frozen=True)
class BuildSummary:
    """What one build did: units computed now, units an earlier run had finished, seconds taken."""

    directory: Path | str  # a URI for an atlas built to one
    built: int
    skipped: int
    units: int
    seconds: float

    def as_dict(self) -> dict:
        return {
            "out": str(self.directory),
            "built": self.built,
            "skipped": self.skipped,
            "units": self.units,
            "seconds": round(self.seconds, 2),
        }


def parse_layers(spec: str | None, n_layers: int) -> list[int]:
    """ "0-2,5" -> [0, 1, 2, 5]; None or "" -> every layer. Raises EmbspaceError naming the valid range."""
    if not spec:
        return list(range(n_layers))
    layers: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.strip().partition("-")
        try:
            low, high = int(first), int(last or first)
        except ValueError:
            raise EmbspaceError(f"--layers {spec!r}: write layers like 0-2,5.") from None
        if not 0 <= low <= high < n_layers:
            raise EmbspaceError(f"--layers {spec!r}: this model has layers 0..{n_layers - 1}.")
        layers.update(range(low, high + 1))
    return sorted(layers)


def build_atlas(
    model: EmbeddingSpaceModel,
    out: str | Path,
    *,
    k: int = DEFAULT_K,
    layers: list[int] | None = None,
    device: str = "cpu",
    ray_address: str | None = None,
    use_ray: bool = False,
    progress: bool = True,
    unit_kinds: tuple[str, ...] = UNIT_KINDS,
    svd_directions: int = SVD_DIRECTIONS,
) -> BuildSummary:
    """Compute the atlas of `model` into `out` (created if needed); finished partitions are kept.

    `out` may be a URI (s3://, hf://datasets/ORG/NAME, memory://...): the atlas is built in a local temporary
    directory and uploaded, manifest last; such a build does not resume (every asked layer is built anew).

    Refuses (AtlasError, nothing written) when `out` holds an atlas of another model, revision,
    embedding or N, or is a non-empty directory without one. use_ray: one Ray task per unit,
    on the cluster at `ray_address` (None: a running `ray.init()`, else a local one).
    unit_kinds: a part of each layer only ("vo", "qk", "ffn"; benchmarks build the FFN side alone).
    svd_directions: the first N singular directions of each matrix stored in the `svd` table (the Ray
    workers store the default N).
    """
    check_k(k, "--k")
    resolve_device(device)  # a missing GPU is one clear line before any work
    if local_directory(out) is None:
        check_remote_out(str(out), new_manifest(model, k, svd_directions))  # refused before any work, nothing written
        with tempfile.TemporaryDirectory(prefix="embspace-atlas-") as local:
            options = {"k": k, "layers": layers, "device": device, "ray_address": ray_address, "use_ray": use_ray}
            options["svd_directions"] = svd_directions
            summary = build_atlas(model, local, progress=progress, unit_kinds=unit_kinds, **options)
            upload_atlas(Path(local), str(out))
        return dataclasses.replace(summary, directory=str(out))
    directory = local_directory(out)
    started = time.perf_counter()
    manifest = new_manifest(model, k, svd_directions)
    if (directory / MANIFEST).exists():  # refused before the lock file is made: a foreign dir gets nothing
        check_same_atlas(read_manifest(directory), manifest, directory)
    with locked_atlas(directory):
        prepare_directory(directory, manifest)
        remove_stale_temporaries(directory)
        workspace = Workspace(model, k, device, svd_directions)
        layers = list(range(model.shape.n_layers)) if layers is None else layers
        units = [Unit(layer, kind) for layer in layers for kind in unit_kinds]
        add_missing_token_tables(directory, units, workspace)
        add_missing_svd_tables(directory, units, workspace)
        todo = [unit for unit in units if not unit_done(directory, unit, workspace)]
        with progress_bar(len(units), len(units) - len(todo), progress) as bar:
            if use_ray:
                run_on_ray(workspace, todo, directory, ray_address, bar)
            else:
                for unit in todo:
                    write_unit(directory, compute_unit(workspace, unit))
                    bar.update(1)
    return BuildSummary(directory, len(todo), len(units) - len(todo), len(units), time.perf_counter() - started)


def prepare_directory(directory: Path, manifest: dict) -> None:
    """Create `directory` with its manifest, or check that its existing manifest is for the same atlas."""
    if (directory / MANIFEST).exists():
        check_same_atlas(read_manifest(directory), manifest, directory)
        return
    if holds_other_files(directory):
        raise AtlasError(f"{directory} is not empty and holds no atlas ({MANIFEST} missing); choose another --out.")
    directory.mkdir(parents=True, exist_ok=True)
    write_json_atomic(directory / MANIFEST, manifest)


def holds_other_files(directory: Path) -> bool:
    """Whether `directory` exists and holds anything but a build's lock file (a killed build leaves one)."""
    return directory.is_dir() and any(p.name != LOCK_FILE for p in directory.iterdir())


@contextlib.contextmanager
def locked_atlas(directory: Path) -> Iterator[None]:
    """An exclusive lock on `directory` for the whole build; Busy when another build holds it."""
    if directory.exists() and not directory.is_dir():
        raise AtlasError(f"{directory} is a file: give a directory for the atlas.")
    if not (directory / MANIFEST).exists() and holds_other_files(directory):
        raise AtlasError(f"{directory} is not empty and holds no atlas ({MANIFEST} missing); choose another --out.")
    directory.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(locked(directory / LOCK_FILE, wait=False))
        except BlockingIOError:
            raise Busy(f"another build is writing the atlas in {directory}; wait for it to finish.") from None
        yield


def unit_done(directory: Path, unit: Unit, workspace: Workspace) -> bool:
    """Every partition of `unit` is a readable Parquet file with the full row count and the right schema."""
    return all(
        partition_ok(directory / path, workspace.expected_rows(path), SCHEMAS[path.split("/")[0]])
        for path in unit.paths()
    )


def add_missing_token_tables(directory: Path, units: list[Unit], workspace: Workspace) -> None:
    """Atlases built before the tokens table: derive it from a finished neurons partition, no rescan."""
    for unit in units:
        if unit.kind != "ffn":
            continue
        neurons, tokens = unit.main_paths()
        if partition_ok(directory / neurons, workspace.expected_rows(neurons), SCHEMAS["neurons"]) and not partition_ok(
            directory / tokens, workspace.expected_rows(tokens), SCHEMAS["tokens"]
        ):
            write_unit(directory, {tokens: token_table(pq.read_table(directory / neurons, schema=SCHEMAS["neurons"]))})


def add_missing_svd_tables(directory: Path, units: list[Unit], workspace: Workspace) -> None:
    """Atlases built before the SVD table: add it to finished units without recomputing the rest."""
    for unit in units:
        main_done = all(
            partition_ok(directory / path, workspace.expected_rows(path), SCHEMAS[path.split("/")[0]])
            for path in unit.main_paths()
        )
        if main_done and not partition_ok(directory / unit.svd_path(), None, SCHEMAS["svd"]):
            write_unit(directory, {unit.svd_path(): svd_table(workspace, unit)})


def partition_ok(path: Path, rows: int | None, schema: pa.Schema) -> bool:
    """A truncated or corrupt file (no valid footer), a short one or one of another schema is not done.
    rows None: any row count (a partition whose size is only known once computed)."""
    try:
        meta = pq.read_metadata(path)
    except (OSError, pa.ArrowException):
        return False
    return (rows is None or meta.num_rows == rows) and meta.schema.to_arrow_schema().remove_metadata().equals(schema)


def remove_stale_temporaries(directory: Path) -> None:
    """Temporary files of a killed build (we hold the lock, so no live build owns them)."""
    for stale in directory.glob(f"**/.*{TEMPORARY_SUFFIX}"):
        stale.unlink(missing_ok=True)


class _Progress:
    """tqdm on stderr (bar with ETA), or nothing."""

    def __init__(self, total: int, initial: int, enabled: bool):
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, initial=initial, unit="part", desc="atlas", file=sys.stderr, dynamic_ncols=True
            )

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@contextlib.contextmanager
def progress_bar(total: int, initial: int, enabled: bool) -> Iterator[_Progress]:
    bar = _Progress(total, initial, enabled)
    try:
        yield bar
    finally:
        bar.close()
