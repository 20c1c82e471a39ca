"""What a person sees: every page of `streamlit run app.py` in headless Chromium, on the bundled MiniLM.

One server and one browser for the session (tests/browser.py); each test opens its own browser
context, so it gets its own Streamlit session. Full-page screenshots go to artifacts/screenshots/
and docs/screenshots/ (the README's pictures).
"""

from __future__ import annotations

import csv
import io

import pytest
from browser import (
    assert_no_exception,
    download_text,
    expect,
    full_page_screenshot,
    grid_overflow,
    grid_rows,
    open_view,
    plot_traces,
    streamlit_server,
    wait_until_idle,
)

pytestmark = pytest.mark.browser

PLOT = '[data-testid="stPlotlyChart"] .js-plotly-plot'
MINILM_LAYERS, MINILM_HEADS, MINILM_VOCAB = 6, 12, 30_522


def number_input(page, label: str, *, sidebar: bool = False):
    """The <input> of the st.number_input whose label starts with `label`."""
    scope = page.get_by_test_id("stSidebar") if sidebar else page.get_by_test_id("stMain")
    return scope.get_by_test_id("stNumberInput").filter(has_text=label).locator("input")


def checkbox(page, label: str):
    return page.get_by_test_id("stSidebar").get_by_role("checkbox", name=label, exact=True)


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def wait_for_query(page, *parts: str) -> None:
    """Wait until the address bar's query string holds every `name=value` in `parts`."""
    page.wait_for_function(
        "(parts) => parts.every(part => new URLSearchParams(location.search).toString().split('&').includes(part))",
        arg=list(parts),
    )


# --- each page by its address ---------------------------------------------------------------------


def test_start_page(app_page, app_server):
    """The default page (served at /) shows the opened model's card and links to every view."""
    page = app_page
    open_view(page, app_server, "/")
    expect(page.locator("h1").first).to_contain_text("embspace")
    card = page.get_by_test_id("stMain").locator("table").first
    expect(card).to_contain_text("all-MiniLM-L6-v2")
    expect(card).to_contain_text("bert")
    expect(card).to_contain_text(f"{MINILM_VOCAB:,}")
    links = page.get_by_test_id("stSidebarNav").get_by_role("link")
    expect(links).to_have_count(10)
    for name in ("Token search", "Annotations"):
        expect(page.get_by_test_id("stSidebarNav").get_by_role("link", name=name)).to_be_visible()
    assert_no_exception(page)
    full_page_screenshot(page, "about")


def test_first_request_of_a_fresh_server_may_name_a_page(app_page, tmp_path):
    """Streamlit runs a page named in a fresh server's first URL without app.py (legacy pages/ mode):
    the page reruns through the entry point, so the sidebar and the page's own settings are there."""
    page = app_page
    with streamlit_server(tmp_path) as fresh:
        open_view(page, fresh, "/vo?layer=2&head=5&k=4&pairs=3", ready=PLOT)
        expect(page.locator("h1").first).to_have_text("W_VO: what a head copies")
        expect(number_input(page, "Layer")).to_have_value("2")
        expect(number_input(page, "Head")).to_have_value("5")
        expect(number_input(page, "Rows per table", sidebar=True)).to_have_value("4")
        expect(page.get_by_test_id("stSidebarNav").get_by_role("link")).to_have_count(10)  # app.py's page list
        assert len(grid_rows(page)) == 1 + 4  # the header row, then k rows
        assert_no_exception(page)


def test_neurons_page(app_page, app_server):
    """/neurons?layer=2&neuron=17&k=10&points=20: a 10-row table of K, V, -K, -V and 20 plotted tokens."""
    page = app_page
    open_view(page, app_server, "/neurons?layer=2&neuron=17&k=10&points=20", ready=PLOT)
    expect(page.locator("h1").first).to_have_text("FFN neurons")
    expect(number_input(page, "Layer")).to_have_value("2")
    expect(number_input(page, "Neuron")).to_have_value("17")
    expect(number_input(page, "Rows per table", sidebar=True)).to_have_value("10")
    expect(page.get_by_test_id("stMain").locator("h3").first).to_contain_text("Layer 2, neuron 17: top 10 tokens")

    rows = grid_rows(page)
    assert rows[0] == ["rank", "K", "K score", "V", "V score", "-K", "-K score", "-V", "-V score"]
    name, text = download_text(page, "CSV")
    assert name == "neuron-layer2-17-k10.csv"  # the settings in the name: k only, nothing else set
    table = csv_rows(text)
    assert [row["rank"] for row in table] == [str(rank) for rank in range(1, 11)]
    k_scores = [float(row["K score"]) for row in table]
    assert k_scores == sorted(k_scores, reverse=True)
    assert [rows[1][0], rows[1][1], rows[1][3]] == ["1", table[0]["K"], table[0]["V"]]  # grid = download
    assert float(rows[1][2]) == pytest.approx(k_scores[0])

    (scatter,) = plot_traces(page)
    assert scatter["type"] == "scatter3d" and scatter["n"] == 20
    assert scatter["customdata"][:10] == [row["K"] for row in table]  # the plot places the K column's tokens
    assert "Layer 2, neuron 17" in scatter["title"]
    assert_no_exception(page)
    full_page_screenshot(page, "neurons")


@pytest.mark.parametrize(
    ("kind", "view", "headers"),
    [
        ("vo", "/vo?layer=5&head=3&k=10&pairs=10", ["attended-to token", "promoted output token"]),
        ("qk", "/qk?layer=1&head=4&k=10&pairs=10&ascii=true", ["query token", "key token"]),
    ],
)
def test_head_page(app_page, app_server, kind, view, headers):
    """A head's page: its layer/head, copying score, top-10 pairs table and the t-SNE of those pairs' tokens."""
    page = app_page
    layer, head = (view.split("layer=")[1].split("&")[0], view.split("head=")[1].split("&")[0])
    open_view(page, app_server, view, ready=PLOT)
    expect(number_input(page, "Layer")).to_have_value(layer)
    expect(number_input(page, "Head")).to_have_value(head)
    expect(page.get_by_test_id("stMain").get_by_text("Top 10 pairs")).to_be_visible()
    score = page.get_by_test_id("stMetric").filter(has_text="Copying score").get_by_test_id("stMetricValue")
    assert -1.0 <= float(score.inner_text().replace("−", "-")) <= 1.0

    rows = grid_rows(page)
    assert rows[0][:3] == ["rank", *headers]
    name, text = download_text(page, "CSV")
    assert name == f"{kind}-layer{layer}-head{head}{'-ascii' if 'ascii=true' in view else ''}-k10.csv"
    table = csv_rows(text)
    assert len(table) == 10 and len(rows) == 11
    assert [row[1:3] for row in rows[1:]] == [[pair["row_token"], pair["col_token"]] for pair in table]
    scores = [float(pair["score"]) for pair in table]
    assert scores == sorted(scores, reverse=True)

    traces = {trace["name"]: trace for trace in plot_traces(page)}
    assert set(traces) == {"row token", "column token"}
    assert traces["row token"]["customdata"] == list(dict.fromkeys(pair["row_token"] for pair in table))
    assert traces["column token"]["customdata"] == list(dict.fromkeys(pair["col_token"] for pair in table))
    assert all(trace["type"] == "scatter3d" for trace in traces.values())
    assert f"Layer {layer}, head {head}" in traces["row token"]["title"]

    if "ascii=true" in view:
        expect(checkbox(page, "ASCII only")).to_be_checked()
        assert all(pair["row_token"].isascii() and pair["col_token"].isascii() for pair in table)
        kept = page.get_by_test_id("stSidebar").get_by_test_id("stMetric").get_by_test_id("stMetricValue")
        assert kept.inner_text().endswith(f"of {MINILM_VOCAB:,}") and not kept.inner_text().startswith(
            f"{MINILM_VOCAB:,}"
        )
    assert_no_exception(page)
    full_page_screenshot(page, kind)


def test_overview_heatmap(app_page, app_server):
    """/overview: a 6 x 12 heatmap of copying scores with a clickable point on every cell."""
    page = app_page
    open_view(page, app_server, "/overview", ready=PLOT)
    heatmap, cells = plot_traces(page)
    assert heatmap["type"] == "heatmap"
    assert (heatmap["rows"], heatmap["columns"]) == (MINILM_LAYERS, MINILM_HEADS)
    assert cells["type"] == "scatter" and cells["n"] == MINILM_LAYERS * MINILM_HEADS
    cell_labels = page.locator(f"{PLOT} .heatmaplayer text")
    expect(cell_labels).to_have_count(MINILM_LAYERS * MINILM_HEADS)
    assert all(-1.0 <= float(label) <= 1.0 for label in cell_labels.all_text_contents())
    assert_no_exception(page)
    full_page_screenshot(page, "overview")


def test_heatmap_click_opens_that_heads_vo_page(app_page, app_server):
    page = app_page
    open_view(page, app_server, "/overview?k=8", ready=PLOT)
    x, y = page.evaluate(
        f"""() => {{
            const plot = document.querySelector('{PLOT}');
            const area = plot.querySelector('.nsewdrag').getBoundingClientRect();
            return [area.left + plot._fullLayout.xaxis.l2p(7), area.top + plot._fullLayout.yaxis.l2p(2)];
        }}"""
    )
    page.mouse.click(x, y)
    page.wait_for_url("**/vo?**")
    wait_for_query(page, "layer=2", "head=7", "k=8")
    wait_until_idle(page)
    expect(number_input(page, "Layer")).to_have_value("2")
    expect(number_input(page, "Head")).to_have_value("7")
    expect(page.get_by_test_id("stMain").get_by_text("Top 8 pairs")).to_be_visible()
    assert_no_exception(page)


# --- addresses and navigation -----------------------------------------------------------------------


def test_copied_link_reopens_the_same_view(chromium, app_page, app_server):
    """The address after a view is drawn, opened in another browser context, shows the same widgets and rows."""
    page = app_page
    open_view(page, app_server, "/qk?layer=3&head=9&k=7&same=true&dims=2&pairs=12", ready=PLOT)
    link = page.url
    first_rows = grid_rows(page)

    other = chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        copy = other.new_page()
        open_view(copy, "", link, ready=PLOT)
        expect(number_input(copy, "Layer")).to_have_value("3")
        expect(number_input(copy, "Head")).to_have_value("9")
        expect(number_input(copy, "Rows per table", sidebar=True)).to_have_value("7")
        expect(number_input(copy, "Pairs in the plot")).to_have_value("12")
        expect(checkbox(copy, "Exclude identical pairs")).to_be_checked()
        expect(copy.get_by_test_id("stRadio").filter(has_text="Plot").get_by_role("radio", name="2D")).to_be_checked()
        assert {trace["type"] for trace in plot_traces(copy)} == {"scatter"}
        assert grid_rows(copy) == first_rows
        assert all(row[1] != row[2] for row in first_rows[1:])
        assert copy.url == link
        assert_no_exception(copy)
    finally:
        other.close()


def test_sidebar_navigation_keeps_shared_settings(app_page, app_server):
    """k and a token filter set in the address stay in it (and in the widgets) from page to page."""
    page = app_page
    open_view(page, app_server, "/neurons?layer=1&k=7&ascii=true", ready=PLOT)
    nav = page.get_by_test_id("stSidebarNav")

    nav.get_by_role("link", name="Heads: W_VO").click()
    page.wait_for_url("**/vo**")
    page.wait_for_selector(PLOT)
    wait_for_query(page, "k=7", "ascii=true")
    wait_until_idle(page)
    expect(number_input(page, "Rows per table", sidebar=True)).to_have_value("7")
    expect(checkbox(page, "ASCII only")).to_be_checked()
    expect(page.get_by_test_id("stMain").get_by_text("Top 7 pairs")).to_be_visible()

    nav.get_by_role("link", name="Copying scores").click()
    page.wait_for_url("**/overview**")
    wait_for_query(page, "k=7", "ascii=true")
    wait_until_idle(page)
    expect(checkbox(page, "ASCII only")).to_be_checked()
    assert_no_exception(page)


def test_unknown_model_shows_an_error_not_a_traceback(app_page, app_server):
    page = app_page
    open_view(page, app_server, "/neurons?model=nobody/nothing", ready='[data-testid="stAlert"]')
    alert = page.get_by_test_id("stAlert")
    expect(alert).to_contain_text("Could not open")
    expect(alert).to_contain_text("nobody/nothing")
    assert_no_exception(page)
    assert "Traceback" not in page.get_by_test_id("stMain").inner_text()
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(0)
    full_page_screenshot(page, "unknown-model", docs=False)


# --- layout: readable without scrolling inside widgets ------------------------------------------------


@pytest.mark.parametrize(
    "view", ["/neurons?layer=2&neuron=17&k=10", "/vo?layer=5&head=3&k=10", "/qk?layer=1&head=4&k=10"]
)
def test_top_k_table_shows_every_row_and_column(app_page, app_server, view):
    """At k=10 the table needs no scrolling: no row or column is hidden beyond the frame."""
    page = app_page
    open_view(page, app_server, view, ready='[data-testid="stDataFrame"]')
    page.wait_for_selector(PLOT)
    overflow = grid_overflow(page)
    assert overflow == {"width": 0, "height": 0}, f"table content hidden beyond its frame (px): {overflow}"


def test_overview_axis_labels_are_inside_the_plot(app_page, app_server):
    """The layer and head numbers on the heatmap's axes are drawn where a person can see them."""
    page = app_page
    open_view(page, app_server, "/overview", ready=PLOT)
    outside = page.evaluate(
        f"""() => {{
            const plot = document.querySelector('{PLOT}').getBoundingClientRect();
            return Array.from(document.querySelectorAll('{PLOT} .xtick text, {PLOT} .ytick text'))
                .filter(label => {{
                    const box = label.getBoundingClientRect();
                    return box.left < plot.left || box.right > plot.right
                        || box.top < plot.top || box.bottom > plot.bottom;
                }})
                .map(label => label.textContent);
        }}"""
    )
    assert outside == [], f"axis labels cut off at the plot's edge: {outside}"
