"""Atlas figures for the README: MiniLM atlas build time and size, view reads from it, and the
all-neuron FFN scan of a GPT-2-medium-shaped model (issue 9's 60 s target).

    .venv/bin/python bench/bench_atlas.py [--out /tmp/minilm_atlas] [--gpt2-dir /tmp/gpt2-medium-shaped]
        [--skip-build] [--skip-gpt2] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from common import build_gpt2_medium_shaped, median_ms


def minilm(out: Path, skip_build: bool) -> dict:
    from embspace import VocabFilter, open_model
    from embspace.atlas import Atlas, build_atlas, filter_pairs, filter_tokens

    model = open_model("sentence-transformers/all-MiniLM-L6-v2")
    record = {}
    if not skip_build:
        summary = build_atlas(model, out, k=200, progress=False)
        record["build_s"] = round(summary.seconds, 1)
    record["size_mb"] = round(sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20, 1)
    atlas = Atlas.open(out)
    strict = VocabFilter(only_alnum=True)
    reads = {
        "head_pairs (W_VO L5 H3, +)": lambda: atlas.head_pairs("vo", 5, 3),
        "head_pairs + only_alnum filter, k=50": lambda: filter_pairs(
            atlas.head_pairs("vo", 5, 3), model, 50, strict, None, atlas.k
        ),
        "neuron_tokens (L3 N42, 4 vectors)": lambda: atlas.neuron_tokens(3, 42),
        "neuron_tokens + only_alnum filter, k=30": lambda: [
            filter_tokens(f, model, 30, strict, atlas.k) for f in atlas.neuron_tokens(3, 42).values()
        ],
        "head_scores (every head)": atlas.head_scores,
        "open + matches": lambda: Atlas.open(out).matches(model),
    }
    record["view_ms"] = {label: median_ms(read, 7, warm=False) for label, read in reads.items()}
    return record


def gpt2_ffn_scan(directory: Path, device: str) -> dict:
    from embspace import VocabFilter, open_model
    from embspace.compute.ffn_scan import NeuronScanner

    build_gpt2_medium_shaped(directory)
    model = open_model(str(directory))
    started = time.perf_counter()
    # The test tokenizer is small: keep the padding rows so every one of the 50257 tokens is ranked.
    scanner = NeuronScanner(model, 50, VocabFilter(exclude_special=False), device=device)
    assert scanner.E.shape[1] == 50257
    per_layer = []
    for layer in range(model.shape.n_layers):
        layer_started = time.perf_counter()
        scanner.scan(layer)
        per_layer.append(time.perf_counter() - layer_started)
    return {
        "device": device,
        "layers": len(per_layer),
        "total_s": round(time.perf_counter() - started, 1),
        "median_layer_s": round(statistics.median(per_layer), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/minilm_atlas"))
    parser.add_argument("--gpt2-dir", type=Path, default=Path("/tmp/gpt2-medium-shaped"))
    parser.add_argument("--skip-build", action="store_true", help="reuse the MiniLM atlas already in --out")
    parser.add_argument("--skip-gpt2", action="store_true")
    parser.add_argument("--skip-minilm", action="store_true")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    from embspace.runtime import configure

    configure()
    if not args.skip_minilm:
        print(json.dumps({"minilm_atlas": minilm(args.out, args.skip_build)}, ensure_ascii=False), flush=True)
    if not args.skip_gpt2:
        print(json.dumps({"gpt2_medium_ffn_scan_top50": gpt2_ffn_scan(args.gpt2_dir, args.device)}), flush=True)


if __name__ == "__main__":
    main()
