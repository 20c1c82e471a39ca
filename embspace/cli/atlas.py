"""`embspace atlas build ...` and `embspace search WORD ...`: precompute a whole model, and find a word in it."""

from __future__ import annotations

import argparse
import json
import sys

from embspace import EmbeddingSpaceModel
from embspace.atlas import DEFAULT_K, Atlas, AtlasError, build_atlas, find_atlas, parse_layers
from embspace.cli.args import model_arguments, names_a_model, pair_filter_from_args, vocab_filter_from_args
from embspace.compute import DEVICE_CHOICES
from embspace.search import head_bound_note, query_tokens, search
from embspace.views import VIEW_KINDS, VIEW_SIDES


def register(commands, model_args: argparse.ArgumentParser, filter_args: argparse.ArgumentParser) -> dict:
    """Add `atlas build` and `search` to the CLI's subcommands; returns {command: run function}.

    `model_args` has the positional model (atlas build); search takes its model only as --model: its
    words are positional (a contract).
    """
    atlas = commands.add_parser("atlas", help="precompute a whole model as Parquet tables (atlas build)")
    actions = atlas.add_subparsers(dest="atlas_command", required=True)
    build = actions.add_parser("build", parents=[model_args], help="build or resume an atlas in --out DIR (or URI)")
    build.add_argument(
        "--out",
        required=True,
        metavar="DIR|URI",
        help="atlas directory; a rerun skips finished parts. Or a URI (s3://..., hf://datasets/ORG/NAME[/FOLDER], "
        "memory://...): built in a temporary directory, then uploaded, manifest last (no resume: a rerun builds anew)",
    )
    build.add_argument(
        "--k", type=int, default=DEFAULT_K, help=f"N: pairs / tokens kept per list (default {DEFAULT_K})"
    )
    build.add_argument("--layers", metavar="SPEC", help="only these layers, e.g. 0-2,5 (default: all)")
    build.add_argument("--device", choices=DEVICE_CHOICES, default="cpu", help="where the FFN scans run (default cpu)")
    build.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="one Ray task per (layer, kind); ADDRESS of a cluster, or none for a local one",
    )
    build.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    search_parser = commands.add_parser(
        "search",
        parents=[model_arguments(positional=False), filter_args],
        help="where a word's tokens show up in the model",
    )
    search_parser.add_argument(
        "words", nargs="+", metavar="WORD", help="words or tokens (a split word searches each token)"
    )
    search_parser.add_argument(
        "--atlas",
        metavar="DIR|URI",
        help="answer from this atlas, a directory or a URI (hf://datasets/ORG/NAME, s3://, https://; read lazily) "
        "('auto': find one for the model)",
    )
    search_parser.add_argument("--limit", type=int, default=10, help="results per token and kind (default 10)")
    return {"atlas": run_atlas, "search": run_search}


def run_atlas(args, model: EmbeddingSpaceModel) -> None:
    summary = build_atlas(
        model,
        args.out,
        k=args.k,
        layers=parse_layers(args.layers, model.shape.n_layers),
        device=args.device,
        use_ray=args.ray is not None,
        ray_address=args.ray or None,
        progress=not args.no_progress,
    )
    if args.json:
        print(json.dumps(summary.as_dict()))
    else:
        print(
            f"atlas in {summary.directory}: {summary.built} parts built, {summary.skipped} already there "
            f"({summary.seconds:.1f} s)"
        )


def run_search(args, model: EmbeddingSpaceModel) -> None:
    if args.limit < 1:
        raise ValueError("--limit must be at least 1.")
    warn_if_first_word_names_a_model(args)
    atlas = None
    if args.atlas == "auto":
        atlas = find_atlas(model)
    elif args.atlas:
        atlas = Atlas.open(args.atlas)
        if not atlas.matches(model):
            raise AtlasError(f"the atlas in {args.atlas} was built for {atlas.manifest.get('model')}, not this model.")
    for word in query_tokens(model, args.words):
        if len(word.token_ids) > 1 and not args.json:
            print(f"{word.word!r} is split into {' + '.join(word.tokens)}; each is searched", file=sys.stderr)
    hits = search(
        model,
        args.words,
        vocab_filter=vocab_filter_from_args(args, model),
        pair_filter=pair_filter_from_args(args),
        limit=args.limit,
        atlas=atlas,
    )
    if args.json:
        print(json.dumps([hit.as_dict() for hit in hits], ensure_ascii=False, indent=1))
        return
    print(f"searched {'an atlas (' + str(atlas.directory) + ')' if atlas else 'live (no atlas)'}; rank 1 = best")
    if atlas is None:
        print(head_bound_note())
    for name, side in VIEW_SIDES.items():
        mine = [h for h in hits if h.kind == name]
        if mine:
            print(f"\n{side.label}")
            unit = VIEW_KINDS[side.kind].unit
            for h in mine:
                partner = f"  pair with {h.partner_token}" if h.partner_token is not None else ""
                where = f"layer {h.layer:>2} {unit} {h.index:<5}"
                print(f"  {h.token:<14} {where} rank {h.rank:<6} score {h.score:+.4f}{partner}")


def warn_if_first_word_names_a_model(args) -> None:
    """`search gpt2 king` searches the word "gpt2" (words are positional); say so when that looks unintended."""
    first = args.words[0]
    if args.model_option is None and names_a_model(first):
        print(
            f"warning: {first!r} is searched as a word, on the default model; to search in it, use --model {first}",
            file=sys.stderr,
        )
