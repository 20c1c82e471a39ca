"""embspace's public API (embspace/__init__.py): every exported name imports, the contract is kept, a notebook works."""

from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import pytest

import embspace

# Exported since the first release: scripts and notebooks use them, so none may ever go.
CONTRACT = set(
    "ALPHABETS DEFAULT_MODEL EmbeddingSpaceModel EmbspaceError ModelInfo ModelNotFound ModelTooLarge OutOfRange "
    "PairFilter PairTable TokenScores VocabFilter copying_scores head_top_pairs neuron_top_tokens open_model".split()
)


@pytest.mark.parametrize("name", embspace.__all__)
def test_every_exported_name_imports(name):
    namespace: dict = {}
    exec(f"from embspace import {name}", namespace)  # the form a user writes
    assert namespace[name] is getattr(embspace, name)


def test_the_contract_names_are_all_exported_once():
    assert CONTRACT <= set(embspace.__all__)
    assert len(embspace.__all__) == len(set(embspace.__all__))


def test_star_import_gives_exactly_all():
    namespace: dict = {}
    exec("from embspace import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(embspace.__all__)


@pytest.mark.parametrize("face", ["model", "vocab", "compute", "atlas", "search", "annotations"])
def test_each_package_face_lists_only_what_it_has(face):
    package = importlib.import_module(f"embspace.{face}")
    assert all(hasattr(package, name) for name in package.__all__)


def test_the_top_package_loads_no_ui_and_no_tsne():
    """Computation only (no streamlit, no plotly), and no scikit-learn: every CLI call imports embspace."""
    code = "import sys, embspace; print(sorted({m.split('.')[0] for m in sys.modules} & {'streamlit', 'plotly', 'sklearn'}))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_a_notebook_reads_a_neuron_and_a_head_through_the_top_level_only():
    """The README's example: open the bundled default model, one neuron's table, one head's pairs."""
    model = embspace.open_model(embspace.DEFAULT_MODEL)
    assert isinstance(model, embspace.EmbeddingSpaceModel) and model.shape.n_layers == 6

    keep = embspace.VocabFilter(only_alnum=True)
    tables = embspace.neuron_top_tokens(model, layer=3, neuron=17, k=10, vocab_filter=keep)
    assert tuple(tables) == embspace.neuron_vector_names(model.shape.gated_mlp) == embspace.NEURON_VECTOR_NAMES
    key_tokens = tables["K"]
    assert isinstance(key_tokens, embspace.TokenScores) and len(key_tokens.tokens) == 10
    assert np.all(np.diff(key_tokens.scores) <= 0)  # best first

    pairs = embspace.head_top_pairs(model, "vo", layer=5, head=7, k=20)
    assert isinstance(pairs, embspace.PairTable) and (pairs.kind, pairs.layer, pairs.head) == ("vo", 5, 7)
    assert len(pairs.to_records()) == 20 and np.all(np.diff(pairs.scores) <= 0)
    assert embspace.HEAD_KINDS["vo"].title == embspace.VIEW_KINDS["vo"].title == "W_VO"
    assert embspace.VIEW_KINDS["vo"].address(5, 7) == "/vo?layer=5&head=7"

    with pytest.raises(embspace.OutOfRange):
        embspace.head_top_pairs(model, "vo", layer=5, head=model.shape.n_heads, k=5)
