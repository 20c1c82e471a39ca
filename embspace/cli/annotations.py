"""`python -m embspace annotations set|list|export|import`: labels and notes on heads and neurons from the shell."""

from __future__ import annotations

import argparse
import json
import sys

from embspace.annotations import (
    ON_CONFLICT,
    AnnotationError,
    AnnotationKey,
    AnnotationStore,
    ImportPlan,
    apply_import,
    check_key,
    model_identity,
    open_store,
    plan_import,
    read_document,
    write_export,
)
from embspace.model.embedding_space import EmbeddingSpaceModel
from embspace.views import VIEW_KIND_NAMES


def register(commands, model_args: argparse.ArgumentParser) -> dict:
    """Add `annotations` and its four actions to the CLI's subcommands (`model_args`: MODEL, --revision, --json);
    returns {command: run function} for cli.COMMANDS."""
    parser = commands.add_parser(
        "annotations", help="labels and notes on heads and neurons (set, list, export, import)"
    )
    actions = parser.add_subparsers(dest="annotations_action", required=True, metavar="{set,list,export,import}")
    set_ = actions.add_parser("set", parents=[model_args], help="save a label (and note) for a neuron or head")
    set_.add_argument("--kind", choices=VIEW_KIND_NAMES, required=True, help="neuron, or a head's vo / qk view")
    set_.add_argument("--layer", type=int, required=True)
    set_.add_argument("--index", type=int, required=True, help="the neuron (kind neuron) or the head (vo, qk)")
    set_.add_argument("--label", required=True, help="short label (one line)")
    set_.add_argument("--note", default=None, help="free text, markdown (default: keep the stored note)")
    set_.add_argument("--author", default=None, help="display name saved with the edit")
    set_.add_argument(
        "--base-version",
        type=int,
        default=None,
        help="refuse unless the stored version is this one (0: not stored yet); default: the stored one",
    )
    actions.add_parser("list", parents=[model_args], help="every annotation of the model")
    export = actions.add_parser("export", parents=[model_args], help="write the model's annotations to a JSON file")
    export.add_argument("--out", required=True, metavar="FILE", help="JSON file (schema embspace-annotations, v1)")
    import_ = actions.add_parser("import", parents=[model_args], help="show what a JSON file changes, then apply it")
    import_.add_argument("file", metavar="FILE", help="a file written by `annotations export`")
    import_.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    import_.add_argument(
        "--on-conflict",
        choices=ON_CONFLICT,
        default="refuse",
        help="refuse (default): import nothing if any conflict; keep: stored text wins; overwrite: file wins",
    )
    import_.add_argument(
        "--allow-other-model",
        action="store_true",
        help="import a file exported from another model (or revision) into this one",
    )
    return {"annotations": run}


def run(args, model: EmbeddingSpaceModel) -> None:
    """Run the chosen action on the opened model's annotations."""
    store = open_store()
    writes = args.annotations_action == "set" or (args.annotations_action == "import" and not args.dry_run)
    if writes:
        store.check_writable()  # before any plan is printed: one error line says why not
    for message in store.warnings + ((store.read_only_reason,) if store.read_only_reason else ()):
        print(f"note: {message}", file=sys.stderr)
    ACTIONS[args.annotations_action](args, model, store)


def run_set(args, model: EmbeddingSpaceModel, store: AnnotationStore) -> None:
    key = AnnotationKey.for_view(model, args.kind, args.layer, args.index)
    check_key(key, model.shape)  # a clear range error before anything else
    current = store.get(key)
    base = args.base_version if args.base_version is not None else (current.version if current else 0)
    note = args.note if args.note is not None else (current.note if current else "")
    saved = store.save(key, args.label, note, args.author, base, shape=model.shape)
    if args.json:
        print(json.dumps(saved.to_record(), ensure_ascii=False))
    else:
        print(f"saved {key.describe()}: {saved.label!r} (version {saved.version})")


def run_list(args, model: EmbeddingSpaceModel, store: AnnotationStore) -> None:
    model_id, revision = model_identity(model.info)
    annotations = store.list(model_id, revision)
    if args.json:
        records = [
            {**a.to_record(), "model": model_id, "revision": revision or None, "origin": a.origin} for a in annotations
        ]
        print(json.dumps(records, ensure_ascii=False, indent=1))
        return
    if not annotations:
        print(f"no annotations of {model_id} in {store.path}")
        return
    print(f"{'kind':<7}{'layer':>6}{'index':>7}{'version':>8}  label  |  note")
    for a in annotations:
        note = a.note.strip().splitlines()[0] if a.note.strip() else ""
        print(f"{a.kind:<7}{a.layer:>6}{a.index:>7}{a.version:>8}  {a.label}" + (f"  |  {note[:80]}" if note else ""))


def run_export(args, model: EmbeddingSpaceModel, store: AnnotationStore) -> None:
    model_id, revision = model_identity(model.info)
    written = write_export(store, model_id, revision, args.out)
    if args.json:
        print(json.dumps({"out": args.out, "annotations": written}))
    else:
        print(f"wrote {written} annotation{'s' * (written != 1)} of {model_id} to {args.out}")


def run_import(args, model: EmbeddingSpaceModel, store: AnnotationStore) -> None:
    model_id, revision = model_identity(model.info)
    document = read_document(args.file)
    plan = plan_import(store, document, model_id, revision, shape=model.shape, allow_other_model=args.allow_other_model)
    if args.json:
        print(
            json.dumps(
                {"plan": plan.counts(), "changes": [c.to_record() for c in plan.changes]}, ensure_ascii=False, indent=1
            )
        )
    else:
        print_plan(plan, args.file)
    if args.dry_run:
        print("dry run: nothing was written", file=sys.stderr)
        return
    if plan.conflicts and args.on_conflict == "refuse":
        raise AnnotationError(
            f"{len(plan.conflicts)} conflict(s): nothing was imported; rerun with --on-conflict "
            f"keep (stored text wins) or --on-conflict overwrite (the file's text wins)."
        )
    written = apply_import(store, plan, on_conflict=args.on_conflict)
    print(f"imported: {len(written)} annotation{'s' * (len(written) != 1)} written", file=sys.stderr)


def print_plan(plan: ImportPlan, source: str) -> None:
    """One line per annotation the import would touch, conflicts with both labels."""
    print(f"import {source} into {plan.model_id}: {plan.summary()}")
    for change in plan.changes:
        if change.action == "unchanged":
            continue
        where = f"{change.incoming.kind} layer {change.incoming.layer} index {change.incoming.index}"
        line = f"  {change.action:<9}{where}: {change.incoming.label!r}"
        if change.stored is not None:
            line += (
                f" (stored: {change.stored.label!r}, version {change.stored.version}; file version "
                f"{change.incoming.version})"
            )
        print(line)


ACTIONS = {"set": run_set, "list": run_list, "export": run_export, "import": run_import}
