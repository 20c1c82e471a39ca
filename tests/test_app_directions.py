"""The singular-directions page (/directions) through AppTest, on the bundled MiniLM (6 layers, 12 heads, d_head 32)."""

from __future__ import annotations

from urllib.parse import parse_qs

import numpy as np
import pytest
from app_harness import (
    app_fixture,  # noqa: F401  (fixture `app`)
    assert_clean,
    figure,
    fresh_server_fixture,  # noqa: F401  (fixture `fresh_server`)
    traces,
)
from app_links import click_row

from embspace import DEFAULT_MODEL, VocabFilter, open_model, svd_view

PAGE = "pages/directions.py"


@pytest.fixture(scope="module")
def minilm():
    return open_model(DEFAULT_MODEL)


def token_column(at, index: int, column: str) -> list[str]:
    """The tokens of one end ("reads (u) +", ...) in direction `index`'s table (the page's token tables in order)."""
    frame = at.dataframe[index].value
    return [t for t in frame[column].tolist() if isinstance(t, str)]


def test_defaults_show_the_spectrum_and_eight_directions_of_head_0_0(app, minilm):
    at = app(PAGE)
    assert_clean(at)
    assert at.title[0].value == "Singular directions"
    assert at.query_params == {}  # defaults leave the address bare
    (bars,) = traces(at, "spectrum")
    expected = svd_view(minilm, "ov", 0, 0, 8, 30)
    np.testing.assert_allclose(bars["y"], expected.singular_values, rtol=1e-6)  # all 32, not only the 8 shown
    headings = [s.value for s in at.subheader]
    assert headings == [f"Direction {d.index}: σ = {d.sigma:.4g}" for d in expected.directions]
    assert token_column(at, 0, "reads (u) +") == list(expected.directions[0].left.plus.tokens)
    assert token_column(at, 7, "writes (v) −") == list(expected.directions[7].right.minus.tokens)


def test_the_address_sets_kind_layer_head_and_count(app, minilm):
    at = app(PAGE, kind="qk", layer="3", head="5", directions="2", k="7")
    assert_clean(at)
    assert at.selectbox(key="kind").value == "qk"
    assert (at.number_input(key="layer").value, at.number_input(key="head").value) == (3, 5)
    assert len(at.subheader) == 2
    expected = svd_view(minilm, "qk", 3, 5, 2, 7)
    for i, direction in enumerate(expected.directions):
        assert token_column(at, i, "query (u) +") == list(direction.left.plus.tokens)
        assert token_column(at, i, "key (v) −") == list(direction.right.minus.tokens)
    at.number_input(key="directions").set_value(3).run()
    assert len(at.subheader) == 3
    assert (at.query_params["directions"], at.query_params["kind"], at.query_params["head"]) == ("3", "qk", "5")


def test_the_sidebar_filters_apply_to_every_token_list(app, minilm):
    at = app(PAGE, layer="1", head="2", directions="2", alnum="true", k="10")
    assert_clean(at)
    keep = VocabFilter(only_alnum=True)
    expected = svd_view(minilm, "ov", 1, 2, 2, 10, keep)
    unfiltered = svd_view(minilm, "ov", 1, 2, 2, 10)
    mask = minilm.vocab_mask(keep)
    for i, direction in enumerate(expected.directions):
        for column, scores in (("reads (u) +", direction.left.plus), ("writes (v) −", direction.right.minus)):
            assert token_column(at, i, column) == list(scores.tokens)
            assert mask[scores.token_ids].all()
        assert token_column(at, i, "reads (u) −") == list(direction.left.minus.tokens)
    # The filter changed what is shown (without it, some of these lists hold tokens it drops).
    ends = [e for d in unfiltered.directions for side in (d.left, d.right) for e in (side.plus, side.minus)]
    assert not all(mask[e.token_ids].all() for e in ends)


def test_ffn_kinds_list_the_neurons_that_load_most_with_links_to_them(app, minilm):
    at = app(PAGE, kind="ffn-out", layer="4", directions="1", k="5")
    assert_clean(at)
    assert "head" not in [w.key for w in at.number_input]  # no head picker for a layer's FFN
    expected = svd_view(minilm, "ffn-out", 4, None, 1, 5).directions[0]
    tokens, neurons = at.dataframe[0].value, at.dataframe[1].value
    assert [t for t in tokens["writes (v) +"] if isinstance(t, str)] == list(expected.right.plus.tokens)
    assert neurons["neuron"].tolist()[:5] == expected.left.neurons.tolist()
    click_row(at, "neurons_0", 1)  # one click, the same tab: that neuron's view
    assert_clean(at)
    assert at.title[0].value == "FFN neurons"
    assert (at.number_input(key="layer").value, at.number_input(key="neuron").value) == (4, expected.left.neurons[1])


def test_degenerate_directions_are_marked_with_their_gap(app, minilm):
    """MiniLM's layer 5 head 6 QK has two nearly equal singular values (directions 4 and 5)."""
    expected = svd_view(minilm, "qk", 5, 6, 6, 3)
    assert [d.degenerate for d in expected.directions] == [False] * 4 + [True] * 2
    at = app(PAGE, kind="qk", layer="5", head="6", directions="6", k="3")
    assert_clean(at)
    notes = [w.value for w in at.warning]
    assert len(notes) == 2
    assert all(f"{d.gap:.1e}" in note for d, note in zip(expected.directions[4:], notes, strict=True))
    colours = figure(at, "spectrum")["data"][0]["marker"]["color"]
    assert colours[4] == colours[5] != colours[3]


def link_params(link) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(link.proto.query_string).items()}


def test_head_and_neuron_pages_link_to_their_directions(app):
    at = app("pages/vo.py", layer="2", head="4")
    assert_clean(at)
    (link,) = [link for link in at.page_link if link.proto.page == "directions"]
    assert link.value == "Singular directions of this head"
    assert link_params(link) == {"kind": "ov", "layer": "2", "head": "4"}
    at = app("pages/qk.py", layer="1", head="3")
    (link,) = [link for link in at.page_link if link.proto.page == "directions"]
    assert link_params(link) == {"kind": "qk", "layer": "1", "head": "3"}
    at = app("pages/neurons.py", layer="5", neuron="10")
    (link,) = [link for link in at.page_link if link.proto.page == "directions"]
    assert link.value == "Singular directions of this layer's FFN"
    assert link_params(link) == {"kind": "ffn-in", "layer": "5"}


def test_the_sign_setting_does_not_touch_the_directions(app):
    """Both ends are always shown: "most negative" neither shows in the filter line nor changes a table."""
    at = app("pages/directions.py", layer="1", head="2", k="4")
    tables = [frame.value for frame in at.dataframe]
    negative = app("pages/directions.py", layer="1", head="2", k="4", negative="true")
    assert_clean(negative)
    assert not any("most negative" in caption.value for caption in negative.main.caption)
    assert all(a.equals(b.value) for a, b in zip(tables, negative.dataframe, strict=True))
