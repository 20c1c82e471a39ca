"""What the benchmarks share: the repository root (put on sys.path on import, so `embspace` imports),
the median of repeated timings, the random GPT-2-medium-shaped checkpoint several of them measure, and
for the server benchmarks a `streamlit run app.py` with its process tree's CPU and memory, the CPU's name,
and the pairs tables the pages should show.

Each bench script runs with bench/ as sys.path[0], so it imports this as `common`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))
from browser import free_port, server_healthy  # noqa: E402  (the tests' server helpers, one copy)


def median_ms(call: Callable[[], object], repeats: int, *, warm: bool = True) -> float:
    """Median wall time of `repeats` calls, in ms rounded to 0.1. warm: one untimed call first, so
    what is read or built once (a layer, a filter mask) is not what is measured."""
    if warm:
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def build_gpt2_medium_shaped(directory: Path) -> None:
    """A random GPT-2-medium-shaped checkpoint (24 layers, 16 heads, d=1024, d_ff=4096, V=50257, ~1.4 GB
    of safetensors) with the tests' byte-level tokenizer, saved once in `directory`."""
    if (directory / "model.safetensors").exists():
        return
    import torch  # heavy: only when a checkpoint is built, so `--help` stays quick
    from tokenizer_factory import byte_level_tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_layer=24, n_head=16, n_embd=1024, vocab_size=50257, n_positions=64)
    GPT2LMHeadModel(config).save_pretrained(directory, safe_serialization=True)
    byte_level_tokenizer().save_pretrained(directory)


# --- a `streamlit run app.py` server and what its process tree costs ---------------------------------

SERVER_START_S = 120
# The page's pairs table as the sidebar's defaults build it (dashboard/sidebar.py: DEFAULT_K rows, the
# default VocabFilter, no pair filter, most positive), computed for the heads given as JSON in argv[1].
EXPECTED_PAIRS_CODE = """
import json, sys
from dashboard.sidebar import DEFAULT_K
from embspace import DEFAULT_MODEL, PairFilter, VocabFilter, head_top_pairs, open_model, runtime
runtime.configure()
model = open_model(DEFAULT_MODEL)
kind, heads = json.loads(sys.argv[1])
vocab_filter = VocabFilter(only_ascii=False, only_alnum=False, alphabet="latin", exclude_special=True)
found = {}
for layer, head in heads:
    table = head_top_pairs(model, kind, layer, head, DEFAULT_K, vocab_filter, PairFilter(), False)
    found[f"{layer}:{head}"] = [table.row_tokens[0], table.col_tokens[0], float(table.scores[0])]
print(json.dumps(found))
"""


def cpu_description() -> str:
    """The CPU as /proc/cpuinfo names it, with the flags the engine's speed depends on, and the core count."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"unknown CPU, {os.cpu_count()} cores"
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    marks = ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in ("avx512_bf16", "avx2"))
    return f"{model} ({marks}), {len(os.sched_getaffinity(0))} cores"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (other work on the machine skews every timing)."""
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def stop_process_group(process: subprocess.Popen) -> None:
    """End the server's process group: SIGTERM, then SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)


@contextlib.contextmanager
def streamlit_app(options: list[str], env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """`streamlit run app.py` on a free port of 127.0.0.1 with `options` (e.g. ["--runner.postScriptGC",
    "false"]) after the repository's .streamlit/config.toml; yields (process, base URL) once healthy.
    Only the port and address are set here, so the config file is what a plain `streamlit run` reads."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py",
               "--server.port", str(port), "--server.address", "127.0.0.1", *options]  # fmt: skip
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **env}
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not server_healthy(url):
            if time.monotonic() > deadline or process.poll() is not None:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                raise SystemExit(f"`streamlit run app.py {' '.join(options)}` did not start:\n{tail}")
            time.sleep(0.3)
        yield process, url
    finally:
        stop_process_group(process)


class ServerTree(threading.Thread):
    """A process and its children: CPU seconds used so far, and peak RSS (bytes) sampled every `every` s,
    overall (`peak`) and since the last `start_window()` (`window_peak`)."""

    def __init__(self, pid: int, every: float = 0.1):
        super().__init__(daemon=True)
        self.root, self.every = psutil.Process(pid), every
        self.peak = self.window_peak = 0
        self.running = True

    def processes(self) -> list[psutil.Process]:
        return [self.root, *self.root.children(recursive=True)]

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the tree (threads included; a child that exited is not counted)."""
        total = 0.0
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        return total

    def rss(self) -> int:
        total = 0
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
        return total

    def start_window(self) -> None:
        self.window_peak = self.rss()

    def run(self) -> None:
        while self.running:
            with contextlib.suppress(psutil.Error):
                rss = self.rss()
                self.peak, self.window_peak = max(self.peak, rss), max(self.window_peak, rss)
            time.sleep(self.every)

    def stop(self) -> None:
        self.running = False
        self.join(timeout=5)


def expected_top_pairs(kind: str, heads: list[tuple[int, int]]) -> dict[tuple[int, int], tuple[str, str, float]]:
    """{(layer, head): (row token, column token, score)} of each head's best pair on the bundled model, as
    the page shows it with the sidebar's defaults. Computed in a subprocess, so the model it opens is
    neither in this process's memory nor in the server's."""
    result = subprocess.run(
        [sys.executable, "-c", EXPECTED_PAIRS_CODE, json.dumps([kind, sorted(set(heads))])],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"computing the expected top pairs failed:\n{result.stderr[-3000:]}")
    found = json.loads(result.stdout.strip().splitlines()[-1])
    return {tuple(map(int, key.split(":"))): (row, col, score) for key, (row, col, score) in found.items()}


def nearest_rank(values: list[float], fraction: float) -> float:
    """The `fraction` quantile by nearest rank (p95 of 8 values is the largest): no interpolation."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]
