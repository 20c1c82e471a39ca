"""The token search page through AppTest: results, links to each view, filters, downloads."""

from __future__ import annotations

from app_harness import app_fixture, assert_clean, download_data, downloads_fixture, fresh_server_fixture  # noqa: F401
from app_links import click_row

from dashboard import search_view
from embspace.atlas import Atlas, build_atlas
from embspace.model.embedding_space import open_model
from embspace.model.sources import DEFAULT_MODEL
from embspace.search.index import search
from embspace.vocab.filters import VocabFilter


def test_search_page_lists_hits_with_links_to_their_views(app, downloads):
    at = app("pages/search.py", q="king", limit="3", k="5")
    assert_clean(at)
    shown = at.dataframe[0].value
    assert len(shown) > 0 and set(shown["token"]) == {"king"}
    expected = search(open_model(DEFAULT_MODEL), ["king"], limit=3)
    assert list(shown["rank"]) == [hit.rank for hit in expected]
    assert list(shown["layer"]) == [hit.layer for hit in expected]
    assert list(shown.columns)[0] == "open"  # first: a click on the row opens the view
    assert "king" in download_data(at, downloads, "search-king-json")

    click_row(at, "hits_0", 0)  # one click, same session: the hit's view with the sidebar's settings
    assert_clean(at)
    unit = "neuron" if expected[0].kind.startswith("neuron") else "head"
    title = {"neuron": "FFN neuron", "vo": "W_VO", "qk": "W_QK"}[expected[0].kind.split("-")[0]]
    assert at.title[0].value.startswith(title)
    assert at.number_input(key="layer").value == expected[0].layer and at.query_params["k"] == "5"
    assert at.number_input(key=unit).value == expected[0].index


def test_search_page_splits_words_into_tokens(app):
    at = app("pages/search.py", q="unbelievably", limit="1")
    assert_clean(at)
    caption = " ".join(c.value for c in at.caption)
    assert "unbelievably" in caption and "##" in caption


def test_search_respects_the_sidebar_filters(app):
    """Ranks count only the tokens the filters keep, and best partners pass the filters."""
    at = app("pages/search.py", q="king", limit="3", alnum="true")
    assert_clean(at)
    shown = at.dataframe[0].value
    expected = search(open_model(DEFAULT_MODEL), ["king"], vocab_filter=VocabFilter(only_alnum=True), limit=3)
    assert list(shown["rank"]) == [hit.rank for hit in expected]
    partners = [p.removeprefix("##") for p in shown["best partner"] if p]
    assert partners and all(p.isalnum() for p in partners)


def test_search_page_without_a_query_explains_itself(app):
    at = app("pages/search.py")
    assert_clean(at)
    assert any("Type a word" in i.value for i in at.info)


def test_search_and_start_page_use_the_models_atlas(app, tmp_path, monkeypatch):
    """With an atlas for the opened model, search answers from it (same hits as the engine's atlas path)."""
    model = open_model(DEFAULT_MODEL)
    build_atlas(model, tmp_path / "minilm", k=20, layers=[0], progress=False)
    monkeypatch.setenv("EMBSPACE_ATLAS_DIR", str(tmp_path))
    monkeypatch.setenv("EMBSPACE_COMPUTE_LOG", str(tmp_path / "computed.log"))
    search_view.search_index.clear()
    at = app("pages/search.py", q="king", limit="3")
    assert_clean(at)
    assert any("From the atlas" in c.value for c in at.caption)
    computed = (tmp_path / "computed.log").read_text(encoding="utf-8")
    assert '"search"' in computed and "search-index" not in computed  # the atlas answers without the index
    expected = search(model, ["king"], limit=3, atlas=Atlas.open(tmp_path / "minilm"))
    shown = at.dataframe[0].value
    assert list(zip(shown["layer"], shown["neuron / head"], shown["rank"], strict=True)) == [
        (hit.layer, hit.index, hit.rank) for hit in expected
    ]
    start = app("pages/about.py")
    assert any("Atlas in use" in c.value for c in start.caption)
