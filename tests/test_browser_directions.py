"""The singular-directions page in headless Chromium, on the bundled MiniLM: reached from a head page's link."""

from __future__ import annotations

import pytest
from browser import (
    assert_no_exception,
    expect,
    full_page_screenshot,
    grid_rows,
    open_view,
    plot_traces,
    wait_until_idle,
)

from embspace import DEFAULT_MODEL, open_model, svd_view

pytestmark = pytest.mark.browser

PLOT = '[data-testid="stPlotlyChart"] .js-plotly-plot'


def test_a_heads_link_opens_its_singular_directions(app_page, app_server):
    """/vo?layer=5&head=7 → "Singular directions of this head" → the head's spectrum and its 2 directions."""
    page = app_page
    open_view(page, app_server, "/vo?layer=5&head=7&k=5&pairs=5", ready=PLOT)
    page.get_by_role("link", name="Singular directions of this head").click()
    page.wait_for_url("**/directions?**")
    wait_until_idle(page)
    page.wait_for_selector(PLOT)
    expect(page.locator("h1").first).to_have_text("Singular directions")
    query = page.evaluate("() => Object.fromEntries(new URLSearchParams(location.search))")
    assert (query.get("kind"), query["layer"], query["head"]) == (None, "5", "7")  # ov, the default, is left out
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("combobox", name="Matrix")).to_have_value("OV of a head")
    expect(main.get_by_test_id("stNumberInput").filter(has_text="Head").locator("input")).to_have_value("7")

    expected = svd_view(open_model(DEFAULT_MODEL), "ov", 5, 7, 8, 5)
    (bars,) = plot_traces(page)
    assert bars["type"] == "bar" and bars["n"] == len(expected.singular_values) == 32
    headings = page.get_by_test_id("stMain").locator("h3")
    expect(headings).to_have_count(8)
    expect(headings.first).to_contain_text(f"Direction 0: σ = {expected.directions[0].sigma:.4g}")
    rows = grid_rows(page)
    assert rows[0][:3] == ["rank", "reads (u) +", "reads (u) + score"]
    assert rows[1][1] == expected.directions[0].left.plus.tokens[0]
    assert_no_exception(page)
    full_page_screenshot(page, "directions", docs=False)
