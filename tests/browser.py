"""Real-browser test support: one `streamlit run app.py` server and one headless Chromium per session.

Fixtures (registered in conftest.py): `chromium` (a playwright Browser, Debian's /usr/bin/chromium),
`app_server` (the dashboard's base URL, on a free port of 127.0.0.1, HF_HUB_OFFLINE=1) and
`app_page` (a page in a fresh 1400x900 browser context, i.e. a new Streamlit session).
Helpers read what a person sees: `open_view`, `plot_traces`, `grid_rows`, `download_text`,
`full_page_screenshot`. Without playwright or Chromium the tests skip; with CI set they fail.
"""

from __future__ import annotations

import contextlib
import html
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STREAMLIT = ROOT / ".venv" / "bin" / "streamlit"
SCREENSHOT_DIRS = (ROOT / "artifacts" / "screenshots", ROOT / "docs" / "screenshots")
VIEWPORT = {"width": 1400, "height": 900}
SERVER_START_S = 120
LOAD_MS = 120_000  # a first page view opens the model; the machine may be slow and shared
# Without the background-networking flags Chromium's own connections are refused here, many at a time.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SETUP_HINT = "run `bash scripts/setup --dev`"


def chromium_path() -> str | None:
    """Debian's chromium (never a `playwright install` download)."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def missing_browser_support() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    if chromium_path() is None:
        return "no chromium executable (/usr/bin/chromium)"
    return None


def require_browser_support() -> None:
    """Skip the test without playwright/Chromium; fail instead on CI, where they must be present."""
    reason = missing_browser_support()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"Browser tests need playwright and Chromium: {reason}; {SETUP_HINT}.", pytrace=False)
    pytest.skip(f"{reason} ({SETUP_HINT})")


# --- the server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except OSError:
        return False


def stop_server(process: subprocess.Popen) -> None:
    """End the server's whole process group: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _log_tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def streamlit_server(work_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `streamlit run app.py` (log and annotations under work_dir); yields its base URL.

    No file watcher: another hand editing the sources must not rerun pages mid-test.
    """
    log = work_dir / "server.log"
    data_dir = work_dir / "embspace-data"  # annotations: never the user's own data dir
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        "EMBSPACE_DATA_DIR": str(data_dir),
        **(extra_env or {}),
    }
    executable = [str(STREAMLIT)] if STREAMLIT.exists() else [sys.executable, "-m", "streamlit"]
    for _ in range(3):  # the free port may be taken between probing and binding
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [
            *executable, "run", "app.py",
            "--server.headless", "true",
            "--server.port", str(port),
            "--server.address", "127.0.0.1",
            "--server.fileWatcherType", "none",
            "--browser.gatherUsageStats", "false",
        ]  # fmt: skip
        with log.open("ab") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            deadline = time.monotonic() + SERVER_START_S
            while process.poll() is None and time.monotonic() < deadline and not server_healthy(url):
                time.sleep(0.5)
            if process.poll() is None and server_healthy(url):
                yield url
                return
            exited_early = process.poll() is not None
        finally:
            stop_server(process)
        if not exited_early:
            break
    pytest.fail(f"`streamlit run app.py` did not become healthy at {url}:\n{_log_tail(log)}", pytrace=False)


@pytest.fixture(scope="session")
def app_server(tmp_path_factory) -> Iterator[str]:
    """Base URL (http://127.0.0.1:PORT) of `streamlit run app.py`, one server for the session."""
    require_browser_support()
    with streamlit_server(tmp_path_factory.mktemp("streamlit")) as url:
        yield url


# --- the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium():
    """A headless Chromium (playwright Browser) with a fresh profile, shared by the session."""
    require_browser_support()
    from playwright.sync_api import expect as playwright_expect
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        playwright_expect.set_options(timeout=LOAD_MS)
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def app_page(chromium):
    """A page in a new browser context (no cookies, no Streamlit session shared with other tests)."""
    context = chromium.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(LOAD_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def expect(target):
    """playwright's `expect` with the generous timeout of this suite (imported only when used)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def wait_until_idle(page, timeout_ms: int = LOAD_MS) -> None:
    """Wait until the app is connected and its script has finished running."""
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-connection-state="CONNECTED"][data-test-script-state="notRunning"]',
        state="attached",
        timeout=timeout_ms,
    )


def open_view(page, base_url: str, path: str, *, ready: str = "h1") -> None:
    """Load `base_url + path` and wait for `ready` (a CSS selector) and the end of the script run."""
    page.goto(base_url + path, wait_until="domcontentloaded")
    page.wait_for_selector(ready, timeout=LOAD_MS)
    wait_until_idle(page)


def assert_no_exception(page) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, f"Streamlit exception shown: {boxes.first.inner_text()[:2000]}"


def full_page_screenshot(page, name: str, *, docs: bool = True) -> list[Path]:
    """Save the whole page (the app scrolls inside its main pane, so the viewport grows to fit it).

    Written to artifacts/screenshots/<name>.png and, with `docs`, to docs/screenshots/<name>.png (the
    README's pictures); the width stays 1400.
    """
    height = page.evaluate(
        """() => Math.max(...['stMain', 'stSidebarContent'].map(
            id => document.querySelector(`[data-testid="${id}"]`)?.scrollHeight || 0))"""
    )
    page.mouse.move(
        VIEWPORT["width"] - 2, VIEWPORT["height"] - 2
    )  # hover nothing: no anchors, tooltips, sidebar button
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], height)})
    try:
        page.wait_for_timeout(1000)  # let plotly and the grid redraw at the new size
        paths = []
        for folder in SCREENSHOT_DIRS if docs else SCREENSHOT_DIRS[:1]:
            folder.mkdir(parents=True, exist_ok=True)
            paths.append(folder / f"{name}.png")
        image = page.screenshot(full_page=True, animations="disabled")
        for path in paths:
            path.write_bytes(image)
        return paths
    finally:
        page.set_viewport_size(VIEWPORT)


def plot_traces(page, index: int = 0) -> list[dict]:
    """The `index`-th plotly chart's traces as plotly.js holds them after drawing (arrays decoded).

    Each: {type, name, n (points), rows, columns (heatmap z shape), customdata (first column, HTML
    unescaped: the hover token), title}.
    """
    traces = page.evaluate(
        """(index) => {
            const plot = document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')[index];
            const title = plot._fullLayout.title && plot._fullLayout.title.text;
            return plot._fullData.map(t => ({
                type: t.type,
                name: t.name,
                n: t._length === undefined ? null : t._length,
                rows: t.type === 'heatmap' ? t.z.length : null,
                columns: t.type === 'heatmap' ? t.z[0].length : null,
                customdata: t.customdata ? Array.from(t.customdata, row => String(row[0])) : [],
                title: title || '',
            }));
        }""",
        index,
    )
    for trace in traces:
        trace["customdata"] = [html.unescape(value) for value in trace["customdata"]]
    return traces


def grid_rows(page, index: int = 0) -> list[list[str]]:
    """Text of the `index`-th st.dataframe's rows, header first, from the grid's accessible table.

    The grid draws on a canvas and keeps a hidden table for screen readers holding only the rows
    and columns in view, so a cell scrolled out of the frame is missing here, as it is to a person.
    The grid fills that table after it first paints: wait for a header and a row first.
    """
    page.wait_for_function(
        """(index) => {
            const grid = document.querySelectorAll('[data-testid="stDataFrame"]')[index];
            return grid && grid.querySelectorAll('[role="row"]').length >= 2;
        }""",
        arg=index,
        timeout=120_000,
    )
    return page.evaluate(
        """(index) => {
            const grid = document.querySelectorAll('[data-testid="stDataFrame"]')[index];
            return Array.from(grid.querySelectorAll('[role="row"]'), row =>
                Array.from(row.querySelectorAll('[role="columnheader"], [role="gridcell"]'), cell => cell.textContent));
        }""",
        index,
    )


def grid_overflow(page, index: int = 0) -> dict[str, int]:
    """How far the `index`-th st.dataframe's content overflows its frame (px; 0 when all of it shows)."""
    return page.evaluate(
        """(index) => {
            const grid = document.querySelectorAll('[data-testid="stDataFrame"]')[index];
            const scroller = grid.querySelector('.dvn-scroller');
            return {
                width: scroller.scrollWidth - scroller.clientWidth,
                height: scroller.scrollHeight - scroller.clientHeight,
            };
        }""",
        index,
    )


def download_text(page, label: str, index: int = 0) -> tuple[str, str]:
    """(file name, text) that the `index`-th download button called `label` hands out."""
    button = page.get_by_test_id("stDownloadButton").get_by_role("button", name=label, exact=True).nth(index)
    with page.expect_download(timeout=LOAD_MS) as download_info:
        button.click()
    download = download_info.value
    return download.suggested_filename, Path(download.path()).read_text(encoding="utf-8")
