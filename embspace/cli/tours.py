"""`python -m embspace tour export|list|show|import|delete`: tours as static pages, and the tours on the data directory.

`tour` opens no model up front (`opens_model=False`): `export` opens the tour file's own model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from embspace import EmbeddingSpaceModel, open_model
from embspace.annotations import model_identity, open_store
from embspace.files import write_text_atomic
from embspace.model import check_k
from embspace.tours import Tour, TourError, TourStop, TourStore, read_tour
from embspace.tours.static_page import static_page


def register(commands) -> dict:
    """Add `tour` and its actions to the CLI's subcommands; returns {command: run function} for cli.COMMANDS."""
    parser = commands.add_parser("tour", help="tours: a static HTML page per tour; tours saved in the data directory")
    parser.set_defaults(opens_model=False, model_option=None, revision=None, embedding="auto")
    actions = parser.add_subparsers(dest="tour_action", required=True, metavar="{export,list,show,import,delete}")
    store_args = argparse.ArgumentParser(add_help=False)
    store_args.add_argument("--data-dir", metavar="DIR", help="the data directory (default: EMBSPACE_DATA_DIR)")
    store_args.add_argument("--json", action="store_true", help="machine-readable output")
    export = actions.add_parser("export", help="write a tour file as one self-contained HTML page")
    export.add_argument("file", metavar="TOUR", help="a tour file (JSON, schema 1), or the name of a stored tour")
    export.add_argument("--out", required=True, metavar="OUT.html", help="the HTML file to write")
    export.add_argument("--k", type=int, default=None, help="rows of a stop that names no k (default 20)")
    export.add_argument(
        "--data-dir", metavar="DIR", help="where a stored tour named TOUR and the views' labels are read from"
    )
    actions.add_parser("list", parents=[store_args], help="the stored tours")
    show = actions.add_parser("show", parents=[store_args], help="print a stored tour (--json: the tour file)")
    show.add_argument("name", metavar="NAME")
    import_ = actions.add_parser("import", parents=[store_args], help="store a tour file")
    import_.add_argument("file", metavar="FILE", help="a tour file (JSON, schema 1)")
    import_.add_argument("--name", help="the name to store it under (default: the file's name without .json)")
    import_.add_argument("--author", default=None, help="display name saved with the tour")
    import_.add_argument("--replace", action="store_true", help="replace a stored tour of that name")
    delete = actions.add_parser("delete", parents=[store_args], help="delete a stored tour")
    delete.add_argument("name", metavar="NAME")
    return {"tour": run}


def run(args, model: EmbeddingSpaceModel | None) -> None:
    """Run the chosen action (`model` is None: tours open their own)."""
    ACTIONS[args.tour_action](args)


def open_tour_store(args, *, writes: bool) -> TourStore:
    """The store in --data-dir (else the settings'), checked writable first when the action writes."""
    store = TourStore.open(args.data_dir)
    if writes:
        store.check_writable()
    elif store.read_only_reason:
        print(f"note: {store.read_only_reason}", file=sys.stderr)
    return store


def run_export(args) -> None:
    if args.k is not None:
        check_k(args.k, "--k")
    tour = load_tour(args.file, args.data_dir)
    opened: dict[str, EmbeddingSpaceModel] = {}

    def models(embedding: str) -> EmbeddingSpaceModel:
        if embedding not in opened:
            opened[embedding] = open_model(tour.model, revision=tour.revision, embedding=embedding)
        return opened[embedding]

    def progress(number: int, total: int, stop: TourStop) -> None:
        print(f"stop {number} / {total}: {stop.kind} layer {stop.layer} index {stop.index}", file=sys.stderr)

    labels = view_labels(models("auto"), args.data_dir)
    page = static_page(tour, models, k=args.k, labels=labels, progress=progress)
    write_text_atomic(Path(args.out), page)
    print(f"wrote {args.out} ({len(tour.stops)} stop{'s' * (len(tour.stops) != 1)}, {len(page) / 1e6:.1f} MB)")


def load_tour(source: str, data_dir: str | None) -> Tour:
    """The tour in the file `source`, else the stored tour of that name (when no such file exists)."""
    if Path(source).exists() or source.endswith(".json"):
        return read_tour(source)
    found = TourStore.open(data_dir, read_only=True).get(source)
    if found is None:
        raise TourError(f"no tour file {source!r}, and no stored tour of that name.")
    return found[0]


def view_labels(model: EmbeddingSpaceModel, data_dir: str | None) -> dict[tuple[str, int, int], str]:
    """{(kind, layer, index): label} of the model's annotated views (stored and seed), for the stops' headings."""
    model_id, revision = model_identity(model.info)
    return {(a.kind, a.layer, a.index): a.label for a in open_store(data_dir).list(model_id, revision) if a.label}


def run_list(args) -> None:
    store = open_tour_store(args, writes=False)
    records = store.list()
    if args.json:
        print(json.dumps([vars(r) for r in records], ensure_ascii=False, indent=1))
    elif not records:
        print(f"no tours in {store.path}")
    else:
        print(f"{'name':<24}{'stops':>6}{'version':>8}  model  |  title")
        for r in records:
            print(f"{r.name:<24}{r.stops:>6}{r.version:>8}  {r.model}  |  {r.title}")


def run_show(args) -> None:
    found = open_tour_store(args, writes=False).get(args.name)
    if found is None:
        raise TourError(f"no tour is named {args.name!r}.")
    tour, version = found
    if args.json:
        print(json.dumps(tour.to_json(), ensure_ascii=False, indent=1))
        return
    print(
        f"{args.name} (version {version}): {tour.title} · {tour.model}"
        + (f" @ {tour.revision}" if tour.revision else "")
    )
    for number, stop in enumerate(tour.stops, start=1):
        note = stop.note.strip().splitlines()[0][:80] if stop.note.strip() else ""
        print(f"{number:>3}. {stop.kind} layer {stop.layer} index {stop.index}" + (f"  |  {note}" if note else ""))


def run_import(args) -> None:
    tour = read_tour(args.file)
    name = args.name or Path(args.file).stem
    store = open_tour_store(args, writes=True)
    stored = store.get(name)
    if stored is not None and not args.replace:
        raise TourError(
            f"a tour named {name!r} is stored already (version {stored[1]}): rerun with --replace or --name."
        )
    version = store.save(name, tour, author=args.author, base_version=stored[1] if stored else None)
    if args.json:
        print(json.dumps({"name": name, "version": version, "stops": len(tour.stops)}))
    else:
        print(f"stored tour {name!r} (version {version}, {len(tour.stops)} stops) in {store.path}")


def run_delete(args) -> None:
    store = open_tour_store(args, writes=True)
    store.delete(args.name)
    if args.json:
        print(json.dumps({"name": args.name, "deleted": True}))
    else:
        print(f"deleted tour {args.name!r} from {store.path}")


ACTIONS = {"export": run_export, "list": run_list, "show": run_show, "import": run_import, "delete": run_delete}
