"""Server-side page runs of the dashboard (bundled MiniLM): what a click costs before the browser draws.

    .venv/bin/python bench/bench_pages.py [--repeats 5] [--atlas DIR]

Runs `app.py` in Streamlit's own script runner (streamlit.testing's AppTest, the runner a server
uses, without the websocket) and times whole script runs:
- the first view in a fresh process (the model is opened);
- a new session on an uncached W_VO head / FFN neuron (pairs or tokens, copying score, t-SNE, figure);
- the same session moving to another uncached head / neuron;
- a rerun of a view already computed, and a change of the plot's options only (3D <-> 2D), with
  the number of table computations that change caused ($EMBSPACE_COMPUTE_LOG; expected 0);
- the bytes of the plotly figure sent to the browser;
- with --atlas DIR (an atlas of the bundled model, e.g. from `python -m embspace atlas build --out
  DIR`): the same views answered from it (issue 7's target: under 300 ms per view).
Prints a markdown table (medians over --repeats, each on another head or neuron).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))


def app_test(page: str, **params: str):
    import streamlit.testing.v1.app_test as app_test_module
    from app_harness import APP, SteadyStatePagesManager
    from streamlit.testing.v1 import AppTest

    app_test_module.PagesManager = SteadyStatePagesManager  # a server past its first run
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.query_params.update(params)
    return at.switch_page(page)


def timed_run(at) -> float:
    started = time.perf_counter()
    at.run()
    if at.exception:
        raise RuntimeError(at.exception[0].value)
    return time.perf_counter() - started


def figure_bytes(at) -> int:
    return sum(len(chart.proto.spec.encode()) for chart in at.get("plotly_chart"))


def table_computations(log: Path) -> int:
    return sum(1 for line in log.read_text().splitlines() if '"head_pairs"' in line) if log.exists() else 0


def measure(repeats: int, log: Path) -> list[tuple[str, float | str]]:
    rows: list[tuple[str, float | str]] = []
    first = app_test("pages/vo.py", head="0")
    rows.append(("first view in a fresh process (model opened), s", timed_run(first)))
    for page, unit in (("pages/vo.py", "head"), ("pages/neurons.py", "neuron")):
        name = "W_VO head" if unit == "head" else "FFN neuron"
        fresh = [timed_run(app_test(page, layer="1", **{unit: str(10 + i)})) for i in range(repeats)]
        rows.append((f"new session, uncached {name}, s (median)", statistics.median(fresh)))
        at = app_test(page, layer="2", **{unit: "0"})
        timed_run(at)
        moved, again, plot_only = [], [], []
        for i in range(1, repeats + 1):
            at.number_input(key=unit).set_value(i)
            moved.append(timed_run(at))
            again.append(timed_run(at))
            before = table_computations(log)
            dims = at.radio(key="dims")
            dims.set_value(2 if dims.value == 3 else 3)
            plot_only.append(timed_run(at))
            if unit == "head":
                rows_recomputed = table_computations(log) - before
        rows.append((f"same session, next uncached {name}, s (median)", statistics.median(moved)))
        rows.append((f"rerun of a computed {name} view, s (median)", statistics.median(again)))
        rows.append((f"plot options only (3D/2D), {name}, s (median)", statistics.median(plot_only)))
        if unit == "head":
            rows.append(("tables recomputed by a plot-option change", str(rows_recomputed)))
        rows.append((f"plotly figure sent, {name} page, kB", figure_bytes(at) / 1000))
    return rows


def measure_atlas(repeats: int, atlas: Path) -> list[tuple[str, float | str]]:
    """New-session and next-view runs of the head and neuron pages answered from `atlas`."""
    from dashboard import atlas_view

    os.environ["EMBSPACE_ATLAS_DIR"] = str(atlas)
    atlas_view.model_atlas.clear()  # the runs above cached "no atlas" for this model
    rows: list[tuple[str, float | str]] = []
    for page, unit, name in (("pages/vo.py", "head", "W_VO head"), ("pages/neurons.py", "neuron", "FFN neuron")):
        fresh = []
        for i in range(repeats):
            at = app_test(page, layer="3", **{unit: str(20 + i) if unit == "neuron" else str(i)})
            fresh.append(timed_run(at))
            if not any("From the atlas" in caption.value for caption in at.caption):
                raise RuntimeError(f"the {name} page did not answer from {atlas}")
        rows.append((f"from the atlas: new session, {name} not viewed before, s (median)", statistics.median(fresh)))
        moved = []
        for i in range(1, repeats + 1):
            at.number_input(key=unit).set_value(40 + i if unit == "neuron" else 6 + i)
            moved.append(timed_run(at))
        rows.append((f"from the atlas: same session, next {name}, s (median)", statistics.median(moved)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--atlas", type=Path, help="an atlas of the bundled model: also time views answered from it")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "computations.log"
        os.environ["EMBSPACE_COMPUTE_LOG"] = str(log)
        rows = measure(args.repeats, log)
        if args.atlas:
            rows += measure_atlas(args.repeats, args.atlas)
    print(f"\nServer-side page runs, bundled MiniLM, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}\n")
    print("| what | value |\n|---|---|")
    for what, value in rows:
        print(f"| {what} | {value if isinstance(value, str) else f'{value:.3f}'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
