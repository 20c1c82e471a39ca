"""Atlas figures for the README: MiniLM atlas build time and size, view reads from it, and the
all-neuron FFN scan of a GPT-2-medium-shaped model (issue 9's 60 s target).

    .venv/bin/python bench/bench_atlas.py [--out /tmp/minilm_atlas] [--gpt2-dir /tmp/gpt2-medium-shaped]
        [--skip-build] [--skip-gpt2] [--device cpu|cuda]
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


def build_gpt2_medium_shaped(directory: Path) -> None:
    """A random GPT-2-medium-shaped checkpoint (24 layers, d=1024, d_ff=4096, V=50257), safetensors."""
    if (directory / "model.safetensors").exists():
        return
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    sys.path.insert(0, str(ROOT / "tests"))
    from tokenizer_factory import byte_level_tokenizer

    torch.manual_seed(0)
    config = GPT2Config(n_layer=24, n_head=16, n_embd=1024, vocab_size=50257, n_positions=64)
    GPT2LMHeadModel(config).save_pretrained(directory, safe_serialization=True)
    byte_level_tokenizer().save_pretrained(directory)


def median_ms(call, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


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
    record["view_ms"] = {
        "head_pairs (W_VO L5 H3, +)": median_ms(lambda: atlas.head_pairs("vo", 5, 3)),
        "head_pairs + only_alnum filter, k=50": median_ms(
            lambda: filter_pairs(atlas.head_pairs("vo", 5, 3), model, 50, strict, None, atlas.k)
        ),
        "neuron_tokens (L3 N42, 4 vectors)": median_ms(lambda: atlas.neuron_tokens(3, 42)),
        "neuron_tokens + only_alnum filter, k=30": median_ms(
            lambda: [filter_tokens(f, model, 30, strict, atlas.k) for f in atlas.neuron_tokens(3, 42).values()]
        ),
        "head_scores (every head)": median_ms(atlas.head_scores),
        "open + matches": median_ms(lambda: Atlas.open(out).matches(model)),
    }
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
