"""Token search latency for the README: live (no atlas) over every neuron / head, and from an atlas.

    .venv/bin/python bench/bench_search.py [--atlas /tmp/minilm_atlas] [--gpt2-dir /tmp/gpt2-medium-shaped]
        [--gpt2-atlas /tmp/gpt2_ffn_atlas]

With --gpt2-atlas, the FFN side of an atlas of the GPT-2-medium-shaped model is built there first
when missing (every neuron's K, V, -K, -V lists: the all-neuron scan, minutes on 2 cores).

Each figure is the median of 5 searches for one token (the search index, the stacked FFN weights,
is built once per model and cached by the app; its build time is reported separately).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import build_gpt2_medium_shaped, median_ms

NEURONS = ("neuron-K", "neuron-V")
HEADS = ("vo-row", "vo-col", "qk-row", "qk-col")


def figures(model, word: str, atlas=None, heads: bool = True) -> dict:
    """Medians for one token of `word` under the default filter (what an atlas stores)."""
    from embspace.search.index import SearchIndex, query_tokens, search

    # One token: the word's first, by its vocabulary form (a word the tokenizer splits is several searches).
    word = model.tokenizer.convert_ids_to_tokens(query_tokens(model, [word])[0].token_ids[0])
    started = time.perf_counter()
    index = SearchIndex(model)
    record = {"token": word, "index_build_ms": round((time.perf_counter() - started) * 1000, 1)}
    for label, kinds in (("neurons_ms", NEURONS), ("heads_ms", HEADS))[: 2 if heads else 1]:
        record[f"live_{label}"] = median_ms(lambda kinds=kinds: search(model, [word], kinds=kinds, index=index), 5)
    if atlas is not None:
        labelled = (("neurons_ms", NEURONS), ("heads_ms", HEADS), ("all_ms", NEURONS + HEADS))
        for label, kinds in labelled if heads else labelled[:1]:
            record[f"atlas_{label}"] = median_ms(lambda kinds=kinds: search(model, [word], kinds=kinds, atlas=atlas), 5)
    return record


def with_full_vocabulary(weights_dir: Path, directory: Path) -> Path:
    """The GPT-2-medium-shaped weights beside a byte-level BPE tokenizer of all 50257 tokens (trained
    here in seconds on random words plus a few real ones), so every row of E is a real token: the
    default filter keeps them all, as with GPT-2's own tokenizer."""
    if (directory / "tokenizer.json").exists():
        return directory
    import random
    import string

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        (directory / name).unlink(missing_ok=True)
        (directory / name).symlink_to((weights_dir / name).resolve())
    rng = random.Random(0)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 12))) for _ in range(120_000)]
    real = "the king and the queen walked pieszo to the city with a cat and a dog".split()
    lines = [" ".join(rng.choices(words, k=20) + real) for _ in range(30_000)]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=50257,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(lines, trainer=trainer)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>").save_pretrained(directory)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--atlas", type=Path, default=Path("/tmp/minilm_atlas"))
    parser.add_argument("--gpt2-dir", type=Path, default=Path("/tmp/gpt2-medium-shaped"))
    parser.add_argument("--gpt2-atlas", type=Path, help="also time neuron search from an FFN-only atlas here")
    parser.add_argument("--skip-gpt2", action="store_true")
    args = parser.parse_args()
    from embspace import open_model
    from embspace.atlas import Atlas
    from embspace.runtime import configure

    configure()
    minilm = open_model("sentence-transformers/all-MiniLM-L6-v2")
    atlas = Atlas.open(args.atlas) if (args.atlas / "manifest.json").exists() else None
    print(json.dumps({"minilm": figures(minilm, "king", atlas)}), flush=True)
    if not args.skip_gpt2:
        build_gpt2_medium_shaped(args.gpt2_dir)
        model = open_model(str(with_full_vocabulary(args.gpt2_dir, args.gpt2_dir.with_name("gpt2-medium-full-vocab"))))
        gpt2_atlas = None
        if args.gpt2_atlas:
            from embspace.atlas import build_atlas

            summary = build_atlas(model, args.gpt2_atlas, unit_kinds=("ffn",), progress=False)
            print(json.dumps({"gpt2_ffn_atlas_build_s": round(summary.seconds, 1), "built": summary.built}))
            gpt2_atlas = Atlas.open(args.gpt2_atlas)
        record = figures(model, "king", gpt2_atlas, heads=not args.gpt2_atlas)
        print(json.dumps({"gpt2_medium_shaped": record}))


if __name__ == "__main__":
    main()
