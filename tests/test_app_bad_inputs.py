"""Bad models in the dashboard: one clear message or a visible note, never an exception box."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from app_harness import app_fixture, assert_clean, fresh_server_fixture  # noqa: F401
from test_bad_inputs import broken_gpt2_copy, edit_config


@pytest.fixture(name="broken_gpt2")
def broken_gpt2_fixture(tiny_model, tmp_path) -> Path:
    return broken_gpt2_copy(tiny_model, tmp_path)


def test_overview_names_heads_with_nan_weights(app, broken_gpt2):
    at = app("pages/overview.py", model=str(broken_gpt2))
    assert not at.exception and not at.error
    warning = " ".join(w.value for w in at.warning)
    assert "layer 1 head 2" in warning and "layer 1 head 3" in warning


def test_head_page_of_a_broken_layer_is_a_message(app, broken_gpt2):
    at = app("pages/vo.py", model=str(broken_gpt2), layer="1", head="2", k="3", pairs="3")
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1 and "layer 1" in at.error[0].value.lower()


def test_config_that_disagrees_with_the_weights_is_a_message(app, tiny_model, tmp_path):
    directory = Path(shutil.copytree(tiny_model("gpt2"), tmp_path / "gpt2"))
    edit_config(directory, n_embd=64)
    at = app("pages/vo.py", model=str(directory))
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1 and "hidden size 64" in at.error[0].value


def test_an_intact_layer_of_the_same_model_still_shows(app, broken_gpt2):
    at = app("pages/vo.py", model=str(broken_gpt2), layer="0", head="2", k="3", pairs="3")
    assert_clean(at)


def test_fewer_rows_than_k_are_announced_not_mislabelled(app, tiny_model):
    """The tiny model's vocabulary is smaller than k: the heading counts the real rows and a note says why."""
    at = app("pages/neurons.py", model=str(tiny_model("gpt2")), k="500", points="4")
    assert_clean(at)
    title = next(h.value for h in at.subheader if "tokens of each vector" in h.value)
    assert "500" not in title
    assert any("fewer than" in note.value for note in at.info)
