"""Annotations as JSON files (one per model, schema "embspace-annotations" version 1; docs/annotations-schema.md):
export, import planned first (add / change / conflict / unchanged) then applied all or nothing, and the
operator's shipped read-only set.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from embspace.annotations.store import (
    DEFAULT_BUSY_TIMEOUT_S,
    Annotation,
    AnnotationError,
    AnnotationKey,
    AnnotationStore,
    Conflict,
    InvalidAnnotation,
    ShapeLike,
    check_key,
    check_text,
)
from embspace.settings import SEED_ENV, AnnotationSettings

SCHEMA = "embspace-annotations"
SCHEMA_VERSION = 1
MAX_FILE_BYTES = 64 * 2**20  # 3,000 full-length notes; a bigger file is not an annotation set
PLAN_ACTIONS = ("add", "change", "conflict", "unchanged")
ON_CONFLICT = ("refuse", "keep", "overwrite")  # keep: what is stored wins; overwrite: the file's text wins


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
    text = json.dumps(document, ensure_ascii=False, indent=1) + "\n"
    handle, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
    return Annotation(model_id, revision, key.kind, key.layer, key.index, label, note, author, updated, version)


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


@dataclass(frozen=True)
class PlannedChange:
    """What importing one annotation would do; `stored` is the row in the store now (None for add)."""

    action: str  # one of PLAN_ACTIONS
    incoming: Annotation
    stored: Annotation | None

    def to_record(self) -> dict:
        record = {"action": self.action, **self.incoming.to_record()}
        if self.stored is not None:
            record["stored"] = self.stored.to_record()
        return record


@dataclass(frozen=True)
class ImportPlan:
    """Every annotation of a file, sorted into add / change / conflict / unchanged against the store."""

    model_id: str
    revision: str
    changes: tuple[PlannedChange, ...]

    def counts(self) -> dict[str, int]:
        return {action: sum(c.action == action for c in self.changes) for action in PLAN_ACTIONS}

    @property
    def conflicts(self) -> tuple[PlannedChange, ...]:
        return tuple(c for c in self.changes if c.action == "conflict")

    def summary(self) -> str:
        n = self.counts()
        return f"{n['add']} to add, {n['change']} to change, {n['conflict']} in conflict, {n['unchanged']} unchanged"


def plan_import(
    store: AnnotationStore,
    document: AnnotationDocument,
    model_id: str,
    revision: str | None,
    *,
    shape: ShapeLike | None = None,
    allow_other_model: bool = False,
) -> ImportPlan:
    """Sort the document's annotations against the store (nothing is written).

    change: the stored row is no newer than the file's (stored version <= file version), so the file's
    text follows it; conflict: the store was edited after the file's version. Raises InvalidAnnotation
    when the file is for another model (unless allow_other_model) or names a view `shape` lacks.
    """
    revision = revision or ""
    if (document.model_id, document.revision) != (model_id, revision) and not allow_other_model:
        theirs = document.model_id + (f" (revision {document.revision})" if document.revision else "")
        raise InvalidAnnotation(
            f"the file holds annotations of {theirs}, not of the opened model {model_id}"
            f"{f' (revision {revision})' if revision else ''}: import it into its own model, "
            f"or allow another model's annotations explicitly."
        )
    stored = {a.key: a for a in store.list(model_id, revision) if a.origin == "store"}
    changes = []
    for i, annotation in enumerate(document.annotations):
        incoming = replace(annotation, model_id=model_id, revision=revision)
        try:
            check_key(incoming.key, shape)
        except InvalidAnnotation as err:
            raise InvalidAnnotation(f"annotations[{i}]: {err} Nothing was imported.") from None
        current = stored.get(incoming.key)
        if current is None:
            action = "add"
        elif (current.label, current.note) == (incoming.label, incoming.note):
            action = "unchanged"
        else:
            action = "change" if current.version <= incoming.version else "conflict"
        changes.append(PlannedChange(action, incoming, current))
    return ImportPlan(model_id, revision, tuple(changes))


def apply_import(store: AnnotationStore, plan: ImportPlan, *, on_conflict: str = "refuse") -> list[Annotation]:
    """Apply a plan in one transaction, all or nothing; returns the rows written.

    on_conflict: "refuse" (raise, write nothing), "keep" (leave conflicting rows as stored) or
    "overwrite" (the file's text wins). A store changed since the plan was made -> nothing is written.
    """
    if on_conflict not in ON_CONFLICT:
        raise ValueError(f"on_conflict must be one of {', '.join(ON_CONFLICT)}, not {on_conflict!r}.")
    if plan.conflicts and on_conflict == "refuse":
        first = plan.conflicts[0]
        raise AnnotationError(
            f"{len(plan.conflicts)} conflict{'s' * (len(plan.conflicts) > 1)} (first: {first.incoming.key.describe()}, "
            f"stored version {first.stored.version} is newer than the file's {first.incoming.version}): nothing was "
            f"imported; choose to keep what is stored or to overwrite it with the file's text."
        )
    chosen = [
        c
        for c in plan.changes
        if c.action in ("add", "change") or (c.action == "conflict" and on_conflict == "overwrite")
    ]
    rows = [c.incoming for c in chosen]
    bases = [c.stored.version if c.stored else 0 for c in chosen]
    try:
        return store.write_all(rows, bases)
    except Conflict as err:
        raise AnnotationError(
            f"the store changed after the import was planned ({err.key.describe()}): nothing "
            f"was imported; plan the import again."
        ) from err
