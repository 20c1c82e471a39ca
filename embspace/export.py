"""Batch export of every layer x head's top pairs to JSONL, resumable after an interruption."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from embspace.errors import EmbspaceError
from embspace.filters import PairFilter, VocabFilter
from embspace.model import EmbeddingSpaceModel
from embspace.projections import head_top_pairs


@dataclass(frozen=True)
class ExportSummary:
    """How many heads were written now and how many an earlier run had already written."""

    path: Path
    written: int
    skipped: int


def export_spec(model: EmbeddingSpaceModel, kind: str, k: int, vocab_filter, pair_filter, negative: bool) -> dict:
    """Everything that identifies one export line besides (layer, head): a rerun skips matching lines."""
    return {
        "model": model.info.source,
        "weights": model.info.path,  # resolved directory (a hub snapshot names its commit)
        "revision": model.info.revision,
        "embedding": model.info.embedding,
        "kind": kind,
        "k": k,
        "negative": negative,
        "filter": {**vocab_filter.describe(), **pair_filter.describe()},
    }


def _spec_key(record: dict) -> str:
    return json.dumps({key: record.get(key) for key in ("model", "weights", "revision", "embedding", "kind", "k", "negative", "filter")}, sort_keys=True)


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
    kind: str = "vo",
    k: int = 50,
    vocab_filter: VocabFilter | None = None,
    pair_filter: PairFilter | None = None,
    negative: bool = False,
    layers: list[int] | None = None,
    progress: Callable[[int, int, int, int], None] | None = None,
) -> ExportSummary:
    """Append one JSON line per (layer, head) with its top pairs; heads already in the file are skipped.

    progress(done, total, layer, head) is called after each head.
    """
    out_path = Path(out_path)
    vocab_filter = vocab_filter or VocabFilter()
    pair_filter = pair_filter or PairFilter()
    spec = export_spec(model, kind, k, vocab_filter, pair_filter, negative)
    done = read_done_heads(out_path, spec)
    layers = list(range(model.shape.n_layers)) if layers is None else layers
    heads = [(layer, head) for layer in layers for head in range(model.shape.n_heads)]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    written = skipped = 0
    with out_path.open("a", encoding="utf-8") as handle:
        for index, (layer, head) in enumerate(heads, start=1):
            if (layer, head) in done:
                skipped += 1
            else:
                table = head_top_pairs(model, kind, layer, head, k, vocab_filter, pair_filter, negative)
                record = {**spec, "layer": layer, "head": head, "pairs": table.to_records()}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                handle.flush()
                os.fsync(handle.fileno())  # a crash loses at most the head being written
                written += 1
            if progress:
                progress(index, len(heads), layer, head)
    return ExportSummary(out_path, written, skipped)
