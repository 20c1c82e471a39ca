"""The /compare page in headless Chromium, on the bundled MiniLM and a copy with one head changed: the heat-map
draws, a click on a cell opens that head's diff beside its before and after, Match layers draws its matching."""

from __future__ import annotations

import pytest
from browser import assert_no_exception, expect, full_page_screenshot, grid_rows, open_view, plot_traces
from compare_fixtures import MINILM_PLANTED, make_tuned_minilm

from embspace import open_model
from embspace.compare import unit_diff

pytestmark = pytest.mark.browser

PLOT = '[data-testid="stPlotlyChart"] .js-plotly-plot'
LAYERS, HEADS = 6, 12


@pytest.fixture(scope="module")
def tuned_minilm(minilm_dir, tmp_path_factory):
    return make_tuned_minilm(minilm_dir, tmp_path_factory.mktemp("tuned_minilm_browser"))


def cell_centre(page, layer: int, head: int) -> tuple[float, float]:
    """Screen coordinates of the first chart's (layer, head) cell, the chart scrolled to the middle of the view."""
    return page.evaluate(
        f"""() => {{
            const plot = document.querySelector('{PLOT}');
            plot.scrollIntoView({{block: 'center'}});
            const area = plot.querySelector('.nsewdrag').getBoundingClientRect();
            return [area.left + plot._fullLayout.xaxis.l2p({head}), area.top + plot._fullLayout.yaxis.l2p({layer})];
        }}"""
    )


def test_a_heatmap_click_opens_the_heads_diff(app_page, app_server, tuned_minilm, minilm_dir):
    page = app_page
    open_view(page, app_server, f"/compare?tuned={tuned_minilm}&k=5&unit=vo&layer=4&index=1", ready=PLOT)
    heatmap, cells = plot_traces(page)
    assert heatmap["type"] == "heatmap" and (heatmap["rows"], heatmap["columns"]) == (LAYERS, HEADS)
    assert cells["type"] == "scatter" and cells["n"] == LAYERS * HEADS
    main = page.get_by_test_id("stMain")
    expect(main.locator("h3").filter(has_text="vo layer 4, head 1")).to_be_visible()
    expect(main.get_by_text("same in both models")).to_be_visible()
    x, y = cell_centre(page, *MINILM_PLANTED)
    page.mouse.click(x, y)
    expect(main.locator("h3").filter(has_text="vo layer 2, head 3")).to_be_visible()
    page.wait_for_function("() => !new URLSearchParams(location.search).has('unit')")  # the default unit
    expect(page.get_by_test_id("stDataFrame")).to_have_count(5)  # the list, before, after, plus, minus
    base, tuned = open_model(str(minilm_dir)), open_model(str(tuned_minilm), embedding="input")
    expected = unit_diff(base, tuned, "vo", *MINILM_PLANTED, 5)
    plus = grid_rows(page, 3)
    assert plus[0][:2] == ["row_id", "col_id"]
    assert [row[2] for row in plus[1:6]] == list(expected.plus.row_tokens)
    assert_no_exception(page)
    full_page_screenshot(page, "compare", docs=False)


def test_match_layers_draws_the_matching(app_page, app_server, tuned_minilm):
    page = app_page
    open_view(page, app_server, f"/compare?tuned={tuned_minilm}&section=Match+layers", ready=PLOT)
    heatmap, rings = plot_traces(page)
    assert (heatmap["rows"], heatmap["columns"]) == (LAYERS, LAYERS)
    assert rings["name"] == "matching" and rings["n"] == LAYERS
    rows = grid_rows(page, 0)
    assert rows[0] == ["layer_a", "layer_b", "mean_abs_corr"] and [row[1] for row in rows[1:]] == list("012345")
    assert_no_exception(page)
