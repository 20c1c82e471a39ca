"""`embspace svd`: a head's or an FFN layer's singular values, and its first directions read in the vocabulary."""

from __future__ import annotations

import argparse
import json
from itertools import zip_longest

from embspace import SVD_KINDS, EmbeddingSpaceModel, SvdView, svd_view
from embspace.cli.args import check_k, vocab_filter_from_args
from embspace.compute import NeuronLoadings, SvdDirection, TokenEnds

DEFAULT_K = 20


def register(commands, model_args: argparse.ArgumentParser, filter_args: argparse.ArgumentParser) -> dict:
    """Add `svd` to the CLI's subcommands; returns {command: run function}."""
    svd = commands.add_parser(
        "svd",
        parents=[model_args, filter_args],
        help="singular directions of a head's W_V W_O / W_Q W_Kᵀ or a layer's FFN weights, read in the vocabulary",
    )
    svd.add_argument("--kind", choices=SVD_KINDS, default="ov", help="ov, qk (a head) or ffn-in, ffn-out (a layer)")
    svd.add_argument("--layer", type=int, required=True)
    svd.add_argument("--head", type=int, default=None, help="the head (ov, qk only)")
    svd.add_argument("--directions", type=int, default=8, metavar="N", help="read out the first N directions")
    svd.set_defaults(k=DEFAULT_K)  # the filters' --k, with this command's own default
    return {"svd": run_svd}


def run_svd(args, model: EmbeddingSpaceModel) -> None:
    check_k(args)
    view = svd_view(
        model, args.kind, args.layer, args.head, args.directions, args.k, vocab_filter_from_args(args, model)
    )
    if args.json:
        print(json.dumps(view.to_record(), ensure_ascii=False, indent=1))
        return
    print_view(view)


def print_view(view: SvdView) -> None:
    """The spectrum on one line, then each direction's four columns (tokens or neurons) side by side."""
    unit = f"layer {view.layer}" + ("" if view.head is None else f", head {view.head}")
    values = " ".join(f"{s:.3g}" for s in view.singular_values)
    print(f"{view.kind} {unit}: {len(view.singular_values)} non-zero singular values: {values}")
    for direction in view.directions:
        print()
        print(direction_header(direction))
        columns = side_columns("left", direction.left) + side_columns("right", direction.right)
        width = max((len(cell) for _, column in columns for cell in column), default=8) + 2
        width = max(width, *(len(name) + 2 for name, _ in columns))
        print("".join(f"{name:<{width}}" for name, _ in columns))
        for row in zip_longest(*(column for _, column in columns), fillvalue=""):
            print("".join(f"{cell:<{width}}" for cell in row))


def direction_header(direction: SvdDirection) -> str:
    mark = f"  (degenerate: relative gap {direction.gap:.1e}, only the span is defined)" if direction.degenerate else ""
    return f"direction {direction.index}: sigma {direction.sigma:.4g}{mark}"


def side_columns(side: str, ends: TokenEnds | NeuronLoadings) -> list[tuple[str, list[str]]]:
    """(header, cells) per column: "left +" and "left -" for tokens, one "right neurons" column for neurons."""
    if isinstance(ends, NeuronLoadings):
        return [(f"{side} neurons", [f"{n} {w:+.3f}" for n, w in zip(ends.neurons, ends.weights, strict=True)])]
    return [
        (f"{side} {sign}", [f"{t} {s:.3f}" for t, s in zip(scores.tokens, scores.scores, strict=True)])
        for sign, scores in (("+", ends.plus), ("-", ends.minus))
    ]
