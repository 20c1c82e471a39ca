"""The search page's second mode, a set of words (concept), through AppTest: the ranked units, the score
stated, which words hit, rows that open each unit's view, the mode in the address."""

from __future__ import annotations

import pandas as pd
import pytest
from app_harness import app_fixture, assert_clean, download_data, downloads_fixture, fresh_server_fixture  # noqa: F401
from concept_fixtures import PLANTED_HEAD, plant

from dashboard import search_view
from embspace import CONCEPT_SCORE_RULE, concepts, open_model


@pytest.fixture(scope="module")
def planted(tiny_model, tmp_path_factory):
    directory, words = plant(tiny_model("bert"), tmp_path_factory.mktemp("app_concepts") / "planted")
    return str(directory), words


def test_concept_mode_ranks_the_units_and_states_the_score(app, downloads, planted):
    path, words = planted
    at = app("pages/search.py", model=path, mode="concept", words=",".join(words), ck="10", units="8")
    assert_clean(at)
    shown = at.dataframe[0].value
    expected = concepts(open_model(path), words, k=10, limit=8)
    assert list(shown["hits"]) == [hit.hits for hit in expected] and shown["hits"].iloc[0] == len(words)
    assert list(shown["layer"]) == [hit.layer for hit in expected]
    assert set(shown["words that hit"].iloc[0].split(", ")) == set(words)
    assert list(shown.columns)[0] == "open"
    assert any(CONCEPT_SCORE_RULE in caption.value for caption in at.caption)
    assert words[0] in download_data(at, downloads, "concepts-" + "-".join(words)[:60] + "-json")


def test_each_concept_row_leads_to_its_unit_and_an_svd_row_to_the_directions_page(app, planted):
    """The rows' links (links.link_table follows them on a click): a neuron's and a head's view, /directions
    for an SVD direction; each opens cleanly on its unit."""
    path, words = planted
    found = concepts(open_model(path), words, k=10, limit=50)
    frame = pd.DataFrame([hit.as_dict() for hit in found])
    links = {}
    for kind, link in zip(frame["kind"], search_view.concept_links(frame, {"model": path}), strict=True):
        links.setdefault(kind, link)  # each kind's first (best) unit
    first = {hit.kind: hit for hit in reversed(found)}
    svd = links["svd-ov"]
    assert svd.page == "pages/directions.py" and svd.params["kind"] == "ov"
    assert (svd.params["layer"], svd.params["head"]) == tuple(str(i) for i in PLANTED_HEAD)
    at = app(svd.page, **svd.params)
    assert_clean(at)
    assert at.selectbox(key="kind").value == "ov" and at.number_input(key="head").value == PLANTED_HEAD[1]
    neuron = links["neuron-V"]
    at = app(neuron.page, **neuron.params)
    assert_clean(at)
    assert at.title[0].value.startswith("FFN neuron")
    assert at.number_input(key="neuron").value == first["neuron-V"].index
    assert links["vo-write"].page == "pages/vo.py" and links["vo-write"].params["head"] == str(PLANTED_HEAD[1])


def test_the_mode_lives_in_the_address_and_an_empty_set_explains_itself(app):
    at = app("pages/search.py")  # the default model: AppTest cannot rerun a typed model path's selectbox
    assert at.radio(key="mode").value == "word"
    at.radio(key="mode").set_value("concept").run()
    assert_clean(at)
    assert at.query_params["mode"] == "concept"
    assert any("Type a few words" in info.value for info in at.info)
