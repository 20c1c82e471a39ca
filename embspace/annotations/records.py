"""What an annotation is: the key of the view it is about, the annotation itself, their checks and errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from embspace.errors import Busy, EmbspaceError
from embspace.model.embedding_space import EmbeddingSpaceModel, ModelInfo
from embspace.views import VIEW_KIND_NAMES, VIEW_KINDS, ViewKind

MAX_LABEL_CHARS = 200
MAX_NOTE_CHARS = 20_000
MAX_AUTHOR_CHARS = 80


class AnnotationError(EmbspaceError):
    """An annotation could not be read or written; the message says why and what to do."""


class InvalidAnnotation(AnnotationError, ValueError):
    """Bad input (unknown kind, a layer/head/neuron the model lacks, a label too long); nothing was changed."""


class ReadOnlyStore(AnnotationError):
    """The store cannot be written (operator's read-only mode, read-only or corrupt database file)."""


class StoreBusy(AnnotationError, Busy):
    """Another writer held the database longer than the busy timeout; nothing was changed, try again."""


class ShapeLike(Protocol):
    """The sizes an annotation is checked against (`layout.ModelShape` fits)."""

    n_layers: int
    n_heads: int
    d_ff: int


def model_identity(info: ModelInfo) -> tuple[str, str]:
    """(model id, revision) annotations are keyed by, from a `model.ModelInfo`.

    Hub and bundled models: the id as opened; a local directory: its resolved path, so "./m" and "m" agree.
    """
    if getattr(info, "origin", None) == "local":
        return str(Path(info.path).resolve()), info.revision or ""
    return info.source, info.revision or ""


@dataclass(frozen=True)
class AnnotationKey:
    """Which view an annotation is about: index is the head for vo/qk, the neuron for neuron."""

    model_id: str
    revision: str  # "" = the default revision
    kind: str  # a view kind: one of embspace.views.VIEW_KIND_NAMES
    layer: int
    index: int

    def __post_init__(self):
        if self.revision is None:  # None and "" both mean the default revision
            object.__setattr__(self, "revision", "")

    @classmethod
    def for_view(cls, model: EmbeddingSpaceModel, kind: str, layer: int, index: int) -> AnnotationKey:
        """The key of the view (kind, layer, index) of an opened model (keyed by `model_identity`)."""
        model_id, revision = model_identity(model.info)
        return cls(model_id, revision, kind, layer, index)

    @property
    def view(self) -> ViewKind:
        """The view kind (title, page, address); KeyError for a kind `check_key` would refuse."""
        return VIEW_KINDS[self.kind]

    def describe(self) -> str:
        """The view in words: "neuron 15 of layer 0", "W_VO head 2 of layer 1"."""
        view = VIEW_KINDS.get(self.kind)
        if view is None or not view.is_head:
            return f"neuron {self.index} of layer {self.layer}"
        return f"{view.title} head {self.index} of layer {self.layer}"


@dataclass(frozen=True)
class Annotation:
    """One saved annotation. version counts saves from 1; 0 marks a row of the shipped read-only set."""

    model_id: str
    revision: str
    kind: str
    layer: int
    index: int
    label: str
    note: str = ""
    author: str | None = None
    updated: str = ""  # UTC, ISO 8601 ("2026-11-23T21:40:05Z")
    version: int = 0
    origin: str = "store"  # "store" (the database) or "seed" (the operator's shipped set)

    @classmethod
    def for_key(
        cls, key: AnnotationKey, label: str, note: str = "", author: str | None = None, updated: str = "", version=0
    ) -> Annotation:
        """The annotation of `key`'s view with this text."""
        return cls(key.model_id, key.revision, key.kind, key.layer, key.index, label, note, author, updated, version)

    @property
    def key(self) -> AnnotationKey:
        return AnnotationKey(self.model_id, self.revision, self.kind, self.layer, self.index)

    def to_record(self) -> dict:
        """The JSON form used by export files and `annotations list --json` (model and revision left out)."""
        return {
            "kind": self.kind,
            "layer": self.layer,
            "index": self.index,
            "label": self.label,
            "note": self.note,
            "author": self.author,
            "updated": self.updated,
            "version": self.version,
        }


class Conflict(AnnotationError):
    """A save based on a stale version: `theirs` is what is stored now (None: deleted), `mine` what was sent."""

    def __init__(self, key: AnnotationKey, theirs: Annotation | None, mine: Annotation, base_version: int):
        self.key, self.theirs, self.mine, self.base_version = key, theirs, mine, base_version
        stored = f"version {theirs.version} is stored" if theirs else "it is no longer stored"
        if base_version == 0 and theirs is not None:
            stored = f"someone else created it (version {theirs.version})"
        super().__init__(
            f"{key.describe()} changed since you opened it ({stored}, you edited version {base_version}): "
            f"nothing was saved; reload it and merge. Theirs: {_preview(theirs)} | yours: {_preview(mine)}"
        )


def _preview(annotation: Annotation | None) -> str:
    if annotation is None:
        return "(none)"
    note = annotation.note.replace("\n", " ")
    return repr(annotation.label) + (f" / note {note[:60]!r}{'...' * (len(note) > 60)}" if note else "")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def check_key(key: AnnotationKey, shape: ShapeLike | None = None) -> None:
    """Raise InvalidAnnotation unless the key names a view that exists (in `shape`, when given)."""
    if not isinstance(key.model_id, str) or not key.model_id:
        raise InvalidAnnotation("an annotation needs the model id it belongs to.")
    if not isinstance(key.revision, str):
        raise InvalidAnnotation(f"revision must be text, not {key.revision!r}.")
    if key.kind not in VIEW_KIND_NAMES:
        raise InvalidAnnotation(f"kind must be one of {', '.join(VIEW_KIND_NAMES)}, not {key.kind!r}.")
    for what, value in (("layer", key.layer), ("index", key.index)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidAnnotation(f"{what} must be a whole number >= 0, not {value!r}.")
    if shape is None:
        return
    if key.layer >= shape.n_layers:
        raise InvalidAnnotation(f"layer {key.layer} is out of range: this model has layers 0..{shape.n_layers - 1}.")
    unit, size = ("head", shape.n_heads) if key.view.is_head else ("neuron", shape.d_ff)
    if key.index >= size:
        raise InvalidAnnotation(f"{unit} {key.index} is out of range: this model has {unit}s 0..{size - 1} per layer.")


def check_text(label: str, note: str | None, author: str | None) -> tuple[str, str, str | None]:
    """(label, note, author) cleaned (label and author stripped, empty author -> None), or InvalidAnnotation."""
    note = "" if note is None else note
    for what, value in (("label", label), ("note", note), ("author", author)):
        if value is not None and not isinstance(value, str):
            raise InvalidAnnotation(f"{what} must be text, not {type(value).__name__}.")
    label, author = label.strip(), (author or "").strip() or None
    for what, value, cap in (
        ("label", label, MAX_LABEL_CHARS),
        ("note", note, MAX_NOTE_CHARS),
        ("author", author or "", MAX_AUTHOR_CHARS),
    ):
        if len(value) > cap:
            hint = " (put longer text in the note)" if what == "label" else ""
            raise InvalidAnnotation(f"the {what} is {len(value):,} characters long; at most {cap:,} are allowed{hint}.")
        if "\x00" in value:
            raise InvalidAnnotation(f"the {what} contains a NUL character.")
    for what, value in (("label", label), ("author", author or "")):
        if any(ch in value for ch in "\r\n\t"):
            raise InvalidAnnotation(f"the {what} must be one line (put line breaks in the note).")
    if not label and not note:
        raise InvalidAnnotation("give a label or a note (an annotation with neither says nothing).")
    return label, note, author
