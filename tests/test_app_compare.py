"""The /compare page: a tuned copy of the bundled MiniLM, its planted head first, its unit diff shown."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from app_harness import (  # noqa: F401
    app_fixture,
    assert_clean,
    download_data,
    downloads_fixture,
    figure,
    fresh_server_fixture,
)
from safetensors.torch import load_file, save_file

PLANTED = (2, 3)  # (layer, head) of MiniLM whose W_O gets a rank-1 change


@pytest.fixture(scope="module")
def tuned_minilm(minilm_dir, tmp_path_factory):
    """MiniLM with one head's W_O row 0 moved (W_V W_O changes by rank 1) and every other tensor kept."""
    directory = tmp_path_factory.mktemp("tuned_minilm")
    shutil.copytree(minilm_dir, directory, dirs_exist_ok=True)
    (weights_file,) = directory.glob("*.safetensors")
    tensors = load_file(weights_file)
    layer, head = PLANTED
    (name,) = [n for n in tensors if n.endswith(f"layer.{layer}.attention.output.dense.weight")]
    w_o = tensors[name].clone()  # [d_out, d_in]: head h's W_O is columns h*32 .. h*32+31, transposed
    w_o[:, head * 32] += (
        2 * w_o[:, head * 32].norm() * torch.randn(w_o.shape[0], generator=torch.Generator().manual_seed(0))
    )
    tensors[name] = w_o
    save_file(tensors, weights_file, metadata={"format": "pt"})
    return directory


def test_compare_page_asks_for_a_tuned_model(app):
    at = app("pages/compare.py")
    assert_clean(at)
    assert at.title[0].value == "Compare two models"
    assert "Give a tuned model" in at.info[0].value


def test_compare_page_ranks_the_planted_head_and_shows_its_diff(app, downloads, tuned_minilm):
    at = app("pages/compare.py", k="5")
    at.text_input(key="tuned").input(str(tuned_minilm)).run()
    assert_clean(at)
    assert at.query_params["tuned"] == str(tuned_minilm)  # a copied link reopens the comparison
    top = at.dataframe[0].value
    assert (top.iloc[0]["kind"], top.iloc[0]["layer"], top.iloc[0]["index"]) == ("vo", *PLANTED)
    assert (top["change"].iloc[1:] == 0).all()  # nothing else was touched
    grid = figure(at, "compare_heatmap")["data"][0]["z"]
    assert grid[PLANTED[0]][PLANTED[1]] == max(max(row) for row in grid) > 0
    plus, minus = at.dataframe[1].value, at.dataframe[2].value
    assert len(plus) == len(minus) == 5
    assert list(plus.columns) == ["row_id", "col_id", "row_token", "col_token", "score"]
    assert (plus["score"] > 0).all() and (minus["score"] > 0).all()
    assert max(max(row) for row in figure(at, "compare_neurons")["data"][0]["z"]) == 0  # no neuron was touched
    document = json.loads(download_data(at, downloads, f"diff-vo-layer{PLANTED[0]}-{PLANTED[1]}-plus-json"))
    assert document["settings"]["tuned"] == str(tuned_minilm) and document["settings"]["unit"] == "vo"
    assert len(document["rows"]) == 5


def test_compare_page_refuses_a_model_of_another_vocabulary_in_one_line(app, tiny_model):
    at = app("pages/compare.py")
    at.text_input(key="tuned").input(str(tiny_model("bert"))).run()
    assert not at.exception
    assert "different vocabularies" in at.error[0].value
