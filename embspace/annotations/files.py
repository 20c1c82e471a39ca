"""Annotations as JSON files (one per model, schema "embspace-annotations" version 1; docs/annotations-schema.md):
the export, reading and checking a file, and the operator's shipped read-only set that `open_store` loads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from embspace.annotations.records import (
    Annotation,
    AnnotationError,
    AnnotationKey,
    InvalidAnnotation,
    check_key,
    check_text,
)
from embspace.annotations.store import DEFAULT_BUSY_TIMEOUT_S, AnnotationStore
from embspace.files import write_json_atomic
from embspace.settings import SEED_ENV, AnnotationSettings

SCHEMA = "embspace-annotations"
SCHEMA_VERSION = 1
MAX_FILE_BYTES = 64 * 2**20  # 3,000 full-length notes; a bigger file is not an annotation set


@dataclass(frozen=True)
class AnnotationDocument:
    """A parsed, checked annotation file: the model it was exported from and its annotations."""

    model_id: str
    revision: str  # "" = the default revision
    annotations: tuple[Annotation, ...]


def export_document(store: AnnotationStore, model_id: str, revision: str | None) -> dict:
    """The JSON document of every annotation of one model (stored rows and the shipped set's)."""
    return {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "model": model_id,
        "revision": revision or None,
        "annotations": [a.to_record() for a in store.list(model_id, revision)],
    }


def write_export(store: AnnotationStore, model_id: str, revision: str | None, out: str | Path) -> int:
    """Write the export file atomically (a reader never sees half a file); returns how many annotations."""
    out = Path(out)
    if out.is_dir():
        raise AnnotationError(f"--out {out} is a directory: give a file name, e.g. {out / 'annotations.json'}.")
    document = export_document(store, model_id, revision)
    write_json_atomic(out, document, indent=1)
    return len(document["annotations"])


def read_document(path: str | Path) -> AnnotationDocument:
    """Read and check an export file; InvalidAnnotation naming the file and the fault, else the document."""
    path = Path(path)
    if not path.is_file():
        raise InvalidAnnotation(f"{path} is not a file.")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InvalidAnnotation(f"{path} is {size:,} bytes; an annotation file may be at most {MAX_FILE_BYTES:,}.")
    return parse_document(path.read_bytes(), source=str(path))


def parse_document(data: str | bytes, *, source: str = "the file") -> AnnotationDocument:
    """Check an export document (schema, version, model, each annotation's fields); nothing is written."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        document = json.loads(text)
    except UnicodeDecodeError:
        raise InvalidAnnotation(f"{source} is not UTF-8 text, so not an annotation file.") from None
    except json.JSONDecodeError as err:
        raise InvalidAnnotation(
            f"{source} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})."
        ) from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise InvalidAnnotation(f'{source} is not an embspace annotation file (no "schema": "{SCHEMA}").')
    version = document.get("version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        newer = isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION
        why = "written by a newer embspace; upgrade to import it" if newer else "not a version this embspace reads"
        raise InvalidAnnotation(
            f"{source} has schema version {version!r} ({why}); this embspace reads version {SCHEMA_VERSION}."
        )
    model_id, revision = document.get("model"), document.get("revision")
    if not isinstance(model_id, str) or not model_id:
        raise InvalidAnnotation(f'{source}: "model" must name the model the annotations belong to.')
    if revision is not None and not isinstance(revision, str):
        raise InvalidAnnotation(f'{source}: "revision" must be text or null, not {revision!r}.')
    records = document.get("annotations")
    if not isinstance(records, list):
        raise InvalidAnnotation(f'{source}: "annotations" must be a list.')
    annotations = tuple(
        _parse_record(r, model_id, revision or "", f"{source}: annotations[{i}]") for i, r in enumerate(records)
    )
    seen: dict[AnnotationKey, int] = {}
    for i, annotation in enumerate(annotations):
        if annotation.key in seen:
            raise InvalidAnnotation(
                f"{source}: annotations[{i}] repeats annotations[{seen[annotation.key]}] ({annotation.key.describe()})."
            )
        seen[annotation.key] = i
    return AnnotationDocument(model_id, revision or "", annotations)


def _parse_record(record, model_id: str, revision: str, where: str) -> Annotation:
    """One annotation of a document, checked like a save (kind, sizes, text); InvalidAnnotation says where."""
    if not isinstance(record, dict):
        raise InvalidAnnotation(f"{where} must be an object with kind, layer, index, label.")
    missing = [name for name in ("kind", "layer", "index", "label") if name not in record]
    if missing:
        raise InvalidAnnotation(f"{where} lacks {', '.join(missing)}.")
    version, updated = record.get("version", 0), record.get("updated") or ""
    try:
        key = AnnotationKey(model_id, revision, record["kind"], record["layer"], record["index"])
        check_key(key)
        label, note, author = check_text(record["label"], record.get("note"), record.get("author"))
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise InvalidAnnotation(f"version must be a whole number >= 0, not {version!r}.")
        if not isinstance(updated, str) or (updated and not _is_iso_time(updated)):
            raise InvalidAnnotation(f"updated must be an ISO 8601 time, not {updated!r}.")
    except InvalidAnnotation as err:
        raise InvalidAnnotation(f"{where}: {err}") from None
    return Annotation.for_key(key, label, note, author, updated, version)


def _is_iso_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return len(text) <= 40


def load_seed(paths: Iterable[str | Path]) -> list[Annotation]:
    """The operator's shipped read-only set: every annotation of every file (each checked like an import)."""
    return [a for path in paths for a in read_document(path).annotations]


def open_store(
    data_dir: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    secrets: Mapping | None = None,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S,
) -> AnnotationStore:
    """The store as the operator configured it (EMBSPACE_DATA_DIR, EMBSPACE_ANNOTATIONS, EMBSPACE_ANNOTATIONS_SEED).

    Never raises for a bad database or seed file: the store opens read-only (`read_only_reason` says why)
    or without the seed (`warnings` says why).
    """
    settings = AnnotationSettings.from_env(environ, secrets)
    seed, warnings = [], ()
    try:
        seed = load_seed(settings.seed_paths)
    except (AnnotationError, OSError) as err:
        warnings = (f"the shipped annotations ({SEED_ENV}) were not loaded: {err}",)
    store = AnnotationStore.open(
        data_dir if data_dir is not None else settings.data_dir,
        read_only=settings.read_only,
        seed=seed,
        busy_timeout=busy_timeout,
    )
    return replace(store, warnings=warnings)
