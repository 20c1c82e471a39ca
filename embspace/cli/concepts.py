"""`embspace concepts WORD [WORD ...]`: the units whose top k concentrates most on a set of words."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from embspace import CONCEPT_KINDS, CONCEPT_SCORE_RULE, Atlas, EmbeddingSpaceModel, concepts, find_atlas
from embspace.atlas import AtlasError
from embspace.cli.args import model_arguments, pair_filter_from_args, vocab_filter_from_args
from embspace.search.concepts import DEFAULT_CONCEPT_K, DEFAULT_CONCEPT_LIMIT, split_words
from embspace.search.heads import head_bound_note


def register(commands, model_args: argparse.ArgumentParser, filter_args: argparse.ArgumentParser) -> dict:
    """Add `concepts` to the CLI's subcommands; returns {command: run function}."""
    del model_args  # like `search`, the model comes only as --model: the positionals are words
    parser = commands.add_parser(
        "concepts",
        parents=[model_arguments(positional=False), filter_args],
        help="the units (neurons, head sides, SVD directions) whose top k holds most of a set of words",
        description=f"Rank every unit ({', '.join(CONCEPT_KINDS)}) by how its top k concentrates on the words: "
        f"{CONCEPT_SCORE_RULE}. From an atlas when given, live otherwise.",
    )
    parser.add_argument("words", nargs="*", metavar="WORD", help="words or tokens (a split word counts each token)")
    parser.add_argument("--file", metavar="FILE", help="more words, one per line (or comma-separated)")
    parser.add_argument("--atlas", metavar="DIR", help="answer from this atlas ('auto': find one for the model)")
    parser.add_argument("--limit", type=int, default=DEFAULT_CONCEPT_LIMIT, help="units shown (default 20)")
    parser.set_defaults(k=DEFAULT_CONCEPT_K)  # the filters' --k: each unit's top k (this command's default 50)
    return {"concepts": run_concepts}


def run_concepts(args, model: EmbeddingSpaceModel) -> None:
    words = list(args.words) + (split_words(Path(args.file).read_text(encoding="utf-8")) if args.file else [])
    if not words:
        raise ValueError("give words: concepts WORD [WORD ...] or --file FILE (one word per line).")
    atlas = open_atlas(args.atlas, model)
    found = concepts(
        model,
        words,
        k=args.k,
        limit=args.limit,
        vocab_filter=vocab_filter_from_args(args, model),
        pair_filter=pair_filter_from_args(args),
        atlas=atlas,
    )
    if args.json:
        print(json.dumps([hit.as_dict() for hit in found], ensure_ascii=False, indent=1))
        return
    print(f"{len(words)} words, top {args.k} of each unit, {'atlas ' + str(atlas.directory) if atlas else 'live'}")
    print(f"order: {CONCEPT_SCORE_RULE}")
    if atlas is None:
        print(head_bound_note(), file=sys.stderr)
    for hit in found:
        index = "" if hit.index is None else f" {'neuron' if hit.kind.startswith('neuron') else 'head'} {hit.index}"
        direction = "" if hit.direction is None else f" direction {hit.direction} {hit.side}"
        where = f"{hit.kind:<12} layer {hit.layer}{index}{direction}"
        print(f"  {where:<44} hits {hit.hits:<3} score {hit.score:6.2f}  {', '.join(hit.words)}")


def open_atlas(value: str | None, model: EmbeddingSpaceModel) -> Atlas | None:
    """--atlas DIR / auto / none, checked against the model."""
    if value == "auto":
        return find_atlas(model)
    if not value:
        return None
    atlas = Atlas.open(value)
    if not atlas.matches(model):
        raise AtlasError(f"the atlas in {value} was built for {atlas.manifest.get('model')}, not this model.")
    return atlas
