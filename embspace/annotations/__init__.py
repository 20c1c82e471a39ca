"""Labels and notes on views, kept in SQLite (versioned rows, no lost write), with JSON export and import."""

from embspace.annotations.files import open_store
from embspace.annotations.store import AnnotationError, AnnotationKey, AnnotationStore, Conflict, model_identity

__all__ = ["AnnotationError", "AnnotationKey", "AnnotationStore", "Conflict", "model_identity", "open_store"]
