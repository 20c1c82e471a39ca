"""Shared by the annotation tests: a model id, the sizes views are checked against, keys of its views, a store."""

from __future__ import annotations

from pathlib import Path

import pytest

from embspace.annotations import AnnotationKey, AnnotationStore
from embspace.model.layout import ModelShape

MODEL = "org/tiny"
SHAPE = ModelShape("gpt2", n_layers=2, n_heads=4, n_kv_heads=4, d_model=8, d_head=2, d_ff=16, vocab_size=50)


def key(kind: str = "vo", layer: int = 1, index: int = 2, revision: str | None = "") -> AnnotationKey:
    """The key of one view of MODEL (default: W_VO head 2 of layer 1)."""
    return AnnotationKey(MODEL, revision, kind, layer, index)


def writable_store(data_dir: Path) -> AnnotationStore:
    """A store in `data_dir` that can be written whatever EMBSPACE_ANNOTATIONS says."""
    return AnnotationStore.open(data_dir, read_only=False)


@pytest.fixture(name="store")
def store_fixture(tmp_path) -> AnnotationStore:
    """A fresh writable store in the test's own directory."""
    return writable_store(tmp_path / "data")
