"""Speed of the engine, idle and beside a CPU hog: exact top pairs, the 72-head export, a head view.

    .venv/bin/python bench/bench_speed.py [--skip-notebook] [--gpt2-notebook] [--llama] [--repeats 5]

Every measurement runs in a fresh child process that calls `embspace.runtime.configure()` first,
as the CLI and the app do. Ratios are taken within this run (same machine, same load):
- pairs: median seconds per head of `top_pairs` (head factors included) against the notebook
  method (bench/notebook_method.py, the full V x V matrix) on bundled MiniLM heads; a
  GPT-2-medium-shaped random head (the notebook on it needs ~18 GB: --gpt2-notebook); a
  Llama-3-8B-shaped W_VO head (--llama: V=128256, d=4096, d_head=128, only E, W_V^h, W_O^h built).
- export: `python -m embspace export --kind vo --k 50` wall time with start-up, split into import,
  open_model and the scans.
- steadiness: export and a head view (pairs, t-SNE of their tokens, figure) idle, then with a
  CPU-bound process running beside them (the benchmark starts it), and the ratio.
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
MINILM_HEADS = [("vo", 0, 0), ("vo", 2, 5), ("vo", 5, 11), ("qk", 1, 3), ("qk", 3, 7), ("qk", 5, 0)]
NOTEBOOK_HEADS = MINILM_HEADS[1:2] + MINILM_HEADS[3:4]  # the notebook takes ~20 s a head
LLAMA = {"vocab": 128256, "d_model": 4096, "d_head": 128}
HOG = "while True: pass"


# ---------------------------------------------------------------------------------------------
# Child processes


def child(task: str, spec: dict) -> dict:
    sys.path[:0] = [str(ROOT), str(BENCH)]
    from embspace.runtime import configure

    configure()
    if task == "pairs":
        return _pairs_child(spec)
    if task == "view":
        return _view_child(spec)
    raise SystemExit(f"unknown task {task}")


def _factors(spec: dict):
    """(emb_rows [V, d], w1 [d, r], w2 [r, d], emb_cols [d, V]) of one head."""
    import torch
    from bench_pairs import gpt2_random_head, minilm_head

    if spec["model"] == "minilm":
        return minilm_head(spec["kind"], spec["layer"], spec["head"])
    if spec["model"] == "gpt2":
        return gpt2_random_head(spec["kind"], spec["layer"], spec["head"])
    vocab, d_model, d_head = LLAMA["vocab"], LLAMA["d_model"], LLAMA["d_head"]
    gen = torch.Generator().manual_seed(0)
    emb = torch.randn(vocab, d_model, generator=gen).mul_(0.02)
    # Grouped K/V: a head's W_V^h is its KV group's [d, 128] block; only that block is needed.
    return (
        emb,
        torch.randn(d_model, d_head, generator=gen) * 0.02,
        torch.randn(d_head, d_model, generator=gen) * 0.02,
        emb.T,
    )


def _pairs_child(spec: dict) -> dict:
    from embspace.compute.topk import top_pairs
    from embspace.compute.vocab_matmul import vocab_factors

    emb_rows, w1, w2, emb_cols = _factors(spec)
    times = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        if spec["method"] == "notebook":
            from notebook_method import notebook_top_pairs

            rows, cols, _ = notebook_top_pairs(emb_rows, w1, w2, emb_cols, spec["k"])
        else:
            # The factors as the product computes them (embspace.compute.heads): one GEMM on E for both.
            left, right_t = vocab_factors(emb_rows, w1, emb_cols.T, w2.T)
            found = top_pairs(left, right_t.T, spec["k"])
            rows, cols = found.row_ids, found.col_ids
        times.append(time.perf_counter() - start)
    return {"seconds": times, "pairs": sorted(zip(rows.tolist(), cols.tolist(), strict=True))}


def _view_child(spec: dict) -> dict:
    """A head page's engine work, uncached: pairs, t-SNE of their tokens, the figure."""
    from dashboard.scatter_plot import scatter_figure
    from embspace import open_model
    from embspace.compute.projections import head_top_pairs
    from embspace.compute.tsne import scatter_frame, tsne_coordinates
    from embspace.model.sources import DEFAULT_MODEL

    model = open_model(DEFAULT_MODEL)
    times = []
    for layer, head in [(2, 5), (4, 1), (5, 9)]:
        start = time.perf_counter()
        table = head_top_pairs(model, "vo", layer, head, k=50)
        ids = list(dict.fromkeys([*table.row_ids.tolist(), *table.col_ids.tolist()]))
        coords = tsne_coordinates(model.embedding_rows[ids], dims=3)
        labels = model.vocab.display_many(ids)
        scatter_figure(scatter_frame(ids, labels, [0.0] * len(ids), coords), dims=3)
        times.append(time.perf_counter() - start)
    return {"seconds": times}


def run_child(task: str, spec: dict) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", task, json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    return {"error": (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]}


# ---------------------------------------------------------------------------------------------
# The export through the CLI, and the CPU hog


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True)
    return time.perf_counter() - start


def export_breakdown() -> dict:
    """Wall seconds: interpreter + imports, + open_model, and the whole 72-head export."""
    python = sys.executable
    with tempfile.TemporaryDirectory() as scratch:
        out = str(Path(scratch) / "heads.jsonl")
        total = timed([python, "-m", "embspace", "export", "--kind", "vo", "--k", "50", "--out", out])
    imports = timed([python, "-c", "import embspace.cli.main"])
    opened = timed(
        [python, "-c", "import embspace.cli.main as c; c.configure_runtime(); c.open_model(c.DEFAULT_MODEL)"]
    )
    return {"total": total, "imports": imports, "open_model": opened - imports, "scans": total - opened}


class CpuHog:
    """One CPU-bound process beside the measurement (a pure-Python busy loop)."""

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-c", HOG])
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


# ---------------------------------------------------------------------------------------------
# Tables


def pairs_table(args) -> None:
    print("| model | heads | embspace median s/head | notebook median s/head | ratio | same pairs |")
    print("|---|---:|---:|---:|---:|---|")
    ours, theirs, same = [], [], True
    for kind, layer, head in MINILM_HEADS:
        spec = {"model": "minilm", "kind": kind, "layer": layer, "head": head, "k": args.k}
        mine = run_child("pairs", {**spec, "method": "embspace", "repeats": args.repeats})
        ours.append(statistics.median(mine["seconds"]))
        if not args.skip_notebook and (kind, layer, head) in NOTEBOOK_HEADS:
            ref = run_child("pairs", {**spec, "method": "notebook", "repeats": 1})
            theirs.append(ref["seconds"][0])
            same &= ref["pairs"] == mine["pairs"]
    _pairs_row("MiniLM (bundled)", ours, theirs, same)
    gpt2 = {"model": "gpt2", "kind": "vo", "layer": 0, "head": 0, "k": args.k}
    mine = run_child("pairs", {**gpt2, "method": "embspace", "repeats": args.repeats})
    ref = run_child("pairs", {**gpt2, "method": "notebook", "repeats": 1}) if args.gpt2_notebook else None
    _pairs_row(
        "GPT-2-medium shape, random",
        [statistics.median(mine["seconds"])],
        ref["seconds"] if ref and "seconds" in ref else [],
        bool(ref) and ref.get("pairs") == mine["pairs"],
    )
    if args.llama:
        mine = run_child(
            "pairs",
            {"model": "llama", "kind": "vo", "layer": 0, "head": 0, "k": args.k, "method": "embspace", "repeats": 1},
        )
        _pairs_row("Llama-3-8B shape (V=128256, d_head=128), random", mine.get("seconds", []), [], False)


def _pairs_row(label: str, ours: list[float], theirs: list[float], same: bool) -> None:
    mine = statistics.median(ours) if ours else float("nan")
    ref = statistics.median(theirs) if theirs else None
    ratio = f"{ref / mine:.0f}x" if ref else "n/a"
    print(
        f"| {label} | {len(ours)} | {mine:.3f} | {f'{ref:.2f}' if ref else 'not run'} | {ratio} | "
        f"{'n/a' if not ref else 'yes' if same else 'NO'} |",
        flush=True,
    )


def load_table() -> None:
    print("| work | idle (s) | beside a CPU hog (s) | ratio |")
    print("|---|---:|---:|---:|")
    idle_export = export_breakdown()
    idle_view = statistics.median(run_child("view", {})["seconds"])
    with CpuHog():
        busy_export = export_breakdown()
        busy_view = statistics.median(run_child("view", {})["seconds"])
    for label, idle, busy in (
        ("export, 72 MiniLM W_VO heads, k=50, start-up included", idle_export["total"], busy_export["total"]),
        ("head view: pairs + t-SNE + figure (median of 3 heads)", idle_view, busy_view),
    ):
        print(f"| {label} | {idle:.2f} | {busy:.2f} | {busy / idle:.2f}x |", flush=True)
    print("\nExport wall time, idle: " + ", ".join(f"{name} {value:.2f} s" for name, value in idle_export.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-notebook", action="store_true", help="no notebook runs (no ratios)")
    parser.add_argument("--gpt2-notebook", action="store_true", help="notebook on the GPT-2 shape (~18 GB)")
    parser.add_argument("--llama", action="store_true", help="also a Llama-3-8B-shaped head (~3 GB, minutes)")
    parser.add_argument("--only", choices=("pairs", "load"), help="one table only")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(args.child[0], json.loads(args.child[1]))), flush=True)
        return 0
    print(f"# embspace speed; {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.1f}\n")
    if args.only in (None, "pairs"):
        pairs_table(args)
        print()
    if args.only in (None, "load"):
        load_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
