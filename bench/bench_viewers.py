"""Many viewers without a browser: the server's cost per view, over Streamlit's own websocket protocol.

    .venv/bin/python bench/bench_viewers.py [--viewers 8 32] [--cases alone different same]
        [--atlas DIR|build] [--server-option KEY=VALUE ...] [--compare] [--json PATH]

Each viewer is a new Streamlit session: it opens the server's websocket (/_stcore/stream, subprotocol
"streamlit" as the browser sends it), asks for one run of the W_VO page (BackMsg rerun_script: the page's
query string, page_name "vo" as the browser sends the address's path; no cached messages declared, so
every ForwardMsg comes whole) and reads ForwardMsgs until the run's script_finished. Nothing is drawn:
what is measured is the server's side of a view. Cases, each against a fresh `streamlit run app.py`
(bundled MiniLM, after one untimed view that opens the model):
- alone: one view of an uncached head;
- different: N views at once, on N different uncached heads;
- same: N views at once, on one head already computed.
For each: the wall time until every viewer's run finished, each view's latency (median, p95), the
server process tree's CPU seconds per view and its peak RSS (sampled every 0.1 s). Every viewer must
see its own head (the page's pickers and download names) and the right top pair (the Arrow table of
the page's st.dataframe against head_top_pairs computed before the timed phase, in a subprocess),
and no exception or st.error; if one does not, the script says which and exits 1.

--compare runs every case twice in one run, with the repository's .streamlit/config.toml as is and
with the --server-option settings added (each a `--KEY VALUE` of `streamlit run`). --atlas DIR serves
the atlases in DIR (EMBSPACE_ATLAS_DIR); --atlas build builds the MiniLM atlas (k 50) in a temporary
directory first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import streamlit
import websockets
from common import (
    ROOT,
    ServerTree,
    cpu_description,
    expected_top_pairs,
    load_average,
    nearest_rank,
    streamlit_app,
)
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

KIND, PAGE = "vo", "vo"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
LAYERS, HEADS = 6, 12  # the bundled MiniLM's
CASES = ("alone", "different", "same")
CASE_TITLES = {
    "alone": "1 uncached head, alone",
    "different": "{n} at once, {n} different uncached heads",
    "same": "{n} at once (new sessions), 1 computed head",
}
VIEW_TIMEOUT_S = 600
FINISHED = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR)
STEM = re.compile(rf"({KIND}-layer\d+-head\d+)-csv$")  # the pairs table's CSV download key (its widget id's end)
TARGETS = {"same_ratio": 5.0, "different_ratio": 4.0, "uncached_cpu": 0.2, "computed_cpu": 0.04, "rss_mb": 1500}


@dataclass
class View:
    """One viewer: what it asked for, how long its run took, and what the page it got showed."""

    layer: int
    head: int
    seconds: float = float("nan")  # from opening the websocket to the run's script_finished
    runs: int = 0  # script runs the server started for this view (new_session messages)
    shown_head: list[int] | None = None  # the page's Layer and Head pickers
    stem: str = ""  # the table's download key names the head: "vo-layer3-head7"
    top_pair: list[str] | None = None  # rank 1 (row token, column token) of the page's table
    expected: list[str] | None = None
    from_atlas: bool = False  # the page said its table came from the atlas
    errors: list[str] = field(default_factory=list)  # exceptions, st.error text, protocol surprises
    tables: list[bytes] = field(default_factory=list, repr=False)  # Arrow IPC streams, read after timing

    @property
    def ok(self) -> bool:
        return not self.errors and self.top_pair is not None and self.top_pair == self.expected


@dataclass
class Case:
    name: str
    viewers: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    views: list[View]

    @property
    def latencies(self) -> list[float]:
        return [view.seconds for view in self.views]


# --- one viewer ---------------------------------------------------------------------------------------


def rerun_request(layer: int, head: int, query: str) -> bytes:
    """The BackMsg a browser sends for /vo?layer=L&head=H: one run of that page, no widget state."""
    message = BackMsg()
    message.rerun_script.query_string = f"layer={layer}&head={head}{query}"
    message.rerun_script.page_name = PAGE
    return message.SerializeToString()


def note_element(view: View, message: ForwardMsg) -> None:
    """Keep what the checks need from one new element: tables, the head pickers, download keys, errors."""
    element = message.delta.new_element
    kind = element.WhichOneof("type")
    if kind == "dataframe":
        view.tables.append(element.dataframe.arrow_data.data)
    elif kind == "number_input" and element.number_input.label.split(" ")[0] in ("Layer", "Head"):
        shown = view.shown_head or [-1, -1]
        shown[element.number_input.label.startswith("Head")] = int(element.number_input.value)
        view.shown_head = shown
    elif kind == "download_button" and not view.stem and (stem := STEM.search(element.download_button.id)):
        view.stem = stem.group(1)
    elif kind == "markdown" and element.markdown.body.startswith("From the atlas"):
        view.from_atlas = True
    elif kind == "exception":
        view.errors.append(f"exception {element.exception.type}: {element.exception.message[:300]}")
    elif kind == "alert" and element.alert.format == Alert.ERROR:
        view.errors.append(f"st.error: {element.alert.body[:300]}")


def note_message(view: View, message: ForwardMsg) -> bool:
    """Record one ForwardMsg; True when it ends the view (its last run finished)."""
    kind = message.WhichOneof("type")
    if kind == "new_session":  # a run starts: what an earlier run drew is replaced
        view.runs += 1
        view.tables, view.shown_head, view.stem, view.from_atlas = [], None, "", False
    elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
        note_element(view, message)
    elif kind == "ref_hash":  # never sent to a client that declared no cached messages
        view.errors.append(f"a cached-message reference {message.ref_hash} the client cannot resolve")
    elif kind == "session_event" and message.session_event.WhichOneof("type") == "script_compilation_exception":
        view.errors.append(f"script error: {message.session_event.script_compilation_exception.message[:300]}")
    elif kind == "page_not_found":
        view.errors.append(f"page not found: {message.page_not_found.page_name!r}")
    return kind == "script_finished" and message.script_finished in FINISHED


async def open_view(ws_url: str, origin: str, view: View, query: str, connections: list) -> View:
    """Run one new session's view of (layer, head); the websocket stays open (in `connections`) until the
    case ends, as a browser tab would, so closing sessions is not part of what is timed."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(VIEW_TIMEOUT_S):
            socket = await websockets.connect(ws_url, subprotocols=["streamlit"], origin=origin, max_size=None)
            connections.append(socket)
            await socket.send(rerun_request(view.layer, view.head, query))
            while True:
                message = ForwardMsg()
                message.ParseFromString(await socket.recv())
                if note_message(view, message):
                    break
    except (TimeoutError, OSError, websockets.WebSocketException) as err:
        view.errors.append(f"no finished run: {type(err).__name__}: {err}")
    view.seconds = time.perf_counter() - started
    return view


def check_view(view: View, expected: dict[tuple[int, int], tuple[str, str, float]]) -> None:
    """Read the view's pairs table and say what is wrong: wrong head, wrong or missing top pair."""
    view.expected = list(expected[(view.layer, view.head)][:2])
    for data in view.tables:
        table = pa.ipc.open_stream(data).read_all().to_pylist()
        columns = list(table[0]) if table else []
        if columns[:1] == ["rank"] and len(columns) == 4:  # rank, row token, column token, score
            first = next((row for row in table if row["rank"] == 1), None)
            view.top_pair = None if first is None else [first[columns[1]], first[columns[2]]]
            break
    if view.top_pair is None:
        view.errors.append("no pairs table")
    elif view.top_pair != view.expected:
        view.errors.append(f"top pair {view.top_pair}, expected {view.expected}")
    if view.shown_head != [view.layer, view.head] or view.stem != f"{KIND}-layer{view.layer}-head{view.head}":
        view.errors.append(f"shows head {view.shown_head} (download {view.stem!r}), not {[view.layer, view.head]}")


# --- cases against one server -------------------------------------------------------------------------


async def run_case(url: str, tree: ServerTree, name: str, heads: list[tuple[int, int]], query: str) -> Case:
    """Open one view per head, all at once; time, CPU and peak RSS until every one has finished."""
    ws_url, connections = url.replace("http://", "ws://") + "/_stcore/stream", []
    views = [View(layer, head) for layer, head in heads]
    tree.start_window()
    cpu, started = tree.cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(open_view(ws_url, url, view, query, connections) for view in views))
    wall, cpu = time.perf_counter() - started, tree.cpu_seconds() - cpu
    peak = tree.window_peak
    await asyncio.gather(*(socket.close() for socket in connections), return_exceptions=True)
    return Case(name, len(heads), wall, cpu, peak / 1e6, views)


def head_order(offset: int) -> list[tuple[int, int]]:
    """Every head of the model, layers interleaved (so N heads span the layers), starting at `offset`:
    each server run starts where the previous one stopped, so runs use different heads while they last."""
    heads = [(i % LAYERS, (i // LAYERS + i % LAYERS) % HEADS) for i in range(LAYERS * HEADS)]
    offset %= len(heads)
    return heads[offset:] + heads[:offset]


def heads_needed(cases: list[str], viewers: list[int]) -> int:
    """Distinct heads one server run uses: the untimed first view, the one alone, the different ones."""
    return 1 + ("alone" in cases) + ("different" in cases) * sum(viewers)


def plan(cases: list[str], viewers: list[int], heads: list[tuple[int, int]]) -> list[tuple[str, list]]:
    """(case name, heads) in the order they run; heads[0] is the untimed first view's, reused by "same"."""
    steps, taken = [], 1
    if "alone" in cases:
        steps.append(("alone", [heads[taken]]))
        taken += 1
    for n in viewers:
        if "different" in cases:
            steps.append(("different", heads[taken : taken + n]))
            taken += n
        if "same" in cases:
            steps.append(("same", [heads[0]] * n))
    return steps


async def run_server_cases(url: str, tree: ServerTree, steps: list, first: tuple[int, int], query: str) -> list:
    """The untimed first view (it opens the model and loads t-SNE), then every case in turn."""
    warmup = await run_case(url, tree, "first view (untimed)", [first], query)
    cases = [warmup]
    for name, heads in steps:
        cases.append(await run_case(url, tree, name, heads, query))
        await asyncio.sleep(1)  # let the server settle (closed sessions, GC) before the next case
    return cases


def serve_and_measure(setting: dict, steps: list, first: tuple[int, int], args, env: dict) -> dict:
    """One fresh server with `setting`'s options; every case against it."""
    log = Path(tempfile.mkdtemp(prefix="embspace-viewers-log-")) / "server.log"
    started = time.perf_counter()
    with streamlit_app(setting["options"], env, log) as (process, url):
        server_start = time.perf_counter() - started
        tree = ServerTree(process.pid)
        tree.start()
        try:
            cases = asyncio.run(run_server_cases(url, tree, steps, first, args.query))
        finally:
            tree.stop()
    return {**setting, "server_start_s": server_start, "peak_rss_mb": tree.peak / 1e6, "cases": cases, "log": str(log)}


# --- the report ---------------------------------------------------------------------------------------


def case_row(setting: str, case: Case) -> str:
    served = sum(view.ok for view in case.views)
    title = CASE_TITLES.get(case.name, case.name).format(n=case.viewers)
    return (
        f"| {setting} | {title} | {case.wall_s:.2f} s | {statistics.median(case.latencies):.2f} s | "
        f"{nearest_rank(case.latencies, 0.95):.2f} s | {case.cpu_s / case.viewers:.3f} s | "
        f"{case.peak_rss_mb:,.0f} MB | {served}/{case.viewers} |"
    )


def ratios(result: dict) -> dict[str, float | None]:
    """The issue's targets, from one server run's cases (None where a case was not run)."""
    by = {(case.name, case.viewers): case for case in result["cases"]}
    alone = by.get(("alone", 1))
    same = max((c for c in result["cases"] if c.name == "same"), key=lambda c: c.viewers, default=None)
    different = by.get(("different", 8)) or next((c for c in result["cases"] if c.name == "different"), None)
    return {
        "same_viewers": same.viewers if same else None,
        "same_ratio": same.wall_s / alone.wall_s if same and alone else None,
        "different_viewers": different.viewers if different else None,
        "different_ratio": different.wall_s / alone.wall_s if different and alone else None,
        "uncached_cpu": alone.cpu_s if alone else None,
        "uncached_cpu_many": different.cpu_s / different.viewers if different else None,
        "computed_cpu": same.cpu_s / same.viewers if same else None,
        "rss_mb": result["peak_rss_mb"],
    }


def fmt(value: float | None, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)


def target_rows(results: list[dict]) -> list[str]:
    """One row per target, one column per setting."""
    found = [ratios(result) for result in results]
    n_same = next((r["same_viewers"] for r in found if r["same_viewers"]), "N")
    n_diff = next((r["different_viewers"] for r in found if r["different_viewers"]), "N")
    rows = [
        (f"{n_same} viewers on one computed head / one uncached view alone (wall)", "same_ratio", "{:.2f}x", "<= 5x"),
        (f"{n_diff} viewers on {n_diff} uncached heads / one alone (wall)", "different_ratio", "{:.2f}x", "<= 4x"),
        ("server CPU per uncached head view, alone", "uncached_cpu", "{:.3f} s", "<= 0.2 s"),
        (f"server CPU per uncached head view, {n_diff} at once", "uncached_cpu_many", "{:.3f} s", "<= 0.2 s"),
        ("server CPU per view of a computed head, new session", "computed_cpu", "{:.3f} s", "<= 0.04 s"),
        ("server peak RSS (process tree)", "rss_mb", "{:,.0f} MB", "< 1500 MB"),
    ]
    header = f"| target | {' | '.join(r['name'] for r in results)} | goal |"
    lines = [header, "|---" * (len(results) + 2) + "|"]
    for title, key, pattern, goal in rows:
        lines.append(f"| {title} | {' | '.join(fmt(r[key], pattern) for r in found)} | {goal} |")
    return lines


def report(results: list[dict], context: dict) -> str:
    lines = [
        f"CPU: {context['cpu']}; load average (1/5/15 min) before: {context['load_before']}, "
        f"after: {context['load_after']}",
        f"streamlit {context['streamlit']}, {MODEL} W_VO page, atlas: {context['atlas'] or 'none'} "
        f"({sum(v.from_atlas for r in results for c in r['cases'] for v in c.views)} of "
        f"{sum(len(c.views) for r in results for c in r['cases'])} views said their table came from an atlas)",
        "",
        "| setting | case | all served | latency median | latency p95 | server CPU / view | peak RSS | right head and top pair |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        lines.append(f"| {result['name']} | (server start) | {result['server_start_s']:.1f} s | | | | | |")
        lines += [case_row(result["name"], case) for case in result["cases"]]
    return "\n".join([*lines, "", *target_rows(results)])


def view_json(view: View) -> dict:
    fields = {key: value for key, value in vars(view).items() if key != "tables"}
    return {**fields, "ok": view.ok}


def as_json(results: list[dict], context: dict) -> dict:
    settings = []
    for result in results:
        cases = [
            {
                "name": case.name,
                "viewers": case.viewers,
                "wall_s": case.wall_s,
                "cpu_s": case.cpu_s,
                "peak_rss_mb": case.peak_rss_mb,
                "latency_median_s": statistics.median(case.latencies),
                "latency_p95_s": nearest_rank(case.latencies, 0.95),
                "cpu_per_view_s": case.cpu_s / case.viewers,
                "views": [view_json(view) for view in case.views],
            }
            for case in result["cases"]
        ]
        settings.append({**{k: v for k, v in result.items() if k != "cases"}, "cases": cases, "ratios": ratios(result)})
    every = [view for s in settings for case in s["cases"] for view in case["views"]]
    return {**context, "targets": TARGETS, "settings": settings, "ok": all(view["ok"] for view in every)}


# --- the run ------------------------------------------------------------------------------------------


def build_atlas(directory: Path) -> Path:
    """The MiniLM atlas (k 50), built in `directory` (its output on stderr, so stdout stays the report)."""
    command = [sys.executable, "-m", "embspace", "atlas", "build", MODEL, "--out", str(directory), "--k", "50"]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=sys.stderr, check=True)
    print(f"atlas built in {time.perf_counter() - started:.0f} s: {directory}", file=sys.stderr)
    return directory


def settings(args) -> list[dict]:
    """The server runs: one with the options given, or with --compare the config as is and with them."""
    options = [part for option in args.server_option for part in split_option(option)]
    with_options = {"name": "with " + " ".join(args.server_option), "options": options}
    as_is = {"name": "config as is", "options": []}
    if args.compare:
        return [as_is, with_options]
    return [with_options if options else as_is]


def split_option(option: str) -> list[str]:
    key, sep, value = option.partition("=")
    if not sep or not key:
        raise SystemExit(f"--server-option takes KEY=VALUE (e.g. runner.postScriptGC=false), not {option!r}")
    return [f"--{key.removeprefix('--')}", value]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, nargs="+", default=[8, 32], help="N of the many-viewer cases")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--atlas", help='a directory of atlases (EMBSPACE_ATLAS_DIR), or "build"')
    parser.add_argument("--server-option", action="append", default=[], metavar="KEY=VALUE",
                        help="passed as --KEY VALUE to `streamlit run` (repeatable)")  # fmt: skip
    parser.add_argument(
        "--compare", action="store_true", help="run every case with the config as is, then with the options"
    )
    parser.add_argument("--query", default="", help='appended to every view\'s query string, e.g. "&dims=3"')
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.compare and not args.server_option:
        parser.error("--compare needs at least one --server-option")
    if any(n < 1 for n in args.viewers):
        parser.error("--viewers takes positive numbers")
    if heads_needed(args.cases, args.viewers) > LAYERS * HEADS:
        parser.error(f"one server run would need more than the model's {LAYERS * HEADS} heads; use fewer viewers")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="embspace-viewers-") as scratch:  # annotations, a built atlas
        atlas = str(build_atlas(Path(scratch) / "atlas")) if args.atlas == "build" else args.atlas
        env = {"EMBSPACE_DATA_DIR": str(Path(scratch) / "data"), **({"EMBSPACE_ATLAS_DIR": atlas} if atlas else {})}
        label = f"{atlas} (built by this run, removed after it)" if args.atlas == "build" else atlas
        results, context = measure(args, env, label)
    print(report(results, context))
    summary = as_json(results, context)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    failed = [(s["name"], c["name"], v) for s in summary["settings"] for c in s["cases"] for v in c["views"]]
    for setting, case, view in failed:
        if not view["ok"]:
            print(
                f"FAILED {setting} / {case}: layer {view['layer']} head {view['head']}: {view['errors']}",
                file=sys.stderr,
            )
    return 0 if summary["ok"] else 1


def measure(args, env: dict[str, str], atlas: str | None) -> tuple[list[dict], dict]:
    """Every server run, each viewer checked against the top pairs computed before the first one."""
    runs, needed = settings(args), heads_needed(args.cases, args.viewers)
    orders = [head_order(index * needed) for index in range(len(runs))]
    expected = expected_top_pairs(KIND, [head for order in orders for head in order[:needed]])
    context = {"cpu": cpu_description(), "load_before": load_average(), "streamlit": streamlit.__version__}
    context["atlas"] = atlas
    results = []
    for setting, order in zip(runs, orders, strict=True):
        result = serve_and_measure(setting, plan(args.cases, args.viewers, order), order[0], args, env)
        for case in result["cases"]:
            for view in case.views:
                check_view(view, expected)
        results.append(result)
    context["load_after"] = load_average()
    return results, context


if __name__ == "__main__":
    sys.exit(main())
