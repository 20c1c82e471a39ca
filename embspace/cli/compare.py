"""`embspace diff|align`: two models in one vocabulary, what fine-tuning changed and which layers correspond.

`main` opens the first model (BASE or A, with `--embedding`); the run functions open the second.
"""

from __future__ import annotations

import argparse
import json
import sys
from itertools import zip_longest

from embspace import EMBEDDING_CHOICES, EmbeddingSpaceModel, EmbspaceError, open_model
from embspace.cli.args import check_k, note_fewer_rows, pair_filter_from_args, vocab_filter_from_args
from embspace.compare import DIFF_KINDS, PARTS, align_layers, diff_units, most_correlated_rows, unit_diff


def pair_arguments(first: str, second: str) -> argparse.ArgumentParser:
    """Two positional models (the first is the one `main` opens), --revision (of the first), --embedding, --json."""
    two_models = argparse.ArgumentParser(add_help=False)
    two_models.add_argument("model", metavar=first, help=f"{first}: hub id or local directory")
    two_models.add_argument("other", metavar=second, help=f"{second}: hub id or local directory")
    two_models.add_argument("--revision", default=None, help=f"hub revision of {first}")
    two_models.add_argument(
        "--embedding", choices=EMBEDDING_CHOICES, default="auto", help="the embedding the vocabulary is read through"
    )
    two_models.add_argument("--json", action="store_true", help="machine-readable output")
    two_models.set_defaults(model_option=None)
    return two_models


def register(commands, filter_args: argparse.ArgumentParser) -> dict:
    """Add diff and align to the CLI's subcommands; returns {command: run function}."""
    diff = commands.add_parser(
        "diff",
        parents=[pair_arguments("BASE", "TUNED"), filter_args],
        help="what fine-tuning changed: every unit's change, or one unit's change in the vocabulary",
    )
    diff.add_argument("--limit", type=int, metavar="N", help="only the N most changed units")
    diff.add_argument("--unit", choices=DIFF_KINDS, help="one unit's change read in BASE's vocabulary")
    diff.add_argument("--layer", type=int, help="with --unit")
    diff.add_argument("--index", type=int, help="with --unit: the neuron or head")
    align = commands.add_parser(
        "align", parents=[pair_arguments("A", "B")], help="which layers of two models correspond (mean |corr|)"
    )
    align.add_argument(
        "--part", choices=tuple(PARTS), default="ffn-v", help="the parameters correlated (default ffn-v)"
    )
    align.add_argument("--layer", type=int, help="with --index: a layer of A whose row is matched in B")
    align.add_argument("--index", type=int, help="with --layer: A's neuron (ffn-v, ffn-k) or head (wv, wo, wq, wk)")
    align.add_argument("--top", type=int, default=10, metavar="N", help="with --index: B's N best rows (default 10)")
    return {"diff": run_diff, "align": run_align}


def run_diff(args, base: EmbeddingSpaceModel) -> None:
    if args.unit is None and (args.layer is not None or args.index is not None):
        raise EmbspaceError("--layer and --index choose one unit: give --unit KIND too.")
    if args.unit is not None and (args.layer is None or args.index is None):
        raise EmbspaceError("--unit needs --layer L and --index I.")
    if args.limit is not None and args.limit < 1:
        raise EmbspaceError(f"--limit must be at least 1, not {args.limit}.")
    # The tuned model's E is never read (E is the base's): "input" opens any checkpoint, with or without a head.
    tuned = open_model(args.other, embedding="input")
    if args.unit is None:
        _print_changes(args, base, tuned)
    else:
        _print_unit(args, base, tuned)


def _print_changes(args, base: EmbeddingSpaceModel, tuned: EmbeddingSpaceModel) -> None:
    def report(done: int, total: int) -> None:
        if not args.json:
            args.progress_line = True
            print(f"\r[{done}/{total}] layers", end="", file=sys.stderr, flush=True)

    units = diff_units(base, tuned, progress=report)[: args.limit]
    if args.json:
        print(json.dumps([u.to_record() for u in units], indent=1))
        return
    print(file=sys.stderr)
    print(f"{'rank':>6}  {'kind':<9}{'layer':>6}{'index':>7}  {'change':>10}  {'base_norm':>10}")
    for rank, u in enumerate(units, start=1):
        print(f"{rank:>6}  {u.kind:<9}{u.layer:>6}{u.index:>7}  {u.change:>10.6f}  {u.base_norm:>10.4f}")


def _print_unit(args, base: EmbeddingSpaceModel, tuned: EmbeddingSpaceModel) -> None:
    check_k(args)
    found = unit_diff(
        base,
        tuned,
        args.unit,
        args.layer,
        args.index,
        args.k,
        vocab_filter_from_args(args, base),
        pair_filter_from_args(args),
    )
    records = found.to_dict()
    note_fewer_rows(len(records["plus"]), args.k, "tokens" if args.unit.startswith("neuron") else "pairs")
    if args.json:
        print(json.dumps(records, ensure_ascii=False, indent=1))
        return
    unit = "neuron" if args.unit.startswith("neuron") else "head"
    print(f"{args.unit} layer {args.layer}, {unit} {args.index}: tuned - base, read in the base's vocabulary")
    columns = {side: [_cell(item) for item in items] for side, items in records.items()}
    width = max((len(cell) for column in columns.values() for cell in column), default=8) + 2
    print("".join(f"{side:<{width}}" for side in columns))
    for row in zip_longest(*columns.values(), fillvalue=""):
        print("".join(f"{cell:<{width}}" for cell in row))


def _cell(item: dict) -> str:
    if "token" in item:
        return f"{item['token']} {item['score']:.4g}"
    return f"{item['row_token']} -> {item['col_token']} {item['score']:.4g}"


def run_align(args, a: EmbeddingSpaceModel) -> None:
    if (args.layer is None) != (args.index is None):
        raise EmbspaceError("--layer and --index choose one row of A: give both.")
    if args.top < 1:
        raise EmbspaceError(f"--top must be at least 1, not {args.top}.")
    b = open_model(args.other, embedding=args.embedding)
    if args.index is not None:
        _print_rows(args, a, b)
        return

    def report(done: int, total: int) -> None:
        if not args.json:
            args.progress_line = True
            print(f"\r[{done}/{total}] layers of A", end="", file=sys.stderr, flush=True)

    alignment = align_layers(a, b, args.part, progress=report)
    if args.json:
        print(json.dumps(alignment.to_dict()))
        return
    print(file=sys.stderr)
    print(f"mean |corr| of {args.part} rows: layers of A (rows) x layers of B (columns)")
    print("      " + "".join(f"{f'B{j}':>8}" for j in range(alignment.similarity.shape[1])))
    for i, row in enumerate(alignment.similarity):
        print(f"A{i:<5}" + "".join(f"{s:>8.4f}" for s in row))
    print("matching: " + ", ".join(f"A{x}-B{y}" for x, y in alignment.matching))


def _print_rows(args, a: EmbeddingSpaceModel, b: EmbeddingSpaceModel) -> None:
    """B's rows most correlated with A's row (neuron) or head `--index` of layer `--layer`."""
    rows = most_correlated_rows(a, b, args.part, args.layer, args.index, args.top)
    if args.json:
        record = {"part": args.part, "layer": args.layer, "index": args.index}
        print(json.dumps({**record, "rows": [row.to_record() for row in rows]}))
        return
    unit = "neuron" if args.part.startswith("ffn") else "head"
    print(f"B's {args.part} rows most correlated with A's layer {args.layer}, {unit} {args.index}")
    print(f"{'rank':>6}{'layer':>7}{unit:>8}  {'corr':>9}")
    for rank, row in enumerate(rows, start=1):
        print(f"{rank:>6}{row.layer:>7}{row.index:>8}  {row.corr:>9.4f}")
