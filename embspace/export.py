"""Batch export of every layer x head's top pairs to JSONL, resumable after an interruption."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from embspace.compute.heads import HeadKind, head_kind
from embspace.compute.projections import head_top_pairs
from embspace.errors import Busy, EmbspaceError
from embspace.files import flock
from embspace.model.embedding_space import EmbeddingSpaceModel, check_k
from embspace.runtime import scan_workers, scan_workers_at_most
from embspace.vocab.filters import PairFilter, VocabFilter


@dataclass(frozen=True)
class ExportSummary:
    """How many heads were written now and how many an earlier run had already written."""

    path: Path
    written: int
    skipped: int


def export_spec(
    model: EmbeddingSpaceModel, kind: str | HeadKind, k: int, vocab_filter, pair_filter, negative: bool
) -> dict:
    """Everything that identifies one export line besides (layer, head): a rerun skips matching lines.

    "matrix", "rows" and "columns" only describe the kind for readers; they are not part of the key.
    """
    spec = head_kind(kind)
    return {
        "model": model.info.source,
        "weights": model.info.path,  # resolved directory (a hub snapshot names its commit)
        "revision": model.info.revision,
        "embedding": model.info.embedding,
        "kind": spec.name,
        "matrix": f"{spec.title} = {spec.formula}",
        "rows": spec.rows,
        "columns": spec.columns,
        "k": k,
        "negative": negative,
        "filter": {**vocab_filter.describe(), **pair_filter.describe()},
    }


def _spec_key(record: dict) -> str:
    return json.dumps(
        {
            key: record.get(key)
            for key in ("model", "weights", "revision", "embedding", "kind", "k", "negative", "filter")
        },
        sort_keys=True,
    )


def _parse_line(raw: bytes) -> dict | None:
    """A complete export record, or None (torn, not JSON, not a record)."""
    if not raw.endswith(b"\n"):
        return None
    try:
        record = json.loads(raw)
    except ValueError:  # JSONDecodeError, and UnicodeDecodeError for a line cut inside a character
        return None
    if not isinstance(record, dict) or not {"layer", "head"} <= record.keys():
        return None
    return record


def read_done_heads(path: Path, spec: dict) -> set[tuple[int, int]]:
    """(layer, head) already exported with `spec`; a torn last line (killed mid-write) is cut off."""
    if not path.exists():
        return set()
    done: set[tuple[int, int]] = set()
    wanted = _spec_key(spec)
    good_bytes = 0
    lines = path.read_bytes().splitlines(keepends=True)
    for number, raw in enumerate(lines, start=1):
        record = _parse_line(raw)
        if record is None:
            if number == len(lines):
                break  # the last line was cut off by a killed run: drop it and redo that head
            raise EmbspaceError(
                f"{path} line {number} is not an export record; refusing to append to it. "
                "Write to a new file, or remove that line."
            )
        good_bytes += len(raw)
        if _spec_key(record) == wanted:
            done.add((record["layer"], record["head"]))
    if good_bytes < path.stat().st_size:
        with path.open("r+b") as handle:
            handle.truncate(good_bytes)
    return done


def export_heads(
    model: EmbeddingSpaceModel,
    out_path: str | Path,
    *,
    kind: str | HeadKind = "vo",
    k: int = 50,
    vocab_filter: VocabFilter | None = None,
    pair_filter: PairFilter | None = None,
    negative: bool = False,
    layers: list[int] | None = None,
    progress: Callable[[int, int, int, int], None] | None = None,
) -> ExportSummary:
    """Append one JSON line per (layer, head) with its top pairs; heads already in the file are skipped.

    progress(done, total, layer, head) is called after each head. `out_path` must be a regular file
    (or not exist yet); while one export writes it, a second one is refused (Busy).
    """
    check_k(k)
    kind = head_kind(kind).name  # a bad kind fails before the output file is touched
    out_path = Path(out_path)
    vocab_filter = vocab_filter or VocabFilter()
    pair_filter = pair_filter or PairFilter()
    spec = export_spec(model, kind, k, vocab_filter, pair_filter, negative)
    layers = list(range(model.shape.n_layers)) if layers is None else layers
    heads = [(layer, head) for layer in layers for head in range(model.shape.n_heads)]
    written = skipped = 0
    with locked_output(out_path) as handle:
        done = read_done_heads(out_path, spec)
        todo = [(layer, head) for layer, head in heads if (layer, head) not in done]
        compute = functools.partial(_one_head, model, kind, k, vocab_filter, pair_filter, negative)
        # One head per core, each scanned by one worker: the serial parts of a head (factors, bounds,
        # sorting) overlap with the other head's instead of leaving a core idle.
        pool = ThreadPoolExecutor(max(1, scan_workers()), thread_name_prefix="embspace-export")
        try:
            tables = pool.map(compute, todo)  # in order
            for index, (layer, head) in enumerate(heads, start=1):
                if (layer, head) in done:
                    skipped += 1
                else:
                    record = {**spec, "layer": layer, "head": head, "pairs": next(tables).to_records()}
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())  # a crash loses at most the heads being computed
                    written += 1
                if progress:
                    progress(index, len(heads), layer, head)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return ExportSummary(out_path, written, skipped)


def _one_head(model, kind, k, vocab_filter, pair_filter, negative, layer_head: tuple[int, int]):
    with scan_workers_at_most(1):
        return head_top_pairs(model, kind, *layer_head, k, vocab_filter, pair_filter, negative)


def check_regular_file(path: Path) -> None:
    """Raise EmbspaceError unless `path` is a regular file or does not exist (a device, FIFO or directory
    would be written forever, block, or fail half-way)."""
    try:
        mode = path.stat().st_mode  # follows links: a link to /dev/full is a device
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        what = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        raise EmbspaceError(f"{path} is {what}: give the path of a regular .jsonl file to export to.")


@contextlib.contextmanager
def locked_output(path: Path) -> Iterator[IO[str]]:
    """`path` opened for appending under an exclusive lock; Busy if another export holds it."""
    check_regular_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_NONBLOCK: a FIFO put there since the check must not block the open; fstat below refuses it.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise EmbspaceError(f"{path} is not a regular file: give the path of a regular .jsonl file to export to.")
        os.set_blocking(fd, True)
        try:  # on the descriptor just checked: a second open by path could meet a FIFO swapped in since
            flock(fd, wait=False)
        except BlockingIOError:
            raise Busy(
                f"another export is writing to {path} right now; wait for it to finish (a rerun then "
                "skips the heads it wrote), or export to another file."
            ) from None
        yield handle
