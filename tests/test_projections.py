"""Projections against brute force: full V x V matrices, full eigen-decompositions, plain loops."""

import numpy as np
import pytest
import torch
from model_fixtures import opened_model

from embspace import OutOfRange, PairFilter, VocabFilter, open_model
from embspace.compute import copying_score, copying_scores, head_factors, head_top_pairs, neuron_top_tokens

gpt2_model = opened_model("gpt2")
llama_model = opened_model("llama")


def full_matrix(model, kind, layer, head):
    """The V x V matrix built the slow, obvious way from the canonical weights."""
    weights = model.layer(layer)
    E = model.E.to(torch.float64)  # [d_model, V]
    if kind == "vo":
        middle = weights.W_V[head].double() @ weights.W_O[head].double()
    else:
        middle = weights.W_Q[head].double() @ weights.W_K[head].double().T
    return (E.T @ middle @ E).numpy()


def reference_pairs(matrix, keep, k, negative, same=None):
    entries = [
        (matrix[r, c], r, c)
        for r in np.flatnonzero(keep)
        for c in np.flatnonzero(keep)
        if same is None or same[r] != same[c]
    ]
    entries.sort(key=lambda e: e[0], reverse=not negative)
    return entries[:k]


@pytest.mark.parametrize("kind", ["vo", "qk"])
@pytest.mark.parametrize("negative", [False, True])
def test_head_pairs_equal_sorting_the_full_matrix(gpt2_model, kind, negative):
    matrix = full_matrix(gpt2_model, kind, 1, 2)
    keep = gpt2_model.vocab_mask(VocabFilter(only_ascii=True))
    table = head_top_pairs(gpt2_model, kind, 1, 2, k=25, vocab_filter=VocabFilter(only_ascii=True), negative=negative)
    expected = reference_pairs(matrix, keep, 25, negative)
    assert len(table.scores) == 25
    np.testing.assert_allclose(table.scores, [e[0] for e in expected], rtol=1e-4, atol=1e-5)
    # The reported scores are the matrix entries at the reported positions.
    np.testing.assert_allclose(table.scores, matrix[table.row_ids, table.col_ids], rtol=1e-4, atol=1e-5)
    assert all(keep[table.row_ids]) and all(keep[table.col_ids])


def test_exclude_same_drops_identical_normalised_tokens(gpt2_model):
    vocab = gpt2_model.vocab
    pair_filter = PairFilter(exclude_same=True)
    table = head_top_pairs(gpt2_model, "vo", 0, 0, k=40, pair_filter=pair_filter)
    for r, c in zip(table.row_ids, table.col_ids, strict=True):
        assert vocab.normalized[r] != vocab.normalized[c]
    matrix = full_matrix(gpt2_model, "vo", 0, 0)
    keep = gpt2_model.vocab_mask(None)
    groups = {}
    same = np.array([groups.setdefault(n, len(groups)) for n in vocab.normalized])
    expected = reference_pairs(matrix, keep, 40, False, same)
    np.testing.assert_allclose(table.scores, [e[0] for e in expected], rtol=1e-4, atol=1e-5)


def test_gqa_heads_sharing_a_kv_group_share_their_keys(llama_model):
    shape = llama_model.shape
    assert shape.n_kv_heads < shape.n_heads
    weights = llama_model.layer(0)
    group = shape.n_heads // shape.n_kv_heads
    torch.testing.assert_close(weights.W_K[0], weights.W_K[group - 1])
    assert not torch.allclose(weights.W_K[0], weights.W_K[group])
    left, right = head_factors(llama_model, "qk", 0, 1)
    assert left.shape == (shape.vocab_size, shape.d_head) and right.shape == (shape.d_head, shape.vocab_size)


@pytest.mark.parametrize("negative", [False, True])
def test_neuron_view_matches_projection_of_each_vector(gpt2_model, negative):
    weights = gpt2_model.layer(1)
    vocab_filter = VocabFilter(only_alnum=True, alphabet="polish")
    keep = gpt2_model.vocab_mask(vocab_filter)
    tables = neuron_top_tokens(gpt2_model, 1, 5, k=10, vocab_filter=vocab_filter, negative=negative)
    assert list(tables) == ["K", "V", "-K", "-V"]
    for name, vector in [("K", weights.ffn_keys[5]), ("V", weights.ffn_values[5]), ("-K", -weights.ffn_keys[5])]:
        scores = (vector.double() @ gpt2_model.E.double()).numpy()
        order = sorted(np.flatnonzero(keep), key=lambda t: scores[t], reverse=not negative)[:10]
        np.testing.assert_allclose(tables[name].scores, scores[order], rtol=1e-4, atol=1e-5)
        assert tables[name].tokens == tuple(gpt2_model.vocab.display(int(t)) for t in tables[name].token_ids)


def test_gated_mlp_exposes_up_projection(llama_model):
    tables = neuron_top_tokens(llama_model, 0, 3, k=5)
    assert set(tables) == {"K", "V", "-K", "-V", "U", "-U"}


def test_copying_score_equals_full_vocabulary_eigenvalues(gpt2_model):
    matrix = full_matrix(gpt2_model, "vo", 1, 3)
    eigenvalues = np.linalg.eigvals(matrix)
    expected = eigenvalues.sum().real / np.abs(eigenvalues).sum()
    assert copying_score(gpt2_model, 1, 3) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_copying_scores_cover_every_head_and_report_progress(gpt2_model):
    seen = []
    scores = copying_scores(gpt2_model, progress=lambda done, total: seen.append((done, total)))
    shape = gpt2_model.shape
    assert scores.shape == (shape.n_layers, shape.n_heads)
    assert np.all(np.abs(scores) <= 1 + 1e-9)
    assert seen[-1] == (shape.n_layers, shape.n_layers)
    assert scores[1, 3] == pytest.approx(copying_score(gpt2_model, 1, 3))


def test_out_of_range_indices_name_the_valid_range(gpt2_model):
    with pytest.raises(OutOfRange, match="layer 9 is out of range"):
        head_top_pairs(gpt2_model, "vo", 9, 0)
    with pytest.raises(OutOfRange, match="head"):
        head_top_pairs(gpt2_model, "vo", 0, 99)
    with pytest.raises(OutOfRange, match="neuron"):
        neuron_top_tokens(gpt2_model, 0, 10_000)


def test_minilm_copying_heads_are_found(minilm_dir):
    """The real trained MiniLM has strongly positive (copying) heads: the score is not noise."""
    model = open_model(str(minilm_dir))
    scores = copying_scores(model)
    assert scores.shape == (6, 12)
    assert scores.max() > 0.5


@pytest.mark.parametrize("name", ["vo", "qk"])
def test_head_kind_factors_multiply_to_the_full_matrix(gpt2_model, name):
    from embspace.compute.heads import HEAD_KINDS

    spec = HEAD_KINDS[name]
    assert spec.name == name and spec.title == f"W_{name.upper()}"
    left, right = spec.factors(gpt2_model, gpt2_model.layer(1), 2)
    assert left.shape == (gpt2_model.shape.vocab_size, right.shape[0])
    np.testing.assert_allclose(
        (left.double() @ right.double()).numpy(), full_matrix(gpt2_model, name, 1, 2), rtol=1e-4, atol=1e-5
    )


def test_head_top_pairs_takes_a_name_or_a_head_kind(gpt2_model):
    from embspace.compute.heads import HEAD_KINDS

    by_name = head_top_pairs(gpt2_model, "qk", 0, 1, k=7)
    by_object = head_top_pairs(gpt2_model, HEAD_KINDS["qk"], 0, 1, k=7)
    assert by_object.kind == "qk"
    assert by_name.to_records() == by_object.to_records()


def test_unknown_head_kind_names_the_valid_ones(gpt2_model):
    from embspace import EmbspaceError

    with pytest.raises(EmbspaceError, match="vo, qk"):
        head_top_pairs(gpt2_model, "ov", 0, 0, k=3)


def test_head_kind_header_names_rows_and_columns():
    from embspace.compute.heads import HEAD_KINDS

    line = HEAD_KINDS["vo"].header(3, 1)
    assert line.startswith("W_VO layer 3, head 1:")
    assert "rows = attended-to token" in line and "columns = promoted output token" in line


def test_neuron_vectors_come_in_display_order(gpt2_model, llama_model):
    from embspace.compute.projections import neuron_vector_names, neuron_vectors

    assert list(neuron_vectors(gpt2_model, 0, 0)) == ["K", "V", "-K", "-V"] == list(neuron_vector_names(False))
    assert list(neuron_vectors(llama_model, 0, 0)) == ["K", "V", "-K", "-V", "U", "-U"]
    assert list(neuron_top_tokens(llama_model, 0, 0, k=2)) == list(neuron_vector_names(True))


@pytest.mark.parametrize("kind", ["vo", "qk"])
@pytest.mark.parametrize("negative", [False, True])
def test_one_tokens_best_partners_equal_its_row_and_column_of_the_full_matrix(gpt2_model, kind, negative):
    """row_token / col_token: the token's row (column) of the full matrix, sorted, partners filtered."""
    matrix = full_matrix(gpt2_model, kind, 0, 1)
    keep = gpt2_model.vocab_mask(VocabFilter(only_ascii=True))
    token = int(np.flatnonzero(~keep)[-1])  # a token the filter drops: asked for by name, it is kept
    sign = 1.0 if negative else -1.0
    for side, line in (("row_token", matrix[token]), ("col_token", matrix[:, token])):
        table = head_top_pairs(
            gpt2_model, kind, 0, 1, k=7, vocab_filter=VocabFilter(only_ascii=True), negative=negative, **{side: token}
        )
        partners = table.col_ids if side == "row_token" else table.row_ids
        fixed = table.row_ids if side == "row_token" else table.col_ids
        expected = np.flatnonzero(keep)[np.argsort(sign * line[keep], kind="stable")[:7]]
        assert set(fixed) == {token}
        np.testing.assert_allclose(table.scores, line[expected], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(table.scores, line[partners], rtol=1e-4, atol=1e-5)
