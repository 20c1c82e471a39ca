"""One click in a real browser: the time from clicking to the next head's table and plot drawn.

    .venv/bin/python bench/bench_click.py [--clicks 10] [--button LABEL] [--query "&dims=3"]
        [--layer 0 --head 0] [--server-option KEY=VALUE ...] [--json PATH]

Opens /vo?layer=L&head=H on a fresh `streamlit run app.py` (bundled MiniLM) in headless Chromium
(Debian's /usr/bin/chromium), waits until it is drawn, then clicks the Head number input's "+" (or,
with --button, the main pane's button of that label, e.g. "Next head") `--clicks` times. Per click:
- drawn: from the click's pointerdown to the first animation frame where the app is connected and
  its script not running, the plot's title names a different head than before, and the table's rank-1
  row holds that head's top pair (computed before the first click, in a subprocess);
- runs: how many script runs the click caused, from the page's data-test-script-state transitions
  into "running" (a MutationObserver), counted until the next click (after `--settle` seconds idle);
  a rerun caused by rewriting the address would show as 2;
- settled: from the click to the later of drawn and the last transition back to notRunning (equal to
  drawn with one run: the page is idle before the browser has finished drawing).
Prints a markdown table (median and p95) and the server's CPU seconds per click.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import (
    ROOT,
    ServerTree,
    cpu_description,
    expected_top_pairs,
    load_average,
    nearest_rank,
    streamlit_app,
)

sys.path.insert(0, str(ROOT / "tests"))
from browser import CHROMIUM_ARGS, LOAD_MS, VIEWPORT, chromium_path  # noqa: E402

LAYERS, HEADS = 6, 12  # the bundled MiniLM's
CLICK_TIMEOUT_MS = 120_000

# Records every script-state transition ([state, ms]) and the last pointerdown's time, from the page's side.
WATCH_JS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    window.__states = [[app.dataset.testScriptState, performance.now()]];
    new MutationObserver(() => {
        const state = app.dataset.testScriptState;
        if (state !== window.__states[window.__states.length - 1][0]) window.__states.push([state, performance.now()]);
    }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
    document.addEventListener('pointerdown', () => { window.__clickAt = performance.now(); }, true);
}"""

# Truthy ({head: "L:H", at: ms}) once the page shows a head other than `before`, drawn and idle, with the
# table's rank-1 row equal to that head's expected top pair.
DRAWN_JS = """([before, expected]) => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.dataset.testConnectionState !== 'CONNECTED' || app.dataset.testScriptState !== 'notRunning') return false;
    const plot = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
    const title = (plot && plot._fullLayout && plot._fullLayout.title && plot._fullLayout.title.text) || '';
    const found = title.match(/Layer (\\d+), head (\\d+)/);
    if (!found) return false;
    const head = `${found[1]}:${found[2]}`;
    const grid = document.querySelector('[data-testid="stDataFrame"]');
    const rows = grid ? grid.querySelectorAll('[role="row"]') : [];
    if (head === before || rows.length < 2 || !(head in expected)) return false;
    const cells = Array.from(rows[1].querySelectorAll('[role="gridcell"]'), cell => cell.textContent);
    if (cells[1] !== expected[head][0] || cells[2] !== expected[head][1]) return false;
    return {head, at: performance.now()};
}"""


def click_target(page, label: str | None):
    """The Head number input's "+" in the main pane, or the main pane's button called `label`."""
    main = page.get_by_test_id("stMain")
    if label is None:
        head_input = main.get_by_test_id("stNumberInput").filter(has_text="Head")
        return head_input.get_by_test_id("stNumberInputStepUp")
    return main.get_by_role("button", name=label).first


def describe_target(label: str | None) -> str:
    return f'button "{label}"' if label else 'the Head number input\'s "+"'


def wait_drawn(page, before: str, expected: dict) -> dict:
    handle = page.wait_for_function(DRAWN_JS, arg=[before, expected], polling="raf", timeout=CLICK_TIMEOUT_MS)
    return handle.json_value()


def one_click(page, target, before: str, expected: dict, settle_s: float) -> dict:
    """Click, wait until the next head is drawn, then until the page stayed idle `settle_s`; what it took."""
    page.evaluate("() => { window.__clickAt = null; }")
    target.click()
    drawn = wait_drawn(page, before, expected)
    while True:  # idle for settle_s: no run started after the last check
        count = page.evaluate("() => window.__states.length")
        page.wait_for_timeout(settle_s * 1000)
        if page.evaluate("() => window.__states.length") == count and page.evaluate(
            "() => window.__states[window.__states.length - 1][0] === 'notRunning'"
        ):
            break
    clicked, states = page.evaluate("() => [window.__clickAt, window.__states]")
    after = [(state, at) for state, at in states if at >= clicked]
    runs = sum(state == "running" for state, _ in after)
    settled = max([drawn["at"], *(at for state, at in after if state == "notRunning")])
    return {"head": drawn["head"], "drawn_ms": drawn["at"] - clicked, "settled_ms": settled - clicked, "runs": runs}


def measure(url: str, args, expected: dict, tree: ServerTree) -> tuple[list[dict], float]:
    """Open the page, then click `args.clicks` times; the clicks and the server's CPU seconds for them."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.set_default_timeout(LOAD_MS)
            page.goto(f"{url}/vo?layer={args.layer}&head={args.head}{args.query}", wait_until="domcontentloaded")
            page.wait_for_selector('[data-testid="stApp"]', state="attached")
            page.evaluate(WATCH_JS)
            head = wait_drawn(page, "", expected)["head"]
            page.wait_for_timeout(args.settle * 1000)
            target, clicks = click_target(page, args.button), []
            try:
                target.wait_for(state="visible", timeout=10_000)
            except PlaywrightTimeout:
                raise SystemExit(f"no {describe_target(args.button)} on the W_VO page") from None
            cpu = tree.cpu_seconds()
            for number in range(1, args.clicks + 1):
                try:
                    clicks.append(one_click(page, target, head, expected, args.settle))
                except PlaywrightTimeout:
                    raise SystemExit(f"click {number}: no other head's table and plot drawn after it") from None
                head = clicks[-1]["head"]
            return clicks, tree.cpu_seconds() - cpu
        finally:
            browser.close()


def report(clicks: list[dict], cpu: float, context: dict) -> str:
    drawn, settled = [c["drawn_ms"] for c in clicks], [c["settled_ms"] for c in clicks]
    runs = [c["runs"] for c in clicks]
    lines = [
        f"CPU: {context['cpu']}; load average (1/5/15 min) before: {context['load_before']}, after: {context['load_after']}",
        f"clicked: {context['clicked']}; server options: {context['options'] or 'config as is'}",
        "",
        "| click | head shown | drawn | script runs | settled |",
        "|---|---|---|---|---|",
        *(
            f"| {i} | {c['head']} | {c['drawn_ms']:.0f} ms | {c['runs']} | {c['settled_ms']:.0f} ms |"
            for i, c in enumerate(clicks, 1)
        ),
        "",
        "| measurement | median | p95 |",
        "|---|---|---|",
        f"| click to the next head's table and plot drawn | {statistics.median(drawn):.0f} ms | "
        f"{nearest_rank(drawn, 0.95):.0f} ms |",
        f"| click to the page idle (last run finished) | {statistics.median(settled):.0f} ms | "
        f"{nearest_rank(settled, 0.95):.0f} ms |",
        f"| script runs per click | {statistics.median(runs):g} | {max(runs)} (max) |",
        f"| server CPU per click | {cpu / len(clicks):.3f} s | |",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument(
        "--button", metavar="LABEL", help='click this button (e.g. "Next head") instead of the Head "+"'
    )
    parser.add_argument("--query", default="", help='appended to the first address, e.g. "&dims=3"')
    parser.add_argument("--layer", type=int, default=0)
    parser.add_argument("--head", type=int, default=0)
    parser.add_argument("--settle", type=float, default=1.0, help="idle seconds after a click before the next")
    parser.add_argument("--server-option", action="append", default=[], metavar="KEY=VALUE",
                        help="passed as --KEY VALUE to `streamlit run` (repeatable)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.clicks < 1:
        parser.error("--clicks must be at least 1")
    if args.button is None and args.head + args.clicks >= HEADS:
        parser.error(f'the Head "+" stops at head {HEADS - 1}: use fewer --clicks or a smaller --head')
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if chromium_path() is None:
        raise SystemExit("no chromium executable (/usr/bin/chromium)")
    options = []
    for option in args.server_option:
        key, _, value = option.partition("=")
        options += [f"--{key}", value]
    heads = [(layer, head) for layer in range(LAYERS) for head in range(HEADS)]
    expected = {f"{l}:{h}": list(pair[:2]) for (l, h), pair in expected_top_pairs("vo", heads).items()}  # noqa: E741
    context = {"cpu": cpu_description(), "load_before": load_average(), "options": " ".join(args.server_option)}
    context["clicked"] = describe_target(args.button)
    with tempfile.TemporaryDirectory(prefix="embspace-click-") as scratch:  # the server's log and annotations
        env = {"EMBSPACE_DATA_DIR": str(Path(scratch) / "data")}
        with streamlit_app(options, env, Path(scratch) / "server.log") as (process, url):
            tree = ServerTree(process.pid)
            tree.start()
            try:
                started = time.perf_counter()
                clicks, cpu = measure(url, args, expected, tree)
            finally:
                tree.stop()
    context["load_after"] = load_average()
    print(report(clicks, cpu, context))
    if args.json:
        summary = {**context, "clicks": clicks, "cpu_s": cpu, "wall_s": time.perf_counter() - started}
        args.json.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
