"""Annotations in a real browser: save a label on a head page, reload and see it, see it on the heatmap."""

from __future__ import annotations

import pytest
from browser import assert_no_exception, expect, open_view, wait_until_idle

pytestmark = pytest.mark.browser
PLOT = '[data-testid="stPlotlyChart"] .js-plotly-plot'


def test_a_saved_label_survives_a_reload_and_shows_on_the_heatmap(app_page, app_server):
    page = app_page
    view = "/vo?layer=4&head=9&k=5&pairs=5"
    open_view(page, app_server, view, ready=PLOT)
    main = page.get_by_test_id("stMain")
    main.get_by_text("Label this view").click()  # a popover: its form is drawn outside stMain
    page.get_by_label("Label", exact=True).fill("browser label")
    page.get_by_label("Note (markdown)").fill("Seen in **a browser**.")
    page.get_by_role("button", name="Save label").click()
    expect(main.get_by_text("Saved.")).to_be_visible()

    page.reload()
    page.wait_for_selector(PLOT)
    wait_until_idle(page)
    expect(main.locator("strong", has_text="browser label")).to_be_visible()  # the label, shown like a slide
    expect(main.locator("strong", has_text="a browser")).to_be_visible()  # the note, rendered as markdown
    assert_no_exception(page)

    open_view(page, app_server, "/overview", ready=PLOT)
    labels = page.evaluate(
        """() => {
            const plot = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
            const heads = plot._fullData.find(t => t.name === 'heads');
            const marks = plot._fullData.find(t => t.name === 'labelled heads');
            const labelled = Array.from(heads.customdata).filter(row => row[3]).map(row => [row[0], row[1], row[3]]);
            return {labelled, marks: marks ? Array.from(marks.x) : []};
        }"""
    )
    assert [4, 9, "browser label"] in labels["labelled"]
    assert labels["marks"] == [pytest.approx(9.33)]
    assert_no_exception(page)
