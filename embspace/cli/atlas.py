"""`python -m embspace atlas build ...` and `python -m embspace search WORD ...` (registered by cli.py)."""

from __future__ import annotations

import argparse
import json
import sys

from embspace.compute.devices import DEVICE_CHOICES
from embspace.model.embedding_space import EMBEDDING_CHOICES, EmbeddingSpaceModel
from embspace.model.sources import DEFAULT_MODEL

SEARCH_LABELS = {
    "neuron-K": "FFN neurons reading it (K)",
    "neuron-V": "FFN neurons writing it (V)",
    "vo-row": "W_VO heads, as attended-to token (row)",
    "vo-col": "W_VO heads, as output token (column)",
    "qk-row": "W_QK heads, as query token (row)",
    "qk-col": "W_QK heads, as key token (column)",
}


def register(commands, model_args: argparse.ArgumentParser, filter_args: argparse.ArgumentParser) -> dict:
    """Add `atlas` and `search` to the CLI's subparsers; returns their {command: run function}."""
    from embspace.atlas import DEFAULT_K

    atlas = commands.add_parser("atlas", help="precompute a whole model as Parquet tables (atlas build)")
    actions = atlas.add_subparsers(dest="atlas_command", required=True)
    build = actions.add_parser("build", parents=[model_args], help="build or resume an atlas in --out DIR")
    build.add_argument("--out", required=True, metavar="DIR", help="atlas directory; a rerun skips finished parts")
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

    search = commands.add_parser("search", parents=[filter_args], help="where a word's tokens show up in the model")
    search.add_argument("words", nargs="+", metavar="WORD", help="words or tokens (a split word searches each token)")
    search.add_argument("--model", default=DEFAULT_MODEL, help=f"hub id or local directory (default: {DEFAULT_MODEL})")
    search.add_argument("--revision", default=None, help="hub revision (branch, tag or commit)")
    search.add_argument("--embedding", choices=EMBEDDING_CHOICES, default="auto", help="input or output embedding")
    search.add_argument("--json", action="store_true", help="machine-readable output: a list of hits, best first")
    search.add_argument("--atlas", metavar="DIR", help="answer from this atlas ('auto': find one for the model)")
    search.add_argument("--limit", type=int, default=10, help="results per token and kind (default 10)")
    return {"atlas": run_atlas, "search": run_search}


def run_atlas(args, model: EmbeddingSpaceModel) -> None:
    from embspace.atlas import build_atlas, parse_layers

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
    from embspace.atlas import Atlas, AtlasError, find_atlas
    from embspace.cli.main import pair_filter_from_args, vocab_filter_from_args
    from embspace.search.index import query_tokens, search

    if args.limit < 1:
        raise ValueError("--limit must be at least 1.")
    atlas = None
    if args.atlas == "auto":
        atlas = find_atlas(model)
    elif args.atlas:
        atlas = Atlas.open(args.atlas)
        if not atlas.matches(model):
            raise AtlasError(f"the atlas in {args.atlas} was built for {atlas.manifest.get('model')}, not this model.")
    words = query_tokens(model, args.words)
    for word in words:
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
    for kind, label in SEARCH_LABELS.items():
        mine = [h for h in hits if h.kind == kind]
        if mine:
            print(f"\n{label}")
            for h in mine:
                partner = f"  pair with {h.partner_token}" if h.partner_token is not None else ""
                unit = "neuron" if kind.startswith("neuron") else "head"
                where = f"layer {h.layer:>2} {unit} {h.index:<5}"
                print(f"  {h.token:<14} {where} rank {h.rank:<6} score {h.score:+.4f}{partner}")
