"""The dashboard's pages through AppTest, on the bundled MiniLM (6 layers, 12 heads, d_ff 1536)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pandas as pd
from app_harness import (
    app_fixture,  # noqa: F401  (fixture `app`)
    assert_clean,
    click_heatmap_cell,
    download_data,
    downloads_fixture,  # noqa: F401  (fixture `downloads`)
    fresh_server_fixture,  # noqa: F401  (fixture `fresh_server`)
    traces,
)

from dashboard import page_list

PAGES = {
    "pages/about.py": "embspace: a transformer's weights, read in its vocabulary",
    "pages/neurons.py": "FFN neurons",
    "pages/vo.py": "W_VO: what a head copies",
    "pages/qk.py": "W_QK: what a head attends to",
    "pages/directions.py": "Singular directions",
    "pages/overview.py": "Copying score of every head",
}


def test_every_page_renders_its_defaults(app):
    at = app()
    for page, title in PAGES.items():
        at.switch_page(page).run()
        assert_clean(at)
        assert at.title[0].value == title
    assert at.query_params == {}  # defaults leave the address bare


def test_start_page_links_every_page_of_the_navigation(app):
    """The Start page's links come from page_list: none can go missing (Annotations once did)."""
    at = app("pages/about.py")
    assert_clean(at)
    linked = [link.proto.page for link in at.page_link]  # each link's url_path
    assert linked == ["neurons", "vo", "qk", "directions", "overview", "search", "compare", "annotations", "tours"]
    assert linked == [page.url_path for page in page_list.PAGES if page is not page_list.START]
    assert all(link.value.startswith("**") for link in at.page_link)  # a bold page name, then what it shows
    root = Path(__file__).resolve().parents[1]
    assert all((root / page.script).is_file() for page in page_list.PAGES)


def test_neuron_table_follows_layer_and_neuron(app):
    at = app("pages/neurons.py", k="5", points="8")
    assert_clean(at)
    first = at.dataframe[0].value
    assert list(first.columns) == ["rank", "K", "K score", "V", "V score", "-K", "-K score", "-V", "-V score"]
    assert len(first) == 5
    assert (first["K score"].diff().dropna() <= 0).all()

    at.number_input(key="layer").set_value(3).run()
    assert_clean(at)
    other_layer = at.dataframe[0].value
    assert not other_layer.equals(first)
    assert at.query_params["layer"] == "3"

    at.number_input(key="neuron").set_value(700).run()
    assert not at.dataframe[0].value.equals(other_layer)
    assert at.query_params["neuron"] == "700"
    assert at.subheader[0].value.startswith("Layer 3, neuron 700")


def test_neuron_tsne_places_the_requested_tokens(app):
    at = app("pages/neurons.py", k="5", points="12", vector="-V")
    assert_clean(at)
    (scatter,) = traces(at, "tsne")
    assert scatter["type"] == "scatter3d"
    assert len(scatter["x"]) == len(scatter["z"]) == 12
    minus_v = at.dataframe[0].value["-V"].tolist()
    hover_tokens = [point[0] for point in scatter["customdata"]]
    assert hover_tokens[:5] == minus_v  # the table's top -V tokens, best first

    at.radio(key="dims").set_value(2)
    at.toggle(key="labels").set_value(True).run()
    (scatter,) = traces(at, "tsne")
    assert scatter["type"] == "scatter" and scatter["mode"] == "markers+text"
    assert len(scatter["x"]) == 12
    assert at.query_params["dims"] == "2" and at.query_params["labels"] == "true"


def test_head_tsne_places_the_row_and_column_tokens_of_the_top_pairs(app):
    at = app("pages/vo.py", layer="2", head="7", k="6", pairs="9")
    assert_clean(at)
    table = at.dataframe[0].value
    assert list(table.columns) == ["rank", "attended-to token", "promoted output token", "score"]
    assert len(table) == 6
    groups = {trace["name"]: trace for trace in traces(at, "tsne")}
    assert set(groups) == {"row token", "column token"}
    # The plotted tokens are the distinct row and column tokens of the top 9 pairs.
    at.number_input(key="k").set_value(9).run()
    top9 = at.dataframe[0].value
    assert len(groups["row token"]["x"]) == top9["attended-to token"].nunique()
    assert len(groups["column token"]["x"]) == top9["promoted output token"].nunique()


def test_vo_and_qk_read_different_matrices_of_the_same_head(app):
    at = app("pages/vo.py", layer="1", head="3", k="5", pairs="4")
    vo_table = at.dataframe[0].value
    vo_score = at.metric[0].value
    at.switch_page("pages/qk.py").run()
    assert_clean(at)
    qk_table = at.dataframe[0].value
    assert list(qk_table.columns) == ["rank", "query token", "key token", "score"]
    assert at.number_input(key="layer").value == 1 and at.number_input(key="head").value == 3
    assert not qk_table["query token"].equals(vo_table["attended-to token"])
    assert at.metric[0].value == vo_score  # the copying score is a property of the head's W_VO


def test_random_head_moves_the_view_and_the_address(app):
    at = app("pages/vo.py", k="3", pairs="3")
    seen = set()
    for _ in range(3):
        at.button(key="random_unit").click().run()
        assert_clean(at)
        layer, head = at.number_input(key="layer").value, at.number_input(key="head").value
        assert 0 <= layer < 6 and 0 <= head < 12
        assert at.query_params.get("layer", "0") == str(layer) and at.query_params.get("head", "0") == str(head)
        seen.add((layer, head))
    assert len(seen) > 1


def test_next_and_previous_step_through_heads_across_layers(app):
    at = app("pages/vo.py", layer="0", head="11", k="3", pairs="3")
    first_table = at.dataframe[0].value
    at.button(key="step_next").click().run()
    assert_clean(at)
    assert (at.number_input(key="layer").value, at.number_input(key="head").value) == (1, 0)
    assert at.query_params["layer"] == "1" and "head" not in at.query_params  # head 0 is the default
    assert not at.dataframe[0].value.equals(first_table)
    at.button(key="step_previous").click().run()
    assert (at.number_input(key="layer").value, at.number_input(key="head").value) == (0, 11)
    assert at.dataframe[0].value.equals(first_table)
    at = app("pages/neurons.py", layer="0", neuron="0", k="3", points="4")
    at.button(key="step_previous").click().run()  # the model's first unit wraps to its last
    assert (at.number_input(key="layer").value, at.number_input(key="neuron").value) == (5, 1535)
    assert [b.proto.shortcut for b in at.button if b.key in ("step_previous", "step_next")] == ["left", "right"]


def test_downloads_carry_the_tables_and_the_plot(app, downloads):
    at = app("pages/neurons.py", layer="4", neuron="9", k="4", points="6")
    assert_clean(at)
    table = at.dataframe[0].value
    csv = pd.read_csv(io.StringIO(download_data(at, downloads, "neuron-layer4-9-csv")))
    pd.testing.assert_frame_equal(csv[list(table.columns)], table.reset_index(drop=True), check_dtype=False)
    records = json.loads(download_data(at, downloads, "neuron-layer4-9-json"))["rows"]
    assert set(records) == {"K", "V", "-K", "-V"}
    assert [r["token"] for r in records["V"]] == table["V"].tolist()
    html = download_data(at, downloads, "neuron-layer4-9-K-tsne-html")
    assert "<html>" in html[:100] and "Plotly.newPlot" in html and table["K"][0] in html

    at.switch_page("pages/vo.py").run()
    shown = at.dataframe[0].value
    pairs = pd.read_csv(io.StringIO(download_data(at, downloads, "vo-layer4-head0-csv")))
    assert pairs["row_token"].tolist() == shown["attended-to token"].tolist()
    assert {"row_id", "col_id", "score", "rank"} <= set(pairs.columns)
    assert (
        json.loads(download_data(at, downloads, "vo-layer4-head0-json"))["rows"][0]["col_token"]
        == shown["promoted output token"][0]
    )


def test_overview_scores_every_head_and_a_click_opens_its_w_vo(app, downloads):
    at = app("pages/overview.py", k="4")
    assert_clean(at)
    heatmap, overlay = traces(at, "copying_heatmap")
    assert heatmap["type"] == "heatmap" and heatmap["z"].shape == (6, 12)
    assert ((-1 <= heatmap["z"]) & (heatmap["z"] <= 1)).all()
    assert len(overlay["x"]) == 72  # one clickable overlay point per cell
    scores = pd.read_csv(io.StringIO(download_data(at, downloads, "copying-scores-csv")))
    assert len(scores) == 72 and set(scores["layer"]) == set(range(6)) and set(scores["head"]) == set(range(12))
    score_3_5 = scores.query("layer == 3 and head == 5")["copying_score"].item()

    click_heatmap_cell(at, layer=3, head=5)
    assert_clean(at)
    assert at.title[0].value == PAGES["pages/vo.py"]
    assert at.number_input(key="layer").value == 3 and at.number_input(key="head").value == 5
    assert at.query_params == {"k": "4", "layer": "3", "head": "5"}
    assert len(at.dataframe[0].value) == 4  # the sidebar's k came along
    assert float(at.metric[0].value) == round(score_3_5, 3)


def test_head_page_lists_a_tokens_best_partners_in_that_head(app):
    """?token=king: the head's best pairs with king as the row and as the column, equal to the engine's."""
    from embspace.compute.projections import head_top_pairs
    from embspace.model.embedding_space import open_model
    from embspace.model.sources import DEFAULT_MODEL

    at = app("pages/qk.py", layer="2", head="3", k="4", pairs="4", token="king")
    assert_clean(at)
    assert any(h.value == "king (token 2332) in this head" for h in at.subheader)
    model = open_model(DEFAULT_MODEL)
    as_row, as_column = at.dataframe[0].value, at.dataframe[1].value  # the word's section comes first
    by_row = head_top_pairs(model, "qk", 2, 3, 4, row_token=2332)
    by_column = head_top_pairs(model, "qk", 2, 3, 4, col_token=2332)
    assert list(as_row.iloc[:, 1]) == list(by_row.col_tokens)
    assert list(as_column.iloc[:, 1]) == list(by_column.row_tokens)
    at.text_input(key="token").set_value("zzqxjw").run()  # splits into word pieces: one section each, at most 3
    assert_clean(at)
    assert 1 <= sum("in this head" in h.value for h in at.subheader) <= 3


def test_changing_only_the_plot_options_does_not_recompute_the_table(app, tmp_path, monkeypatch):
    """Every real pair computation appends a line to $EMBSPACE_COMPUTE_LOG: plot options add none."""
    log = tmp_path / "computations.jsonl"
    monkeypatch.setenv("EMBSPACE_COMPUTE_LOG", str(log))
    at = app("pages/vo.py", layer="1", head="4", k="5", pairs="5")
    assert_clean(at)
    assert len(log.read_text().splitlines()) == 1
    at.radio(key="dims").set_value(2).run()
    at.toggle(key="normalize").set_value(True).run()
    at.toggle(key="labels").set_value(True).run()
    assert_clean(at)
    assert len(log.read_text().splitlines()) == 1
    at.number_input(key="head").set_value(7).run()  # a new head (a jump: no prefetch) is computed once
    assert len(log.read_text().splitlines()) == 2


def test_after_a_step_the_next_head_is_computed_before_the_next_click(app, tmp_path, monkeypatch):
    """Stepping with Next computes the following head in the background; the next Next finds it ready."""
    log = tmp_path / "computations.jsonl"
    monkeypatch.setenv("EMBSPACE_COMPUTE_LOG", str(log))

    def computed_heads() -> list[tuple[int, int]]:
        lines = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        return [(entry[2], entry[3]) for entry in lines if entry[0] == "head_pairs"]

    at = app("pages/vo.py", layer="2", head="10", k="5", pairs="5")
    assert computed_heads() == [(2, 10)]  # opening a view prefetches nothing
    at.button(key="step_next").click().run()
    assert_clean(at)
    deadline = time.monotonic() + 60
    while (3, 0) not in computed_heads() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert computed_heads() == [(2, 10), (2, 11), (3, 0)]  # layer 2's last head, then layer 3's first
    at.button(key="step_next").click().run()
    assert_clean(at)
    assert (at.number_input(key="layer").value, at.number_input(key="head").value) == (3, 0)
    deadline = time.monotonic() + 60  # the prefetch of (3, 1) runs in the background: under load it may lag
    while (3, 1) not in computed_heads() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert computed_heads()[:4] == [(2, 10), (2, 11), (3, 0), (3, 1)]  # (3, 0) was not computed twice
    at.number_input(key="head").increment().run()  # the head input's + steps the same way: to (3, 1)
    assert computed_heads().count((3, 1)) == 1  # prefetched by the last Next, not computed again
    deadline = time.monotonic() + 60
    while (3, 2) not in computed_heads() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (3, 2) in computed_heads()  # ... and the + prefetched the head after it
    at.number_input(key="layer").increment().run()  # a jump, to (4, 1), prefetches nothing
    time.sleep(1)
    assert computed_heads()[-1] == (4, 1) and (4, 2) not in computed_heads()
