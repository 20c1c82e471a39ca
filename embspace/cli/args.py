"""What every command shares: the one-line-error parser, the model and filter arguments, and reading them back."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from embspace import ALPHABETS, DEFAULT_MODEL, EmbeddingSpaceModel, EmbspaceError, PairFilter, VocabFilter
from embspace.model import EMBEDDING_CHOICES, MAX_K, MODEL_PRESETS
from embspace.model import check_k as check_k_range
from embspace.settings import SettingReader, allowed_models
from embspace.vocab import corpus_token_ids, count_corpus_tokens, iter_corpus_texts, token_list_ids

MODEL_HELP = f"hub id or local directory (default: {DEFAULT_MODEL}, bundled)"


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes end in one line (and a pointer to --help), not the whole usage block."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def model_arguments(positional: bool = True) -> argparse.ArgumentParser:
    """The arguments every command that opens a model shares: the model, revision, embedding, --json.

    The model is `--model MODEL` everywhere and, where `positional`, also the first word (a contract):
    `model_source` reads the two back as one. `search` has no positional model: its words are positional.
    """
    model_args = argparse.ArgumentParser(add_help=False)
    if positional:
        # default None, not DEFAULT_MODEL: `model_source` must tell a given model from an absent one.
        model_args.add_argument("model", nargs="?", default=None, help=MODEL_HELP)
    option_help = "the model as an option: the same as the positional model" if positional else MODEL_HELP
    model_args.add_argument("--model", dest="model_option", metavar="MODEL", default=None, help=option_help)
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


def model_source(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """The model to open: `--model`, else the positional model, else DEFAULT_MODEL.

    Both given and different is a usage error (one line, exit 2): neither silently wins.
    """
    positional, option = getattr(args, "model", None), args.model_option
    if positional is not None and option is not None and positional != option:
        parser.error(f"two models given, {positional!r} and --model {option!r}: give one")
    return option or positional or DEFAULT_MODEL


def known_presets() -> tuple[str, ...]:
    """Model names the CLI recognises without a directory: the presets and the operator's hosted list."""
    try:
        allowed = allowed_models(SettingReader.of())
    except (EmbspaceError, ValueError):  # a bad hosting setting is not this command's business
        allowed = ()
    return (*MODEL_PRESETS, *allowed)


def names_a_model(word: str) -> bool:
    """Whether `word` reads as a model: a local model directory (it has config.json) or a known preset."""
    return word in known_presets() or (Path(word) / "config.json").is_file()


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


def vocab_filter_from_args(args: argparse.Namespace, model: EmbeddingSpaceModel) -> VocabFilter:
    """The VocabFilter that `filter_arguments` describe, with the corpus and token list read against `model`."""
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


def pair_filter_from_args(args: argparse.Namespace) -> PairFilter:
    return PairFilter(exclude_same=args.exclude_same, exclude_fuzzy=args.exclude_fuzzy)


def check_k(args: argparse.Namespace) -> None:
    check_k_range(args.k, "--k")


def note_fewer_rows(shown: int, k: int, what: str) -> None:
    """A stderr note when the filters leave fewer than k rows (the table is complete, just shorter)."""
    if 0 < shown < k:
        print(f"note: only {shown:,} of {k:,} {what} pass the filters", file=sys.stderr)
