"""What you set is what you see, in a real browser (issue 22): the filter line above the table, the
settings inside a downloaded file, a search hit's word first, and Back returning to the previous head."""

from __future__ import annotations

import json

import pytest
from browser import assert_no_exception, download_text, expect, open_view, wait_until_idle

pytestmark = pytest.mark.browser

PLOT = '[data-testid="stPlotlyChart"] .js-plotly-plot'


def head_input(page):
    return page.get_by_test_id("stMain").get_by_test_id("stNumberInput").filter(has_text="Head")


def top_of(locator) -> float:
    return locator.bounding_box()["y"]


def test_a_word_view_shows_its_settings_its_word_first_and_back_returns(app_page, app_server):
    page = app_page
    open_view(page, app_server, "/vo?layer=2&head=3&k=5&pairs=4&alnum=true&negative=true&token=king", ready=PLOT)
    main = page.get_by_test_id("stMain")
    word = main.get_by_text("king (token 2332) in this head")
    title = main.get_by_text("5 most negative pairs", exact=True)
    expect(word).to_be_visible()
    expect(title).to_be_visible()
    assert top_of(word) < top_of(title)  # the word's section first
    line = main.get_by_text("Filters: letters and digits (latin) · most negative · E: input · k = 5").last
    expect(line).to_be_visible()
    table = main.get_by_test_id("stDataFrame").nth(2)  # after the word's two tables
    assert top_of(word) < top_of(line) < top_of(title) < top_of(table)
    assert_no_exception(page)

    name, text = download_text(page, "JSON", index=2)
    assert name == "vo-layer2-head3-neg-alnum-latin-k5.json"
    document = json.loads(text)
    assert document["settings"]["negative"] is True and document["settings"]["vocab_filter"]["only_alnum"] is True
    assert (document["settings"]["layer"], document["settings"]["head"]) == (2, 3) and len(document["rows"]) == 5

    plus = head_input(page).get_by_test_id("stNumberInputStepUp")
    for expected in (4, 5):
        plus.click()
        expect(head_input(page).locator("input")).to_have_value(str(expected))
        wait_until_idle(page)
        page.wait_for_function("(head) => new URLSearchParams(location.search).get('head') === head", arg=str(expected))
    page.go_back()
    page.wait_for_function("() => new URLSearchParams(location.search).get('head') === '4'")
    wait_until_idle(page)
    expect(head_input(page).locator("input")).to_have_value("4")
    expect(main.get_by_text("Layer 2, head 4")).to_be_visible()  # the plot's title: the head shown is 4
    page.wait_for_timeout(1000)  # the address is not rewritten back to head 5
    assert "head=4" in page.url
