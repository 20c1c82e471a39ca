"""Labels and notes on views, kept in SQLite (versioned rows, no lost write), with JSON export and import.

records (the key of a view, an annotation, their checks and errors) -> database (the SQLite file)
-> store (the versioned store) -> files (the JSON export file, the shipped set, `open_store`)
-> importing (plan an import, then apply it all or nothing).
"""

from embspace.annotations.database import DB_FILE
from embspace.annotations.files import (
    SCHEMA,
    SCHEMA_VERSION,
    AnnotationDocument,
    export_document,
    load_seed,
    open_store,
    parse_document,
    read_document,
    write_export,
)
from embspace.annotations.importing import (
    ON_CONFLICT,
    PLAN_ACTIONS,
    ImportPlan,
    PlannedChange,
    apply_import,
    plan_import,
)
from embspace.annotations.records import (
    MAX_AUTHOR_CHARS,
    MAX_LABEL_CHARS,
    MAX_NOTE_CHARS,
    Annotation,
    AnnotationError,
    AnnotationKey,
    Conflict,
    InvalidAnnotation,
    ReadOnlyStore,
    ShapeLike,
    StoreBusy,
    check_key,
    check_text,
    model_identity,
)
from embspace.annotations.store import AnnotationStore

__all__ = [
    # records
    "MAX_AUTHOR_CHARS",
    "MAX_LABEL_CHARS",
    "MAX_NOTE_CHARS",
    "Annotation",
    "AnnotationError",
    "AnnotationKey",
    "Conflict",
    "InvalidAnnotation",
    "ReadOnlyStore",
    "ShapeLike",
    "StoreBusy",
    "check_key",
    "check_text",
    "model_identity",
    # database, store
    "DB_FILE",
    "AnnotationStore",
    # files
    "SCHEMA",
    "SCHEMA_VERSION",
    "AnnotationDocument",
    "export_document",
    "load_seed",
    "open_store",
    "parse_document",
    "read_document",
    "write_export",
    # importing
    "ON_CONFLICT",
    "PLAN_ACTIONS",
    "ImportPlan",
    "PlannedChange",
    "apply_import",
    "plan_import",
]
