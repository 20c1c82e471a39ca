"""Presenter mode in headless Chromium, on the bundled MiniLM: a tour link, Next by click and by the → key."""

from __future__ import annotations

import pytest
from browser import assert_no_exception, expect, full_page_screenshot, grid_rows, open_view, wait_until_idle

from embspace import DEFAULT_MODEL
from embspace.tours import Tour, TourStop, encode_address

pytestmark = pytest.mark.browser

PLOT = '[data-testid="stPlotlyChart"] .js-plotly-plot'
TOUR = Tour(
    "Lab meeting",
    DEFAULT_MODEL,
    (
        TourStop("vo", 5, 7, "Stop one: a **copying** head.", k=4),
        TourStop("neuron", 1, 7, "Stop two: a neuron.", k=3),
        TourStop("qk", 0, 1, "Stop three: a query-key head.", k=5),
    ),
)


def heading(page):
    return page.get_by_test_id("stMain").locator("h2").first


def test_a_tour_link_steps_by_click_and_by_arrow_key(app_page, app_server):
    page = app_page
    open_view(page, app_server, f"/tours?tour={encode_address(TOUR)}", ready=PLOT)
    expect(page.locator("h1").first).to_have_text("Lab meeting")
    expect(heading(page)).to_have_text("W_VO · layer 5, head 7")
    main = page.get_by_test_id("stMain")
    expect(main.get_by_text("1 / 3", exact=True)).to_be_visible()
    expect(main.get_by_text("Stop one: a")).to_be_visible()
    assert len(grid_rows(page)) == 1 + 4  # the header, then the stop's k rows
    full_page_screenshot(page, "tour-presenter", docs=False)

    main.get_by_role("button", name="Next").click()
    wait_until_idle(page)
    expect(heading(page)).to_have_text("FFN neuron · layer 1, neuron 7")
    expect(main.get_by_text("2 / 3", exact=True)).to_be_visible()
    expect(main.get_by_text("Stop two: a neuron.")).to_be_visible()
    page.wait_for_url("**stop=2**")
    assert len(grid_rows(page)) == 1 + 3

    page.locator("h1").first.click()  # focus on the page, not in an input: the shortcut is the page's
    page.keyboard.press("ArrowRight")
    wait_until_idle(page)
    expect(heading(page)).to_have_text("W_QK · layer 0, head 1")
    expect(main.get_by_text("3 / 3", exact=True)).to_be_visible()
    page.wait_for_url("**stop=3**")
    assert len(grid_rows(page)) == 1 + 5
    assert_no_exception(page)


def test_a_framed_tour_has_no_sidebar_and_no_editing(app_page, app_server):
    """?embed=true: Streamlit hides its toolbar; the app hides the sidebar and every editing control."""
    page = app_page
    open_view(page, app_server, f"/tours?tour={encode_address(TOUR)}&stop=2&embed=true", ready=PLOT)
    expect(heading(page)).to_have_text("FFN neuron · layer 1, neuron 7")
    expect(page.get_by_test_id("stSidebar")).to_be_hidden()
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("button", name="Edit the tour")).to_have_count(0)
    expect(main.get_by_role("button", name="Previous")).to_be_visible()
    assert len(grid_rows(page)) == 1 + 3
    assert_no_exception(page)
