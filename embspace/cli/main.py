"""`python -m embspace`: read a model's neurons and heads in the vocabulary from the shell."""

from __future__ import annotations

import argparse
import json
import sys
from itertools import zip_longest
from pathlib import Path

import numpy as np

from embspace.cli import annotations as cli_annotations
from embspace.cli import atlas as cli_atlas
from embspace.compute.projections import HEAD_KINDS, copying_scores, head_top_pairs, neuron_top_tokens
from embspace.errors import EmbspaceError
from embspace.export import export_heads
from embspace.model.embedding_space import EMBEDDING_CHOICES, MAX_K, EmbeddingSpaceModel, open_model
from embspace.model.embedding_space import check_k as check_k_range
from embspace.model.sources import DEFAULT_MODEL
from embspace.runtime import configure as configure_runtime
from embspace.vocab.corpus import corpus_token_ids, count_corpus_tokens, iter_corpus_texts
from embspace.vocab.filters import ALPHABETS, PairFilter, VocabFilter, token_list_ids


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes end in one line (and a pointer to --help), not the whole usage block."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def model_arguments() -> argparse.ArgumentParser:
    """The arguments every command that opens a model shares: the model, revision, embedding, --json."""
    model_args = argparse.ArgumentParser(add_help=False)
    model_args.add_argument(
        "model", nargs="?", default=DEFAULT_MODEL, help=f"hub id or local directory (default: {DEFAULT_MODEL}, bundled)"
    )
    model_args.add_argument("--revision", default=None, help="hub revision (branch, tag or commit)")
    model_args.add_argument(
        "--embedding",
        choices=EMBEDDING_CHOICES,
        default="auto",
        help="input (word) or output (LM head) embedding on both sides; auto = output when there is an LM head; "
        "input-output (untied models) = rows through the input embedding, columns through the LM head",
    )
    model_args.add_argument("--json", action="store_true", help="machine-readable output")
    return model_args


def filter_arguments() -> argparse.ArgumentParser:
    """The vocabulary and pair filters of the commands that print tokens or pairs."""
    filter_args = argparse.ArgumentParser(add_help=False)
    filter_args.add_argument("--k", type=int, default=30, help=f"how many tokens/pairs (default 30, at most {MAX_K:,})")
    filter_args.add_argument("--only-ascii", action="store_true", help="keep ASCII tokens only")
    filter_args.add_argument(
        "--only-alnum", action="store_true", help="keep tokens made only of the alphabet's letters and digits"
    )
    filter_args.add_argument("--alphabet", choices=sorted(ALPHABETS), default="latin", help="alphabet for --only-alnum")
    filter_args.add_argument(
        "--keep-special", action="store_true", help="keep special tokens ([CLS], <|endoftext|>, ...)"
    )
    filter_args.add_argument("--corpus", metavar="FILE", help="keep tokens occurring in this .txt/.jsonl/.csv corpus")
    filter_args.add_argument(
        "--corpus-field", metavar="NAME", help="JSONL field or CSV column holding the text (default: text)"
    )
    filter_args.add_argument(
        "--top-n", type=int, metavar="N", help="with --corpus: only the N most common corpus tokens"
    )
    filter_args.add_argument(
        "--tokens",
        metavar="LIST_OR_FILE",
        help="keep only these tokens: comma-separated words, or a file with one per line",
    )
    filter_args.add_argument("--exclude-same", action="store_true", help="drop pairs of identical (normalised) tokens")
    filter_args.add_argument("--exclude-fuzzy", action="store_true", help="drop pairs of near-identical tokens")
    filter_args.add_argument("--negative", action="store_true", help="most negative instead of most positive")
    return filter_args


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m embspace",
        description="Read transformer weights in the vocabulary (Dar et al., ACL 2023).",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    model_args, filter_args = model_arguments(), filter_arguments()
    commands.add_parser("info", parents=[model_args], help="architecture and sizes")
    neuron = commands.add_parser(
        "neuron", parents=[model_args, filter_args], help="top tokens of an FFN neuron's K, V, -K, -V"
    )
    neuron.add_argument("--layer", type=int, required=True)
    neuron.add_argument("--neuron", type=int, required=True)
    pairs = commands.add_parser(
        "pairs", parents=[model_args, filter_args], help="top token pairs of a head's W_VO or W_QK"
    )
    pairs.add_argument("--kind", choices=HEAD_KINDS, default="vo")
    pairs.add_argument("--layer", type=int, required=True)
    pairs.add_argument("--head", type=int, required=True)
    export = commands.add_parser(
        "export", parents=[model_args, filter_args], help="every layer x head to JSONL (resumable)"
    )
    export.add_argument("--kind", choices=HEAD_KINDS, default="vo")
    export.add_argument("--out", required=True, metavar="FILE", help="JSONL file; a rerun skips heads already written")
    commands.add_parser("copying", parents=[model_args], help="copying score of every head")
    COMMANDS.update(cli_atlas.register(commands, model_args, filter_args))  # atlas build, search
    COMMANDS.update(cli_annotations.register(commands, model_args))  # annotations set|list|export|import
    return parser


def vocab_filter_from_args(args, model: EmbeddingSpaceModel) -> VocabFilter:
    allowed = None
    if args.corpus:
        texts = iter_corpus_texts(args.corpus, field=args.corpus_field)
        allowed = corpus_token_ids(count_corpus_tokens(model.tokenizer, texts), top_n=args.top_n)
    elif args.top_n is not None:
        raise EmbspaceError("--top-n needs --corpus FILE.")
    if args.tokens:
        words = read_token_list(args.tokens)
        listed = token_list_ids(model.vocab, words)
        if not listed:
            raise EmbspaceError(f"none of the tokens in --tokens {args.tokens!r} is in this model's vocabulary.")
        dropped = words_not_in_vocabulary(model, words, listed)
        if dropped:
            print(f"note: not in the vocabulary, left out: {', '.join(dropped)}", file=sys.stderr)
        allowed = listed if allowed is None else allowed & listed
    return VocabFilter(
        only_ascii=args.only_ascii,
        only_alnum=args.only_alnum,
        alphabet=args.alphabet,
        exclude_special=not args.keep_special,
        allowed_ids=allowed,
    )


def read_token_list(value: str) -> list[str]:
    """Words from a file (one per line) when `value` names one, else from a comma-separated list."""
    path = Path(value)
    if path.is_file():
        return path.read_text(encoding="utf-8").splitlines()
    return value.split(",")


def words_not_in_vocabulary(model: EmbeddingSpaceModel, words: list[str], listed: frozenset[int]) -> list[str]:
    """The words of a token list that match no token (`listed`: the ids all of them matched)."""
    found = {model.vocab.normalized[i] for i in listed}
    words = [w for w in dict.fromkeys(w.strip() for w in words) if w]
    # The quick test settles most words; the rest go through the filter's own matching rule.
    return [w for w in words if w.casefold() not in found and not token_list_ids(model.vocab, [w])]


def note_fewer_rows(shown: int, k: int, what: str) -> None:
    """A stderr note when the filters leave fewer than k rows (the table is complete, just shorter)."""
    if 0 < shown < k:
        print(f"note: only {shown:,} of {k:,} {what} pass the filters", file=sys.stderr)


def pair_filter_from_args(args) -> PairFilter:
    return PairFilter(exclude_same=args.exclude_same, exclude_fuzzy=args.exclude_fuzzy)


def check_k(args) -> None:
    check_k_range(args.k, "--k")


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
    print(HEAD_KINDS[args.kind].header(args.layer, args.head))
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


COMMANDS = {"info": run_info, "neuron": run_neuron, "pairs": run_pairs, "export": run_export, "copying": run_copying}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_runtime()  # threads and matmul precision, once per process
    try:
        model = open_model(args.model, revision=args.revision, embedding=args.embedding)
        COMMANDS[args.command](args, model)
    except KeyboardInterrupt:
        print("\ninterrupted" if getattr(args, "progress_line", False) else "interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # bad input must end in one clear line, not a traceback
        if args.debug:
            raise
        message = str(err) if isinstance(err, (EmbspaceError, OSError, ValueError)) else f"{type(err).__name__}: {err}"
        lines = message.strip().splitlines() or [type(err).__name__]
        print(f"error: {lines[0]}", file=sys.stderr)
        return 2
    return 0
