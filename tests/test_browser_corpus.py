"""A corpus that lasts, in a real browser: upload it, reload the page, follow a search hit with one click."""

from __future__ import annotations

import pytest
from browser import assert_no_exception, expect, grid_rows, open_view, wait_until_idle

pytestmark = pytest.mark.browser

PLOT = '[data-testid="stPlotlyChart"] .js-plotly-plot'
CORPUS = b"the cat sat\non the mat\na cat and a king\n"


def upload_corpus(page) -> None:
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Restrict to a corpus").click()
    sidebar.locator('input[type="file"]').first.set_input_files(
        files=[{"name": "corpus.txt", "mimeType": "text/plain", "buffer": CORPUS}]
    )
    page.wait_for_url("**corpus=**", timeout=120_000)
    wait_until_idle(page)


def kept_tokens(page) -> str:
    metric = page.get_by_test_id("stMetric").filter(has_text="Tokens kept by the filters")
    return metric.get_by_test_id("stMetricValue").inner_text()


def test_a_reload_keeps_the_corpus_filter(app_page, app_server):
    page = app_page
    open_view(page, app_server, "/neurons?k=5&points=5", ready='[data-testid="stMetric"]')
    everything = kept_tokens(page)
    upload_corpus(page)
    expect(page.get_by_test_id("stMetric").filter(has_text="Tokens kept")).to_contain_text("8 of ")
    filtered = kept_tokens(page)
    assert filtered != everything
    page.reload(wait_until="domcontentloaded")  # F5: a new session, the same address
    page.wait_for_selector('[data-testid="stMetric"]', timeout=120_000)
    wait_until_idle(page)
    assert kept_tokens(page) == filtered
    assert "corpus=" in page.url
    assert_no_exception(page)


def test_a_search_hit_opens_in_one_click_with_the_corpus(app_page, app_server):
    page = app_page
    open_view(page, app_server, "/search?q=cat&limit=2&k=5", ready='[data-testid="stDataFrame"]')
    upload_corpus(page)
    filtered = kept_tokens(page)
    grid = page.get_by_test_id("stMain").get_by_test_id("stDataFrame").first
    grid_rows(page)  # painted
    grid.scroll_into_view_if_needed()  # a mouse click lands only inside the viewport
    box = grid.bounding_box()
    pages_before = len(page.context.pages)
    page.mouse.click(box["x"] + 16, box["y"] + 55)  # the first hit's row box: one click
    page.wait_for_function("() => !location.pathname.endsWith('/search')", timeout=120_000)
    wait_until_idle(page)
    assert len(page.context.pages) == pages_before  # the same tab
    assert "corpus=" in page.url
    assert kept_tokens(page) == filtered
    assert_no_exception(page)


def test_an_annotations_link_opens_in_one_click_with_the_corpus(app_page, app_server):
    page = app_page
    open_view(page, app_server, "/vo?layer=3&head=6&k=5&pairs=5", ready=PLOT)
    main = page.get_by_test_id("stMain")
    main.get_by_text("Label this view").click()  # a popover: its form is drawn outside stMain
    page.get_by_label("Label", exact=True).fill("corpus walk label")
    page.get_by_role("button", name="Save label").click()
    expect(main.get_by_text("Saved.")).to_be_visible()
    upload_corpus(page)
    filtered = kept_tokens(page)
    page.get_by_test_id("stSidebarNav").get_by_text("Annotations").click()  # the navigation, same session
    page.wait_for_url("**/annotations**", timeout=120_000)
    page.get_by_label("Search labels and notes").fill("corpus walk")
    page.keyboard.press("Enter")
    wait_until_idle(page)
    grid = main.get_by_test_id("stDataFrame").first
    expect(grid).to_be_visible()
    grid_rows(page)  # painted
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    pages_before = len(page.context.pages)
    page.mouse.click(box["x"] + 16, box["y"] + 55)  # the row's box: one click
    page.wait_for_function("() => location.pathname.endsWith('/vo')", timeout=120_000)
    wait_until_idle(page)
    assert len(page.context.pages) == pages_before  # the same tab
    assert "layer=3" in page.url and "head=6" in page.url and "corpus=" in page.url
    assert kept_tokens(page) == filtered
    expect(main.get_by_text("corpus walk label").first).to_be_visible()
    assert_no_exception(page)


def test_a_link_naming_a_corpus_the_server_lacks_says_so(app_page, app_server):
    page = app_page
    open_view(page, app_server, "/vo?layer=1&head=2&corpus=00000000deadbeef", ready='[data-testid="stAlert"]')
    expect(page.get_by_test_id("stMain").get_by_text("Corpus not loaded")).to_be_visible()
    assert page.get_by_test_id("stMain").get_by_test_id("stDataFrame").count() == 0  # nothing computed without it
    assert "corpus=00000000deadbeef" in page.url
