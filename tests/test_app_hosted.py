"""Hosted mode through AppTest: a visitor cannot open server paths, and learns nothing about them."""

from __future__ import annotations

import pytest
from app_harness import app_fixture, assert_clean, fresh_server_fixture  # noqa: F401

from embspace.hosting import REFUSED_SOURCE


@pytest.fixture(name="hosted")
def hosted_fixture(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBSPACE_HOSTED", "1")
    monkeypatch.setenv("EMBSPACE_CACHE_DIR", str(tmp_path / "app-cache"))
    monkeypatch.setenv("EMBSPACE_MAX_UPLOAD_BYTES", "1000")


def refusal(at) -> str:
    """The one error message on the page (the sidebar's 'Could not open' box)."""
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1, [e.value for e in at.error]
    return at.error[0].value


def test_hosted_mode_refuses_local_paths_with_one_message(hosted, app, tiny_model, tmp_path):
    """Same message for a real model directory, a directory without config.json and a missing path."""
    real_model = tiny_model("gpt2")
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    messages = {
        name: refusal(app("pages/vo.py", model=path)).replace(path, "<source>")
        for name, path in {
            "model": str(real_model),
            "empty": str(empty_dir),
            "missing": str(tmp_path / "nothing-here"),
            "relative": "../../etc",
        }.items()
    }
    assert len(set(messages.values())) == 1, messages
    message = messages["model"]
    assert REFUSED_SOURCE in message
    assert "config.json" not in message and "No such" not in message


def test_hosted_mode_still_opens_the_bundled_model(hosted, app):
    at = app("pages/vo.py", k="3", pairs="3")
    assert_clean(at)
    assert len(at.dataframe[0].value) == 3


def test_local_mode_opens_local_directories(app, tiny_model, monkeypatch):
    monkeypatch.delenv("EMBSPACE_HOSTED", raising=False)
    at = app("pages/vo.py", model=str(tiny_model("gpt2")), k="3", pairs="3")
    assert_clean(at)
    assert len(at.dataframe[0].value) == 3
