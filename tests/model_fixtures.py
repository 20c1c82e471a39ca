"""Tiny models opened the way a user opens them, as module-scoped fixtures: `gpt2 = opened_model("gpt2")`."""

from __future__ import annotations

import pytest

from embspace import open_model


def opened_model(arch: str, **options):
    """A module-scoped fixture named after the variable it is assigned to: open_model(path, **options)
    on the session's tiny `arch` model (conftest's `tiny_model`), opened once per test module."""

    @pytest.fixture(scope="module")
    def model(tiny_model):
        return open_model(str(tiny_model(arch)), **options)

    return model
