"""Many viewers at once: 8 browser sessions on one `streamlit run app.py` server (bundled MiniLM).

    .venv/bin/python bench/bench_sessions.py [--sessions 8]

Measures, in one run against one server (real headless Chromium, Debian's /usr/bin/chromium):
- one session alone opening an uncached W_VO head page, until its table and plot are drawn;
- `--sessions` sessions at once on as many different uncached heads: the time until all are drawn,
  and its ratio to the one-alone time (target: at most 3x);
- `--sessions` sessions at once on the same uncached head: how many times the server computed it
  (from $EMBSPACE_COMPUTE_LOG, one line per real computation; target: once);
- the server's resident memory (RSS of its process tree, mapped pages included), sampled every
  0.2 s throughout (target: under 1.5 GB).
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from browser import CHROMIUM_ARGS, LOAD_MS, chromium_path, free_port, server_healthy, stop_server  # noqa: E402

READY = '[data-testid="stApp"][data-test-connection-state="CONNECTED"][data-test-script-state="notRunning"]'


def start_server(compute_log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMBSPACE_COMPUTE_LOG": str(compute_log)}
    command = [str(ROOT / ".venv/bin/streamlit"), "run", "app.py", "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1",
               "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while not server_healthy(url):
        if time.monotonic() > deadline or process.poll() is not None:
            stop_server(process)
            raise SystemExit("the server did not start")
        time.sleep(0.5)
    return process, url


class RssSampler(threading.Thread):
    """Peak RSS (bytes) of a process and its children, sampled until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.process, self.peak, self.running = psutil.Process(pid), 0, True

    def run(self) -> None:
        while self.running:
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.2)


async def open_views(browser, url: str, paths: list[str]) -> float:
    """Open every path in its own browser context at once; seconds until all are drawn."""

    async def one(path: str) -> None:
        context = await browser.new_context(viewport={"width": 1400, "height": 900})
        try:
            page = await context.new_page()
            await page.goto(url + path, wait_until="domcontentloaded")
            await page.wait_for_selector('[data-testid="stDataFrame"]', timeout=LOAD_MS)
            await page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=LOAD_MS)
            await page.wait_for_selector(READY, state="attached", timeout=LOAD_MS)
        finally:
            await context.close()

    start = time.perf_counter()
    await asyncio.gather(*(one(path) for path in paths))
    return time.perf_counter() - start


def computations(log: Path, layer: int, head: int) -> int:
    lines = log.read_text().splitlines() if log.exists() else []
    return sum(1 for line in lines if json.loads(line)[:4] == ["head_pairs", "vo", layer, head])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by the server process (its threads included)."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def measure(url: str, sessions: int, log: Path, server_pid: int, query: str = "") -> dict[str, float]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            await open_views(browser, url, ["/vo?layer=5&head=11"])  # opens the model: not measured
            cpu = cpu_seconds(server_pid)
            alone = await open_views(browser, url, [f"/vo?layer=0&head=0{query}"])
            alone_cpu, cpu = cpu_seconds(server_pid) - cpu, cpu_seconds(server_pid)
            heads = [(1 + i // 12, i % 12) for i in range(sessions)]
            many = await open_views(browser, url, [f"/vo?layer={layer}&head={head}{query}" for layer, head in heads])
            many_cpu = cpu_seconds(server_pid) - cpu
            same = await open_views(browser, url, [f"/vo?layer=4&head=7{query}"] * sessions)
        finally:
            await browser.close()
    return {
        "alone": alone,
        "many": many,
        "same": same,
        "same_computed": computations(log, 4, 7),
        "alone_cpu": alone_cpu,
        "many_cpu": many_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--query", default="", help='appended to every view\'s address, e.g. "&dims=2"')
    args = parser.parse_args()
    log = Path(tempfile.mkdtemp(prefix="embspace-bench-")) / "computations.jsonl"
    process, url = start_server(log)
    sampler = RssSampler(process.pid)
    sampler.start()
    try:
        result = asyncio.run(measure(url, args.sessions, log, process.pid, args.query))
    finally:
        sampler.running = False
        stop_server(process)
    n = args.sessions
    print("| measurement | value | target |\n|---|---|---|")
    print(f"| 1 session, uncached W_VO head page drawn | {result['alone']:.1f} s | |")
    print(f"| {n} sessions, {n} different uncached heads, all drawn | {result['many']:.1f} s "
          f"({result['many'] / result['alone']:.2f}x one alone) | <= 3x |")  # fmt: skip
    share = result["many_cpu"] / max(result["many"], 1e-9) * 100
    print(f"| server CPU for them: one alone / {n} at once | {result['alone_cpu']:.2f} s / {result['many_cpu']:.2f} s "
          f"({share:.0f}% of one core over the {n}-session wall time) | |")  # fmt: skip
    print(f"| {n} sessions, the same uncached head, all drawn | {result['same']:.1f} s | |")
    print(f"| times that head was computed | {result['same_computed']} | 1 |")
    print(f"| server peak RSS (process tree, mapped pages included) | {sampler.peak / 1e6:,.0f} MB | < 1500 MB |")


if __name__ == "__main__":
    main()
