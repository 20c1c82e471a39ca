"""Importing an annotation file: planned first (add / change / conflict / unchanged against the store),
then applied in one transaction, all or nothing."""

from __future__ import annotations

from dataclasses import dataclass, replace

from embspace.annotations.files import AnnotationDocument
from embspace.annotations.records import Annotation, AnnotationError, Conflict, InvalidAnnotation, ShapeLike, check_key
from embspace.annotations.store import AnnotationStore

PLAN_ACTIONS = ("add", "change", "conflict", "unchanged")
ON_CONFLICT = ("refuse", "keep", "overwrite")  # keep: what is stored wins; overwrite: the file's text wins


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
