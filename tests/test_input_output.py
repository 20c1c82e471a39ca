"""The "input-output" reading of an untied model: rows through the input embedding, columns through
the LM head, against brute force built from the Hugging Face model's own parameters."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import GPTNeoXForCausalLM

from embspace import EmbspaceError, open_model
from embspace.cli.main import main
from embspace.compute.ffn_scan import scan_layer_neurons
from embspace.compute.projections import copying_score, head_top_pairs, neuron_top_tokens
from embspace.search.index import search

LAYER, HEAD = 1, 2


@pytest.fixture(scope="module")
def neox(tiny_model):
    """(untied tiny GPT-NeoX directory, its HF model, embspace opened with input-output)."""
    path = tiny_model("gpt_neox")
    hf = GPTNeoXForCausalLM.from_pretrained(path, dtype=torch.float64)
    assert not torch.equal(hf.get_input_embeddings().weight, hf.get_output_embeddings().weight)  # untied
    return path, hf, open_model(str(path), embedding="input-output")


def hf_head(hf, kind: str) -> torch.Tensor:
    """The full V x V matrix E_inᵀ W1 W2 E_out of one head, float64, from the HF parameters."""
    config = hf.config
    d_head = config.hidden_size // config.num_attention_heads
    attention = hf.gpt_neox.layers[LAYER].attention
    fused = attention.query_key_value.weight.view(config.num_attention_heads, 3, d_head, config.hidden_size)
    w_q, w_k, w_v = (fused[HEAD, i].T for i in range(3))  # [d, d_head] each
    w_o = attention.dense.weight[:, HEAD * d_head : (HEAD + 1) * d_head].T  # [d_head, d]
    e_in, e_out = hf.get_input_embeddings().weight, hf.get_output_embeddings().weight  # [V, d] each
    middle = w_v @ w_o if kind == "vo" else w_q @ w_k.T
    return (e_in @ middle @ e_out.T).detach()


def brute_top(matrix: np.ndarray, keep: np.ndarray, k: int, negative: bool) -> np.ndarray:
    """The k best entries' values among kept rows and columns, best first."""
    values = matrix[np.ix_(keep, keep)].ravel()
    return np.sort(values)[:k] if negative else np.sort(values)[::-1][:k]


@pytest.mark.parametrize("kind", ["vo", "qk"])
@pytest.mark.parametrize("negative", [False, True])
def test_pairs_equal_the_full_input_output_matrix(neox, kind, negative):
    _, hf, model = neox
    matrix = hf_head(hf, kind).numpy()
    keep = model.vocab_mask(None)
    table = head_top_pairs(model, kind, LAYER, HEAD, k=20, negative=negative)
    np.testing.assert_allclose(table.scores, brute_top(matrix, keep, 20, negative), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(table.scores, matrix[table.row_ids, table.col_ids], rtol=1e-4, atol=1e-6)


def test_the_reading_differs_from_input_only(neox):
    path, _, model = neox
    plain = open_model(str(path), embedding="input")
    assert model.info.embedding == "input-output" and plain.info.embedding == "input"
    ours, theirs = head_top_pairs(model, "vo", LAYER, HEAD, 10), head_top_pairs(plain, "vo", LAYER, HEAD, 10)
    assert not np.allclose(ours.scores, theirs.scores)


def test_copying_score_equals_the_full_matrix_eigenvalues(neox):
    _, hf, model = neox
    eigenvalues = torch.linalg.eigvals(hf_head(hf, "vo"))
    expected = float(eigenvalues.sum().real / eigenvalues.abs().sum())
    assert copying_score(model, LAYER, HEAD) == pytest.approx(expected, abs=1e-6)


def test_neuron_keys_read_the_input_and_values_the_output_embedding(neox):
    _, hf, model = neox
    mlp = hf.gpt_neox.layers[LAYER].mlp
    key, value = mlp.dense_h_to_4h.weight[7], mlp.dense_4h_to_h.weight[:, 7]  # [d] each
    keep = model.vocab_mask(None)
    tables = neuron_top_tokens(model, LAYER, 7, 6)
    for name, scores in (
        ("K", (hf.get_input_embeddings().weight @ key).detach().numpy()),
        ("V", (hf.get_output_embeddings().weight @ value).detach().numpy()),
    ):
        expected = np.flatnonzero(keep)[np.argsort(-scores[keep], kind="stable")[:6]]
        assert tables[name].token_ids.tolist() == expected.tolist()
        np.testing.assert_allclose(tables[name].scores, scores[expected], rtol=1e-4, atol=1e-6)
    scan = scan_layer_neurons(model, LAYER, k=6)  # the atlas' scan reads the same sides
    for name in ("K", "V", "-K", "-V"):
        assert scan.token_ids[name][7].tolist() == tables[name].token_ids.tolist()


def test_tied_and_headless_models_refuse_input_output(tiny_model):
    with pytest.raises(EmbspaceError, match="ties its LM head to the input embedding.*use --embedding input"):
        open_model(str(tiny_model("gpt2")), embedding="input-output")
    with pytest.raises(EmbspaceError, match="no LM head"):
        open_model("sentence-transformers/all-MiniLM-L6-v2", embedding="input-output")


def test_search_refuses_input_output_with_the_fix(neox):
    with pytest.raises(EmbspaceError, match="--embedding input or output"):
        search(neox[2], ["a"])


def test_cli_reads_input_output(neox, capsys):
    path = str(neox[0])
    code = main(["pairs", path, "--embedding", "input-output", "--layer", str(LAYER), "--head", str(HEAD)]
                + ["--k", "5", "--json"])  # fmt: skip
    pairs = json.loads(capsys.readouterr().out)
    assert code == 0 and len(pairs) == 5
    expected = head_top_pairs(neox[2], "vo", LAYER, HEAD, 5)
    np.testing.assert_allclose([p["score"] for p in pairs], expected.scores, rtol=1e-6)


def test_an_input_output_atlas_equals_live_computation(neox, tmp_path):
    from embspace.atlas import Atlas, build_atlas

    model = neox[2]
    build_atlas(model, tmp_path / "atlas", k=5, layers=[LAYER], progress=False)
    atlas = Atlas.open(tmp_path / "atlas")
    assert atlas.manifest["embedding"] == "input-output" and atlas.matches(model)
    stored = atlas.head_pairs("vo", LAYER, HEAD)
    live = head_top_pairs(model, "vo", LAYER, HEAD, 5)
    np.testing.assert_allclose(stored["score"], live.scores, rtol=1e-5)
    neuron = atlas.neuron_tokens(LAYER, 7)["V"]
    assert neuron["token_id"].tolist() == neuron_top_tokens(model, LAYER, 7, 5)["V"].token_ids.tolist()
    heads = atlas.head_scores().set_index(["layer", "head"])
    assert heads.loc[(LAYER, HEAD), "copying_score"] == pytest.approx(copying_score(model, LAYER, HEAD), abs=1e-9)
