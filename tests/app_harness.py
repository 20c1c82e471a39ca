"""Helpers for the AppTest suites (tests/test_app_*.py): open the dashboard on a page, read what it shows.

Fixtures (a test module imports `app_fixture` etc.; tests ask for `app`): `app` is a factory
`app(page, **query_params) -> AppTest` running the dashboard on the bundled MiniLM, with
Streamlit's caches cleared before and after the test; `downloads` records what every download
button hands out.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import streamlit.testing.v1.app_test as app_test_module
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from dashboard import prefetch

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
TIMEOUT = 60


class SteadyStatePagesManager(PagesManager):
    """A page manager past Streamlit's legacy `pages/` mode, as a server is after its first run.

    AppTest resets that mode before every run; a real server leaves it for good at the first
    st.navigation call. `test_first_visit_of_a_fresh_server_runs_the_entry_point` covers the
    legacy first run itself.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


def clear_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(name="fresh_server")
def fresh_server_fixture(monkeypatch, tmp_path):
    """Empty caches, no hub access, the default weight budget, a data directory of the test's own
    (corpus uploads and annotations are written there, never to the user's)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("EMBSPACE_DATA_DIR", str(tmp_path / "embspace-data"))
    monkeypatch.delenv("EMBSPACE_WEIGHT_BUDGET_GB", raising=False)
    clear_caches()
    yield
    # A step's background prefetch must not outlive its test: it would log into the next test's
    # $EMBSPACE_COMPUTE_LOG, and a thread still in torch when the interpreter exits aborts it.
    assert prefetch.wait_until_idle(), "a background prefetch did not finish in 120 s"
    clear_caches()


@pytest.fixture(name="app")
def app_fixture(fresh_server, monkeypatch) -> Callable[..., AppTest]:
    """Factory: app(page="pages/vo.py", layer="3", ...) runs the dashboard on that page with those query params."""
    monkeypatch.setattr(app_test_module, "PagesManager", SteadyStatePagesManager)

    def open_app(page: str | None = None, **query_params: str) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        at.query_params.update(query_params)
        if page is not None:
            at.switch_page(page)
        return at.run()

    return open_app


@pytest.fixture(name="downloads")
def downloads_fixture(monkeypatch) -> dict[str, object]:
    """{url or deferred id: data} of every download button rendered (deferred: the callable)."""
    handed_out: dict[str, object] = {}
    add, add_deferred = MediaFileManager.add, MediaFileManager.add_deferred

    def recording_add(self, path_or_data, *args, **kwargs):
        url = add(self, path_or_data, *args, **kwargs)
        handed_out[url] = path_or_data
        return url

    def recording_add_deferred(self, data_callable, *args, **kwargs):
        file_id = add_deferred(self, data_callable, *args, **kwargs)
        handed_out[file_id] = data_callable
        return file_id

    monkeypatch.setattr(MediaFileManager, "add", recording_add)
    monkeypatch.setattr(MediaFileManager, "add_deferred", recording_add_deferred)
    return handed_out


def download_data(at: AppTest, handed_out: dict[str, object], key: str) -> str:
    """The text the download button `key` hands out (a deferred one is generated now)."""
    button = next(b for b in at.get("download_button") if b.proto.id.endswith(f"-{key}"))
    data = handed_out[button.proto.url] if button.proto.url else handed_out[button.proto.deferred_file_id]()
    return data.decode() if isinstance(data, bytes) else data


def assert_clean(at: AppTest) -> None:
    """No exception and no error message on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def figure(at: AppTest, key: str) -> dict:
    """The plotly figure JSON of the chart `key`."""
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}"))
    return json.loads(chart.proto.spec)


def decoded(value):
    """A figure-JSON value with plotly's base64 typed arrays ({"dtype", "bdata", "shape"}) as numpy arrays."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return array.reshape([int(n) for n in str(shape).split(",")]) if shape else array
    if isinstance(value, dict):
        return {key: decoded(item) for key, item in value.items()}
    return value


def traces(at: AppTest, key: str) -> list[dict]:
    """The traces of the chart `key`, arrays decoded."""
    return [decoded(trace) for trace in figure(at, key)["data"]]


def kept_tokens(at: AppTest) -> int:
    metric = next(m for m in at.metric if m.label == "Tokens kept by the filters")
    return int(metric.value.split(" of ")[0].replace(",", ""))


def click_heatmap_cell(at: AppTest, layer: int, head: int) -> AppTest:
    """What the browser sends when a cell of the overview's heat-map is clicked."""
    return click_chart_cell(at, "copying_heatmap", layer, head)


def click_chart_cell(at: AppTest, key: str, row: int, column: int) -> AppTest:
    """What the browser sends when a cell of the clickable heat-map `key` is clicked: a points selection on
    its overlay trace."""
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}"))
    point = {"curve_number": 1, "point_number": 0, "point_index": 0, "x": column, "y": row}
    state = WidgetState(id=chart.proto.id)
    state.string_value = json.dumps({"selection": {"points": [point], "point_indices": [0], "box": [], "lasso": []}})
    widget_states = at._tree.get_widget_states()
    widget_states.widgets.append(state)
    return at._run(widget_states)


def label_popovers(at: AppTest) -> list:
    """The view's label editor popovers (every view also has an "Add to tour" popover)."""
    return [p for p in at.get("popover") if not p.proto.popover.label.startswith("Add to tour")]
