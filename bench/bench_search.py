"""Token search latency for the README: live (no atlas) over every neuron / head, and from an atlas.

    .venv/bin/python bench/bench_search.py [--atlas /tmp/minilm_atlas] [--gpt2-dir /tmp/gpt2-medium-shaped]

Each figure is the median of 5 searches for one token (the search index, the stacked FFN weights,
is built once per model and cached by the app; its build time is reported separately).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

NEURONS = ("neuron-K", "neuron-V")
HEADS = ("vo-row", "vo-col", "qk-row", "qk-col")


def median_ms(call, repeats: int = 5) -> float:
    call()  # warm: layer reads, masks
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def figures(model, word: str, vocab_filter, atlas=None) -> dict:
    from embspace.search import SearchIndex, search

    started = time.perf_counter()
    index = SearchIndex(model)
    record = {"index_build_ms": round((time.perf_counter() - started) * 1000, 1)}
    for label, kinds in (("neurons_ms", NEURONS), ("heads_ms", HEADS)):
        record[f"live_{label}"] = median_ms(
            lambda kinds=kinds: search(model, [word], vocab_filter=vocab_filter, kinds=kinds, index=index)
        )
    if atlas is not None:
        for label, kinds in (("neurons_ms", NEURONS), ("heads_ms", HEADS), ("all_ms", NEURONS + HEADS)):
            record[f"atlas_{label}"] = median_ms(
                lambda kinds=kinds: search(model, [word], vocab_filter=vocab_filter, kinds=kinds, atlas=atlas)
            )
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--atlas", type=Path, default=Path("/tmp/minilm_atlas"))
    parser.add_argument("--gpt2-dir", type=Path, default=Path("/tmp/gpt2-medium-shaped"))
    parser.add_argument("--skip-gpt2", action="store_true")
    args = parser.parse_args()
    from embspace import VocabFilter, open_model
    from embspace.atlas import Atlas
    from embspace.runtime import configure

    configure()
    minilm = open_model("sentence-transformers/all-MiniLM-L6-v2")
    atlas = Atlas.open(args.atlas) if (args.atlas / "manifest.json").exists() else None
    print(json.dumps({"minilm": figures(minilm, "king", None, atlas)}), flush=True)
    if not args.skip_gpt2:
        from bench_atlas import build_gpt2_medium_shaped

        build_gpt2_medium_shaped(args.gpt2_dir)
        model = open_model(str(args.gpt2_dir))
        # The test tokenizer is small: keep the padding rows so all 50257 tokens are ranked.
        print(json.dumps({"gpt2_medium_shaped": figures(model, "king", VocabFilter(exclude_special=False))}))


if __name__ == "__main__":
    main()
