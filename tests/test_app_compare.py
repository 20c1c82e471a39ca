"""The /compare page: a tuned copy of the bundled MiniLM, its planted head first, its unit diff shown."""

from __future__ import annotations

import json

import pytest
from app_harness import (  # noqa: F401
    app_fixture,
    assert_clean,
    click_chart_cell,
    download_data,
    downloads_fixture,
    figure,
    fresh_server_fixture,
)
from app_links import click_row
from compare_fixtures import MINILM_PLANTED, make_tuned_minilm

from embspace import VocabFilter, head_top_pairs, neuron_top_tokens, open_model
from embspace.compare import align_layers, most_correlated_rows, unit_diff

PLANTED = MINILM_PLANTED


@pytest.fixture(scope="module")
def tuned_minilm(minilm_dir, tmp_path_factory):
    return make_tuned_minilm(minilm_dir, tmp_path_factory.mktemp("tuned_minilm"))


def test_compare_page_asks_for_a_tuned_model(app):
    at = app("pages/compare.py")
    assert_clean(at)
    assert at.title[0].value == "Compare two models"
    assert "Give a tuned model" in at.info[0].value


def test_compare_page_ranks_the_planted_head_and_shows_its_diff(app, downloads, tuned_minilm):
    at = app("pages/compare.py", k="5")
    at.text_input(key="tuned").input(str(tuned_minilm)).run()
    assert_clean(at)
    assert at.query_params["tuned"] == str(tuned_minilm)  # a copied link reopens the comparison
    top = at.dataframe[0].value
    assert (top.iloc[0]["kind"], top.iloc[0]["layer"], top.iloc[0]["index"]) == ("vo", *PLANTED)
    assert (top["change"].iloc[1:] == 0).all()  # nothing else was touched
    grid = figure(at, "compare_heatmap")["data"][0]["z"]
    assert grid[PLANTED[0]][PLANTED[1]] == max(max(row) for row in grid) > 0
    before, after, plus, minus = (frame.value for frame in at.dataframe[1:5])
    assert len(plus) == len(minus) == len(before) == len(after) == 5
    assert list(before.columns) == ["row_token", "col_token", "score"]
    assert list(plus.columns) == ["row_id", "col_id", "row_token", "col_token", "score"]
    assert (plus["score"] > 0).all() and (minus["score"] > 0).all()
    assert max(max(row) for row in figure(at, "compare_neurons")["data"][0]["z"]) == 0  # no neuron was touched
    document = json.loads(download_data(at, downloads, f"diff-vo-layer{PLANTED[0]}-{PLANTED[1]}-plus-json"))
    assert document["settings"]["tuned"] == str(tuned_minilm) and document["settings"]["unit"] == "vo"
    assert len(document["rows"]) == 5


def test_compare_page_refuses_a_model_of_another_vocabulary_in_one_line(app, tiny_model):
    at = app("pages/compare.py")
    at.text_input(key="tuned").input(str(tiny_model("bert"))).run()
    assert not at.exception
    assert "different vocabularies" in at.error[0].value


def shown_unit(at) -> tuple[str, int, int]:
    return (
        at.selectbox(key="unit").value,
        int(at.number_input(key="layer").value),
        int(at.number_input(key="index").value),
    )


def test_a_heatmap_click_opens_that_heads_diff_beside_its_before_and_after(app, tuned_minilm, minilm_dir):
    at = app("pages/compare.py", k="4", tuned=str(tuned_minilm), unit="vo", layer="4", index="1")
    assert shown_unit(at) == ("vo", 4, 1)
    assert "same in both models" in at.info[0].value  # an untouched head: nothing promoted or demoted
    at = click_chart_cell(at, "compare_heatmap", *PLANTED)
    assert_clean(at)
    assert shown_unit(at) == ("vo", *PLANTED) and not at.info
    assert not {"unit", "layer", "index"} & set(at.query_params)  # the most changed unit, the default, is left out
    assert at.subheader[1].value.startswith("vo layer 2, head 3")
    before, after, plus, minus = (frame.value for frame in at.dataframe[1:5])
    base, tuned = open_model(str(minilm_dir)), open_model(str(tuned_minilm), embedding="input")
    settings_filter = VocabFilter()  # the sidebar's defaults
    for frame, model in ((before, base), (after, tuned)):
        expected = head_top_pairs(model, "vo", *PLANTED, 4, settings_filter)
        assert list(frame["row_token"]) == list(expected.row_tokens)
        assert list(frame["col_token"]) == list(expected.col_tokens)
    assert list(before["score"]) != list(after["score"])
    expected = unit_diff(base, tuned, "vo", *PLANTED, 4, settings_filter)
    assert list(plus["score"]) == pytest.approx(list(expected.plus.scores), rel=1e-5)
    assert list(minus["row_token"]) == list(expected.minus.row_tokens)


def test_a_neuron_click_and_a_list_row_open_their_units(app, tuned_minilm, minilm_dir):
    at = app("pages/compare.py", k="3", tuned=str(tuned_minilm))
    at = click_chart_cell(at, "compare_neurons", 5, 700)
    assert_clean(at)
    assert shown_unit(at) == ("neuron-K", 5, 700)  # neither vector moved: K, the first of equal changes
    assert (at.query_params["unit"], at.query_params["layer"], at.query_params["index"]) == ("neuron-K", "5", "700")
    before = at.dataframe[1].value
    base = open_model(str(minilm_dir))
    assert list(before["token"]) == list(neuron_top_tokens(base, 5, 700, 3)["K"].tokens)
    at = click_row(at, "compare_top", 2)
    assert_clean(at)
    row = at.dataframe[0].value.iloc[2]
    assert shown_unit(at) == (row["kind"], row["layer"], row["index"])
    at.number_input(key="index").set_value(9).run()  # the widgets keep working after a click
    assert shown_unit(at)[2] == min(9, 11 if row["kind"] in ("vo", "qk") else 1535)


def test_an_address_opens_its_unit(app, tuned_minilm):
    at = app("pages/compare.py", k="3", tuned=str(tuned_minilm), unit="neuron-V", layer="1", index="42")
    assert_clean(at)
    assert shown_unit(at) == ("neuron-V", 1, 42)
    assert at.subheader[1].value.startswith("neuron-V layer 1, neuron 42")
    assert list(at.dataframe[1].value.columns) == ["token", "score", "token_id"]


def test_match_layers_section(app, tuned_minilm, minilm_dir):
    at = app("pages/compare.py", k="5", tuned=str(tuned_minilm), section="Match layers", part="wo")
    assert_clean(at)
    base, tuned = open_model(str(minilm_dir)), open_model(str(tuned_minilm), embedding="input")
    expected = align_layers(base, tuned, "wo")
    heatmap, rings = figure(at, "compare_align")["data"]
    assert heatmap["type"] == "heatmap" and len(heatmap["z"]) == 6
    assert list(zip(rings["y"], rings["x"], strict=True)) == [(i, i) for i in range(6)] == list(expected.matching)
    matched = at.dataframe[0].value
    assert list(matched["layer_b"]) == list(range(6))
    at.number_input(key="a_layer").set_value(3).run()
    at.number_input(key="a_index").set_value(2).run()
    assert_clean(at)
    rows = at.dataframe[1].value
    found = most_correlated_rows(base, tuned, "wo", 3, 2, 5)
    assert [(r["layer"], r["index"]) for _, r in rows.iterrows()] == [(r.layer, r.index) for r in found]
    at.selectbox(key="part").set_value("ffn-v").run()
    rows = at.dataframe[1].value
    assert (rows.iloc[0]["layer"], rows.iloc[0]["index"], rows.iloc[0]["corr"]) == (3, 2, 1.0)  # itself, untouched
    assert at.query_params["section"] == "Match layers" and at.query_params["a_layer"] == "3"
