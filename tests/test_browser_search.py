"""Token search in a real browser: search a word, follow a result, land on its view showing the word."""

from __future__ import annotations

import pytest
from browser import assert_no_exception, expect, full_page_screenshot, grid_rows, open_view, wait_until_idle

pytestmark = pytest.mark.browser


def test_search_a_word_and_follow_a_result_to_its_view(app_page, app_server):
    page = app_page
    open_view(page, app_server, "/search?q=king&limit=3&k=12", ready='[data-testid="stDataFrame"]')
    assert_no_exception(page)
    hits = grid_rows(page)
    assert hits[0][:6] == ["open", "where", "layer", "neuron / head", "token", "rank"]  # "open" first
    assert {row[4] for row in hits[1:]} == {"king"}
    full_page_screenshot(page, "search")

    # The best neuron hit whose rank fits in the table (k=12): its view must list "king".
    link = page.get_by_test_id("stPageLink").filter(has_text="FFN neuron").filter(has_text="(rank 1)").first
    label = link.inner_text()
    layer, neuron = label.split("layer ")[1].split(",")[0], label.split(", neuron ")[1].split(":")[0]
    link.click()
    page.wait_for_url(f"**/neurons?**layer={layer}**", timeout=120_000)
    wait_until_idle(page)
    expect(page.get_by_test_id("stMain").get_by_text(f"Layer {layer}, neuron {neuron}: top 12 tokens")).to_be_visible()
    rows = grid_rows(page)
    assert "king" in [cell for row in rows[1:] for cell in row]
    assert "k=12" in page.url
    assert_no_exception(page)


def test_follow_a_head_hit_to_that_heads_page_showing_the_word(app_page, app_server):
    page = app_page
    open_view(page, app_server, "/search?q=king&limit=3&k=5", ready='[data-testid="stDataFrame"]')
    link = page.get_by_test_id("stPageLink").filter(has_text="W_VO column").first
    label = link.inner_text()
    layer, head = label.split("layer ")[1].split(",")[0], label.split(", head ")[1].split(":")[0]
    link.click()
    page.wait_for_url(f"**/vo?**head={head}**", timeout=120_000)
    wait_until_idle(page)
    main = page.get_by_test_id("stMain")
    expect(main.locator("h1").first).to_have_text("W_VO: what a head copies")
    expect(main.get_by_test_id("stNumberInput").filter(has_text="Layer").locator("input")).to_have_value(layer)
    expect(main.get_by_text("king (token 2332) in this head")).to_be_visible()
    expect(main.get_by_test_id("stTextInput").filter(has_text="A token in this head").locator("input")).to_have_value(
        "king"
    )
    assert "token=king" in page.url and "k=5" in page.url
    # The two tables of the token's partners follow the head's own table: k = 5 rows each.
    assert [len(grid_rows(page, index)) for index in (1, 2)] == [1 + 5, 1 + 5]
    assert_no_exception(page)
    full_page_screenshot(page, "search-to-head")
