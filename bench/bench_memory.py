"""Peak memory of serving a GPT-2-medium-sized model through embspace (the Community Cloud budget).

Builds a random GPT-2-medium-shaped checkpoint (24 layers, 16 heads, d=1024, V=50257, ~1.4 GB of
safetensors) once, then, in a fresh child process, opens it and serves every layer the way the
dashboard does: a neuron view and W_VO pairs of a head in each of the 24 layers (plus W_QK in a
few), and the copying score of every head. RSS (psutil memory_info().rss: anonymous memory AND
mapped file pages) is sampled after every view; the table shows its maximum and the peak.

    .venv/bin/python bench/bench_memory.py [--dir /tmp/gpt2-medium-shaped]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from common import build_gpt2_medium_shaped


def child(directory: str) -> None:
    """Runs in a fresh process: the dashboard's reads, then the peak RSS as JSON."""
    import psutil

    from embspace import PairFilter, VocabFilter, copying_scores, head_top_pairs, neuron_top_tokens, open_model
    from embspace.runtime import configure

    configure()
    process = psutil.Process()
    samples = []
    started = time.perf_counter()
    model = open_model(directory)
    opened = time.perf_counter() - started
    samples.append(process.memory_info().rss)
    # The test tokenizer is small; keep the padded rows so every one of the 50257 rows is scanned.
    vocab_filter = VocabFilter(exclude_special=False)
    for layer in range(model.shape.n_layers):
        neuron_top_tokens(model, layer, 7, k=30, vocab_filter=vocab_filter)
        for kind in ("vo", "qk") if layer % 8 == 0 else ("vo",):
            head_top_pairs(
                model, kind, layer, 5, k=50, vocab_filter=vocab_filter, pair_filter=PairFilter(exclude_same=True)
            )
        samples.append(process.memory_info().rss)
    copying_scores(model)
    samples.append(process.memory_info().rss)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # RSS also counts the pages of the memory-mapped safetensors files that were read: page cache
    # the kernel can drop, unlike RssAnon (tensors, Python, torch).
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    record = {
        "open_s": round(opened, 2),
        "total_s": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(peak_mb),
        "max_sampled_rss_mb": round(max(samples) / 2**20),
        "anon_mb": round(int(status["RssAnon"].split()[0]) / 1024),
        "file_mb": round(int(status["RssFile"].split()[0]) / 1024),
    }
    print(json.dumps(record))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/embspace-gpt2-medium-shaped")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.dir)
        return
    directory = Path(args.dir)
    build_gpt2_medium_shaped(directory)
    weights_gb = sum(f.stat().st_size for f in directory.glob("*.safetensors")) / 1e9
    result = subprocess.run(
        [sys.executable, __file__, "--child", "--dir", str(directory)], capture_output=True, text=True, check=True
    )
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    print(
        f"| GPT-2-medium shape, {weights_gb:.2f} GB safetensors | open {measured['open_s']} s | "
        f"24 layers x (neuron + VO) + 3 QK + 384 copying scores: {measured['total_s']} s | "
        f"RSS sampled after each view, max {measured['max_sampled_rss_mb']} MB; peak {measured['peak_rss_mb']} MB | "
        f"at the end: {measured['anon_mb']} MB anonymous + "
        f"{measured['file_mb']} MB mapped file pages |"
    )


if __name__ == "__main__":
    main()
