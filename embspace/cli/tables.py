"""`embspace info|neuron|pairs|copying|export`: one model's sizes, a neuron's or a head's tables, every head's scores."""

from __future__ import annotations

import argparse
import json
import sys
from itertools import zip_longest

import numpy as np

from embspace import EmbeddingSpaceModel, copying_scores, head_top_pairs, neuron_top_tokens
from embspace.cli.args import check_k, note_fewer_rows, pair_filter_from_args, vocab_filter_from_args
from embspace.compute import head_kind
from embspace.export import export_heads
from embspace.views import HEAD_VIEW_KINDS


def register(commands, model_args: argparse.ArgumentParser, filter_args: argparse.ArgumentParser) -> dict:
    """Add info, neuron, pairs, export and copying to the CLI's subcommands; returns {command: run function}."""
    commands.add_parser("info", parents=[model_args], help="architecture and sizes")
    neuron = commands.add_parser(
        "neuron", parents=[model_args, filter_args], help="top tokens of an FFN neuron's K, V, -K, -V"
    )
    neuron.add_argument("--layer", type=int, required=True)
    neuron.add_argument("--neuron", type=int, required=True)
    pairs = commands.add_parser(
        "pairs", parents=[model_args, filter_args], help="top token pairs of a head's W_VO or W_QK"
    )
    pairs.add_argument("--kind", choices=HEAD_VIEW_KINDS, default="vo")
    pairs.add_argument("--layer", type=int, required=True)
    pairs.add_argument("--head", type=int, required=True)
    export = commands.add_parser(
        "export", parents=[model_args, filter_args], help="every layer x head to JSONL (resumable)"
    )
    export.add_argument("--kind", choices=HEAD_VIEW_KINDS, default="vo")
    export.add_argument("--out", required=True, metavar="FILE", help="JSONL file; a rerun skips heads already written")
    commands.add_parser("copying", parents=[model_args], help="copying score of every head")
    return {"info": run_info, "neuron": run_neuron, "pairs": run_pairs, "export": run_export, "copying": run_copying}


def run_info(args, model: EmbeddingSpaceModel) -> None:
    info = model.info.as_dict()
    if args.json:
        print(json.dumps(info, indent=2))
        return
    width = max(map(len, info))
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")


def run_neuron(args, model: EmbeddingSpaceModel) -> None:
    check_k(args)
    tables = neuron_top_tokens(
        model, args.layer, args.neuron, args.k, vocab_filter_from_args(args, model), args.negative
    )
    rows = max(len(t.token_ids) for t in tables.values())
    note_fewer_rows(rows, args.k, "tokens")
    if args.json:
        print(json.dumps({name: t.to_records() for name, t in tables.items()}, ensure_ascii=False, indent=1))
        return
    if rows == 0:
        print(f"layer {args.layer}, neuron {args.neuron}: no token passes the filters")
        return
    print(f"layer {args.layer}, neuron {args.neuron}: top tokens of vector · E")
    columns = [[f"{tok} {score:.3f}" for tok, score in zip(t.tokens, t.scores, strict=True)] for t in tables.values()]
    width = max((len(cell) for column in columns for cell in column), default=8) + 2
    print("".join(f"{name:<{width}}" for name in tables))
    for row in zip_longest(*columns, fillvalue=""):
        print("".join(f"{cell:<{width}}" for cell in row))


def run_pairs(args, model: EmbeddingSpaceModel) -> None:
    check_k(args)
    table = head_top_pairs(
        model,
        args.kind,
        args.layer,
        args.head,
        args.k,
        vocab_filter_from_args(args, model),
        pair_filter_from_args(args),
        args.negative,
    )
    records = table.to_records()
    note_fewer_rows(len(records), args.k, "pairs")
    if args.json:
        print(json.dumps(records, ensure_ascii=False, indent=1))
        return
    print(head_kind(args.kind).header(args.layer, args.head))
    if not records:
        print("no pair passes the filters")
    width = max((len(r["row_token"]) for r in records), default=4) + 2
    for rank, record in enumerate(records, start=1):
        print(f"{rank:>4}  {record['row_token']:<{width}}{record['col_token']:<{width}}{record['score']:.4f}")


def run_export(args, model: EmbeddingSpaceModel) -> None:
    check_k(args)
    total_heads = model.shape.n_layers * model.shape.n_heads

    def report(done: int, total: int, layer: int, head: int) -> None:
        if not args.json:
            args.progress_line = True  # an interruption now must start a new line
            print(f"\r[{done}/{total}] layer {layer} head {head}", end="", file=sys.stderr, flush=True)

    summary = export_heads(
        model,
        args.out,
        kind=args.kind,
        k=args.k,
        vocab_filter=vocab_filter_from_args(args, model),
        pair_filter=pair_filter_from_args(args),
        negative=args.negative,
        progress=report,
    )
    result = {"out": str(summary.path), "written": summary.written, "skipped": summary.skipped, "heads": total_heads}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"\nwrote {summary.written} heads to {summary.path} ({summary.skipped} already there)")


def run_copying(args, model: EmbeddingSpaceModel) -> None:
    scores = copying_scores(model)
    broken = {layer: model.nonfinite_tensors(layer) for layer in sorted(set(np.nonzero(np.isnan(scores))[0].tolist()))}
    for layer, tensors in broken.items():
        heads = [str(h) for h in np.nonzero(np.isnan(scores[layer]))[0]]
        named = ", ".join(tensors) or "its OV circuit"
        print(
            f"warning: layer {layer} head{'s' * (len(heads) > 1)} {', '.join(heads)}: NaN or Inf weights "
            f"({named}); copying score shown as nan",
            file=sys.stderr,
        )
    if args.json:
        rounded = [[None if np.isnan(s) else round(float(s), 6) for s in row] for row in scores]
        print(json.dumps({"copying_scores": rounded}))  # null, not NaN: NaN is not JSON
        return
    print("layer  " + " ".join(f"h{h:<5}" for h in range(scores.shape[1])))
    for layer, row in enumerate(scores):
        print(f"{layer:<6} " + " ".join("   nan" if np.isnan(s) else f"{s:+.3f}" for s in row))
