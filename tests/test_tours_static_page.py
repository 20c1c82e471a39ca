"""The static page of a tour, opened from file:// in headless Chromium with the network blocked: every stop's
heading, note, table and a drawn plot; nothing asked of the network."""

import pytest
from browser import LOAD_MS, VIEWPORT

from embspace import open_model
from embspace.model.sources import DEFAULT_MODEL
from embspace.tours import Tour, TourStop
from embspace.tours.static_page import static_page

pytestmark = pytest.mark.browser

TOUR = Tour(
    "MiniLM, three stops",
    DEFAULT_MODEL,
    (
        TourStop("vo", 5, 7, "A **copying** head", 8, {"only-ascii": True, "exclude-same": True}),
        TourStop("neuron", 3, 17, "Reads *and* writes", 6),
        TourStop("qk", 0, 1, "`attends` back", 5, {"negative": True}),
    ),
)


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    model = open_model(DEFAULT_MODEL)
    page = static_page(TOUR, lambda embedding: model, labels={("neuron", 3, 17): "a labelled neuron"})
    path = tmp_path_factory.mktemp("tour") / "tour.html"
    path.write_text(page, encoding="utf-8")
    return path


def test_static_page_shows_every_stop_offline(chromium, page_file):
    context = chromium.new_context(viewport=VIEWPORT)
    blocked = []

    def only_files(route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_files)
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(page_file.as_uri(), wait_until="load", timeout=LOAD_MS)
        drawn = "[...document.querySelectorAll('.js-plotly-plot')].filter(p => p.querySelector('.point')).length === 3"
        page.wait_for_function(drawn, timeout=LOAD_MS)
        sections = page.locator("section.stop")
        assert sections.count() == 3
        headings = [sections.nth(i).locator("h2").inner_text() for i in range(3)]
        assert headings[0].startswith("1 / 3") and "L5 H7 · W_VO" in headings[0]
        assert "L3 N17 · FFN neuron — a labelled neuron" in headings[1] and headings[2].startswith("3 / 3")
        assert sections.nth(0).locator(".note strong").inner_text() == "copying"
        row_counts = [sections.nth(i).locator("table tbody tr").count() for i in range(3)]
        assert row_counts == [8, 6, 5]
        for i in range(3):
            plot = sections.nth(i).locator(".js-plotly-plot")
            assert plot.locator("svg.main-svg").count() >= 1
            assert plot.locator(".scatterlayer .point").count() > 0  # markers were drawn
        assert "embspace" in page.locator(".made").inner_text()
        assert errors == [] and blocked == []
    finally:
        context.close()
