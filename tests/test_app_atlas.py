"""Pages answered from an atlas.

The same rows as live computation, and the live fallback when filters are too strict.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from app_harness import app_fixture, assert_clean, fresh_server_fixture  # noqa: F401

from embspace.atlas import Atlas, build_atlas
from embspace.compute.projections import copying_scores, head_top_pairs, neuron_top_tokens
from embspace.model.embedding_space import open_model
from embspace.model.sources import DEFAULT_MODEL

ATLAS_K = 6


@pytest.fixture(scope="module")
def gpt2_atlas(tiny_model, tmp_path_factory):
    """(tiny GPT-2 directory, its opened model, the directory holding its atlas, N = 6)."""
    path = tiny_model("gpt2")
    model = open_model(str(path))
    root = tmp_path_factory.mktemp("atlases")
    build_atlas(model, root / "tiny-gpt2", k=ATLAS_K, progress=False)
    return path, model, root


@pytest.fixture
def atlas_app(app, gpt2_atlas, monkeypatch):
    path, _, root = gpt2_atlas
    monkeypatch.setenv("EMBSPACE_ATLAS_DIR", str(root))
    return lambda page, **params: app(page, model=str(path), **params)


def from_atlas(at) -> bool:
    return any("From the atlas" in caption.value for caption in at.caption)


@pytest.mark.parametrize("kind", ["vo", "qk"])
@pytest.mark.parametrize("negative", [False, True])
def test_head_pages_answer_from_the_atlas(atlas_app, gpt2_atlas, kind, negative):
    _, model, _ = gpt2_atlas
    params = {"layer": "1", "head": "1", "k": "5", "pairs": "5"} | ({"negative": "true"} if negative else {})
    at = atlas_app(f"pages/{kind}.py", **params)
    assert_clean(at)
    assert from_atlas(at) and at.toggle(key="atlas").value
    shown = at.dataframe[0].value
    live = head_top_pairs(model, kind, 1, 1, 5, negative=negative)
    assert [tuple(row) for row in shown[["rank"]].itertuples(index=False)] == [(r,) for r in range(1, 6)]
    np.testing.assert_allclose(shown["score"], live.scores, rtol=1e-5)
    assert list(shown.iloc[:, 1]) == list(live.row_tokens) and list(shown.iloc[:, 2]) == list(live.col_tokens)


@pytest.fixture(scope="module")
def minilm_atlas(tmp_path_factory):
    """(the bundled MiniLM, the directory holding an atlas of its layer 0 with N = 6)."""
    model = open_model(DEFAULT_MODEL)
    root = tmp_path_factory.mktemp("minilm-atlas")
    build_atlas(model, root / "minilm", k=ATLAS_K, layers=[0], progress=False)
    return model, root


def test_a_filter_too_strict_for_the_atlas_offers_the_exact_live_table(app, minilm_atlas, monkeypatch):
    """On the bundled model (AppTest cannot click on a page whose model selectbox holds a typed path)."""
    model, root = minilm_atlas
    monkeypatch.setenv("EMBSPACE_ATLAS_DIR", str(root))
    at = app("pages/vo.py", layer="0", head="2", k="9", pairs="9")
    assert_clean(at)
    assert not from_atlas(at)
    assert any("fewer than the 9 asked for" in w.value for w in at.warning)
    at.button(key="compute_live").click().run()
    assert_clean(at)
    assert not at.toggle(key="atlas").value and at.query_params["atlas"] == "false"
    shown = at.dataframe[0].value
    live = head_top_pairs(model, "vo", 0, 2, 9)
    assert len(shown) == 9
    np.testing.assert_allclose(shown["score"], live.scores, rtol=1e-5)


def test_special_tokens_are_not_stored_so_keeping_them_goes_live(atlas_app):
    at = atlas_app("pages/vo.py", layer="0", head="0", k="3", pairs="3", special="true")
    assert_clean(at)
    assert any("never stored" in w.value for w in at.warning)


@pytest.mark.parametrize("negative", [False, True])
def test_neuron_page_answers_from_the_atlas(atlas_app, gpt2_atlas, negative):
    _, model, _ = gpt2_atlas
    params = {"layer": "0", "neuron": "7", "k": "4", "points": "4"}
    at = atlas_app("pages/neurons.py", **params | ({"negative": "true"} if negative else {}))
    assert_clean(at)
    assert from_atlas(at)
    wide = at.dataframe[0].value
    live = neuron_top_tokens(model, 0, 7, 4, negative=negative)
    for name, table in live.items():
        heading = f"{name}·E lowest" if negative else name  # the column says which end of name·E it holds
        assert list(wide[heading]) == list(table.tokens)
        np.testing.assert_allclose(wide[f"{heading} score"], table.scores, rtol=1e-5)


def test_overview_reads_copying_scores_from_the_atlas(atlas_app, gpt2_atlas):
    _, model, _ = gpt2_atlas
    at = atlas_app("pages/overview.py")
    assert_clean(at)
    assert from_atlas(at)
    shown = at.dataframe[0].value.sort_values(["layer", "head"])
    np.testing.assert_allclose(shown["copying_score"], copying_scores(model).ravel(), rtol=1e-6)


def test_a_layer_missing_from_the_atlas_is_computed_live(app, minilm_atlas, monkeypatch):
    monkeypatch.setenv("EMBSPACE_ATLAS_DIR", str(minilm_atlas[1]))
    at = app("pages/vo.py", layer="3", head="2", k="3", pairs="3")
    assert_clean(at)
    assert not from_atlas(at) and "atlas" not in [toggle.key for toggle in at.toggle]
    assert len(at.dataframe[0].value) == 3


def test_the_toggle_turns_the_atlas_off(atlas_app):
    at = atlas_app("pages/qk.py", layer="1", head="0", k="3", pairs="3", atlas="false")
    assert_clean(at)
    assert not from_atlas(at) and not at.warning
    assert len(at.dataframe[0].value) == 3


def test_start_page_builds_the_layers_a_partial_atlas_lacks(app, minilm_atlas, tmp_path, monkeypatch):
    model, root = minilm_atlas
    shutil.copytree(root / "minilm", tmp_path / "minilm")  # the shared fixture stays a one-layer atlas
    monkeypatch.setenv("EMBSPACE_ATLAS_DIR", str(tmp_path))
    at = app("pages/about.py")
    assert_clean(at)
    at.button(key="build_atlas").click().run(timeout=300)
    assert_clean(at)
    assert Atlas.open(tmp_path / "minilm").layers("pairs") == list(range(model.shape.n_layers))
    assert not [b for b in at.button if b.key == "build_atlas"]  # nothing left to build
    at.switch_page("pages/vo.py").run()
    at.number_input(key="layer").set_value(4)
    at.number_input(key="k").set_value(5)
    at.number_input(key="pairs").set_value(5).run()
    assert from_atlas(at)
    live = head_top_pairs(model, "vo", 4, 0, 5)
    np.testing.assert_allclose(at.dataframe[0].value["score"].head(5), live.scores, rtol=1e-5)


def test_start_page_offers_a_build_only_off_a_public_server(app, tmp_path, monkeypatch):
    monkeypatch.setenv("EMBSPACE_ATLAS_DIR", str(tmp_path))
    at = app("pages/about.py")
    assert_clean(at)
    assert str(tmp_path) in at.button(key="build_atlas").label and at.number_input[0].value == 200
    monkeypatch.setenv("EMBSPACE_HOSTED", "1")
    hosted = app("pages/about.py")
    assert_clean(hosted)
    assert not [b for b in hosted.button if b.key == "build_atlas"]
