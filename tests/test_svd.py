"""Singular directions (embspace.compute.svd) against numpy's dense SVD and brute-force projections, and `embspace svd`."""

import json

import numpy as np
import pytest
import torch
from model_fixtures import opened_model
from tiny_models import ARCHS

from embspace import EmbspaceError, VocabFilter, open_model
from embspace.cli.main import main
from embspace.compute import NeuronLoadings, TokenEnds, dense_svd, factored_svd, singular_directions, svd_view
from embspace.compute.svd import DEGENERATE_GAP

gpt2_model = opened_model("gpt2")
neox_split = opened_model("gpt_neox", embedding="input-output")  # untied: rows through E, columns through the LM head


def dense_product(model, kind, layer, head):
    """The d x d (or d x d_ff) matrix itself, in float64, built the obvious way."""
    w = model.layer(layer)
    if kind == "ov":
        return w.W_V[head].double() @ w.W_O[head].double()
    if kind == "qk":
        return w.W_Q[head].double() @ w.W_K[head].double().T
    return w.ffn_keys.double().T if kind == "ffn-in" else w.ffn_values.double()


def assert_same_directions(found, matrix):
    """Singular values equal numpy's; each non-degenerate pair equals numpy's up to one common sign; the
    whole left and right subspaces equal numpy's; and U S Vᵀ rebuilds the matrix."""
    u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    r = len(found.values)
    np.testing.assert_allclose(found.values, s[:r], rtol=1e-9, atol=1e-12)
    assert r == len(s) or s[r] <= s[0] * 1e-5  # what was dropped is zero at float32 precision
    for i in np.flatnonzero(~found.degenerate()):
        sign = np.sign(found.left[:, i] @ u[:, i])
        np.testing.assert_allclose(found.left[:, i], sign * u[:, i], atol=1e-7)
        np.testing.assert_allclose(found.right[:, i], sign * vt[i], atol=1e-7)
    np.testing.assert_allclose(found.left @ found.left.T, u[:, :r] @ u[:, :r].T, atol=1e-8)
    np.testing.assert_allclose(found.right @ found.right.T, vt[:r].T @ vt[:r], atol=1e-8)
    np.testing.assert_allclose((found.left * found.values) @ found.right.T, matrix, atol=1e-9)


@pytest.mark.parametrize("arch", ARCHS)
def test_head_and_ffn_svd_equal_numpys_dense_svd_on_every_architecture(tiny_model, arch):
    """GQA models (llama, mistral, qwen2) included: the qk key side uses the head's own K group."""
    model = open_model(str(tiny_model(arch)))
    for kind, head in (("ov", 1), ("qk", 1), ("qk", 2), ("ffn-in", None), ("ffn-out", None)):
        matrix = dense_product(model, kind, 1, head).numpy()
        assert_same_directions(singular_directions(model, kind, 1, head), matrix)


def test_grouped_query_heads_share_their_key_side(tiny_model):
    """Llama's 4 heads read 2 K groups: heads 0 and 1 share a key subspace, heads 1 and 2 do not."""
    model = open_model(str(tiny_model("llama")))
    assert model.shape.n_kv_heads == 2
    right = [singular_directions(model, "qk", 0, h).right for h in range(3)]
    projector = [r @ r.T for r in right]
    np.testing.assert_allclose(projector[0], projector[1], atol=1e-8)
    assert not np.allclose(projector[1], projector[2], atol=1e-3)


@pytest.mark.parametrize("rank", [5, 3])
def test_factored_svd_equals_the_dense_one_of_the_product(rank):
    """Random [m, r] x [n, r] factors, full rank and rank-deficient (the zero singular values are dropped)."""
    gen = np.random.default_rng(rank)
    a = gen.standard_normal((40, 5)) @ np.diag([1, 1, 1, 1, 1] if rank == 5 else [1, 1, 1, 0, 0])
    b = gen.standard_normal((30, 5))
    found = factored_svd(a, b)
    assert len(found.values) == rank
    assert_same_directions(found, a @ b.T)
    dense = dense_svd(a @ b.T)
    np.testing.assert_allclose(found.values, dense.values, rtol=1e-9)
    np.testing.assert_allclose(found.left, dense.left, atol=1e-8)  # the sign rule makes them equal, not up to sign
    np.testing.assert_allclose(found.right, dense.right, atol=1e-8)


def test_each_pair_is_turned_so_its_left_vectors_largest_coordinate_is_positive():
    gen = np.random.default_rng(0)
    a, b = gen.standard_normal((20, 6)), gen.standard_normal((25, 6))
    for found in (factored_svd(a, b), factored_svd(-a, -b), dense_svd(a @ b.T)):
        biggest = found.left[np.argmax(np.abs(found.left), axis=0), np.arange(found.left.shape[1])]
        assert (biggest > 0).all()
    # The sign is a convention of the pair, not of the data: flipping both factors changes nothing.
    np.testing.assert_allclose(factored_svd(-a, -b).left, factored_svd(a, b).left, atol=1e-10)
    # u_i and v_i turn together: M v_i = s_i u_i still holds.
    found = factored_svd(a, b)
    np.testing.assert_allclose((a @ b.T) @ found.right, found.left * found.values, atol=1e-9)


def test_nearly_equal_singular_values_are_marked_degenerate_with_their_gap():
    gen = np.random.default_rng(1)
    q_a, _ = np.linalg.qr(gen.standard_normal((30, 4)))
    q_b, _ = np.linalg.qr(gen.standard_normal((30, 4)))
    values = np.array([3.0, 2.0 * (1 + 1e-5), 2.0, 1.0])
    found = factored_svd(q_a * values, q_b)
    np.testing.assert_allclose(found.values, values, rtol=1e-9)
    assert found.degenerate().tolist() == [False, True, True, False]
    np.testing.assert_allclose(found.gaps()[1:3], 2e-5 / values[1:3], rtol=1e-3)
    np.testing.assert_allclose(
        found.gaps()[[0, 3]], [(3 - values[1]) / 3, 1.0], rtol=1e-6
    )  # the last one's neighbour is 0
    assert DEGENERATE_GAP > 1e-5


def brute_top(scores, keep, k):
    ids = [i for i in np.argsort(-scores, kind="stable") if keep[i]][:k]
    return np.array(ids), scores[ids]


def assert_ends_match(ends: TokenEnds, vector, rows, keep, k):
    """plus = top-k of E·x, minus = top-k of E·(-x), each among the kept tokens, scores as computed here."""
    scores = rows.double().numpy() @ vector
    for got, expected_scores in ((ends.plus, scores), (ends.minus, -scores)):
        ids, values = brute_top(expected_scores, keep, k)
        np.testing.assert_allclose(got.scores, values, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(expected_scores[got.token_ids], values, rtol=1e-4, atol=1e-6)  # ties may swap
        assert keep[got.token_ids].all()


@pytest.mark.parametrize("kind", ["ov", "qk"])
def test_head_token_lists_equal_a_brute_force_projection_with_filters(neox_split, kind):
    """Left ends through the input embedding, right ends through the LM head (the head views' rule)."""
    keep_filter = VocabFilter(only_alnum=True)
    keep = neox_split.vocab_mask(keep_filter)
    view = svd_view(neox_split, kind, 1, 2, directions=3, k=6, vocab_filter=keep_filter)
    found = singular_directions(neox_split, kind, 1, 2)
    assert len(view.directions) == 3 and keep.sum() > 6
    assert not torch.equal(neox_split.embedding_rows, neox_split.output_rows)
    for i, direction in enumerate(view.directions):
        assert direction.sigma == pytest.approx(found.values[i])
        assert_ends_match(direction.left, found.left[:, i], neox_split.embedding_rows, keep, 6)
        assert_ends_match(direction.right, found.right[:, i], neox_split.output_rows, keep, 6)


def test_ffn_token_side_and_neuron_side_equal_brute_force(neox_split):
    """ffn-in: tokens left (input embedding), neurons right; ffn-out: neurons left, tokens right (LM head)."""
    keep = neox_split.vocab_mask(None)
    for kind, token_side, rows in (("ffn-in", "left", "embedding_rows"), ("ffn-out", "right", "output_rows")):
        view = svd_view(neox_split, kind, 0, directions=2, k=5)
        found = singular_directions(neox_split, kind, 0)
        for i, direction in enumerate(view.directions):
            ends, loadings = (
                (direction.left, direction.right) if token_side == "left" else (direction.right, direction.left)
            )
            token_vectors, neuron_vectors = (
                (found.left, found.right) if token_side == "left" else (found.right, found.left)
            )
            assert_ends_match(ends, token_vectors[:, i], getattr(neox_split, rows), keep, 5)
            assert isinstance(loadings, NeuronLoadings)
            expected = np.argsort(-np.abs(neuron_vectors[:, i]), kind="stable")[:5]
            assert loadings.neurons.tolist() == expected.tolist()
            np.testing.assert_allclose(loadings.weights, neuron_vectors[expected, i], rtol=1e-6)


def test_directions_are_capped_at_the_rank_and_bad_requests_say_what_to_give(gpt2_model):
    view = svd_view(gpt2_model, "ov", 0, 0, directions=100, k=3)
    assert len(view.directions) == len(view.singular_values) == gpt2_model.shape.d_head
    for kwargs, message in (
        (dict(kind="ov", layer=0), "give a head"),
        (dict(kind="ffn-in", layer=0, head=1), "give no head"),
        (dict(kind="vo", layer=0, head=1), "kind must be one of"),
        (dict(kind="ov", layer=0, head=1, directions=0), "at least 1"),
    ):
        with pytest.raises(EmbspaceError, match=message):
            svd_view(gpt2_model, **kwargs)


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_json_contract_for_a_head(capsys, tiny_model, gpt2_model):
    path = str(tiny_model("gpt2"))
    argv = ("svd", path, "--kind", "qk", "--layer", "1", "--head", "3", "--directions", "2", "--k", "4", "--only-ascii")
    code, out, _ = run_cli(capsys, *argv, "--json")
    assert code == 0
    record = json.loads(out)
    expected = svd_view(gpt2_model, "qk", 1, 3, directions=2, k=4, vocab_filter=VocabFilter(only_ascii=True))
    assert record["singular_values"] == pytest.approx(expected.singular_values.tolist())
    assert record["singular_values"] == sorted(record["singular_values"], reverse=True)
    assert [d["index"] for d in record["directions"]] == [0, 1]
    for direction, want in zip(record["directions"], expected.directions, strict=True):
        assert {"index", "sigma", "left", "right", "degenerate", "gap"} <= set(direction)
        assert direction["sigma"] == pytest.approx(want.sigma)
        for side in ("left", "right"):
            assert set(direction[side]) == {"plus", "minus"}
            for end in ("plus", "minus"):
                assert all(set(t) == {"token_id", "token", "score"} for t in direction[side][end])
                assert [t["token_id"] for t in direction[side][end]] == getattr(
                    getattr(want, side), end
                ).token_ids.tolist()
    code, table, _ = run_cli(capsys, *argv)
    assert code == 0 and "direction 1: sigma" in table and "left +" in table and "right -" in table


@pytest.mark.parametrize(("kind", "tokens", "neurons"), [("ffn-in", "left", "right"), ("ffn-out", "right", "left")])
def test_cli_json_ffn_sides(capsys, tiny_model, kind, tokens, neurons):
    code, out, _ = run_cli(capsys, "svd", str(tiny_model("gpt2")), "--kind", kind, "--layer", "0", "--k", "3", "--json")
    assert code == 0
    record = json.loads(out)
    assert len(record["singular_values"]) == 32  # d_model 32 < d_ff 96: full rank
    assert len(record["directions"]) == 8  # the default
    direction = record["directions"][0]
    assert set(direction[tokens]) == {"plus", "minus"} and len(direction[tokens]["plus"]) == 3
    assert [set(n) for n in direction[neurons]] == [{"neuron", "weight"}] * 3
    weights = [abs(n["weight"]) for n in direction[neurons]]
    assert weights == sorted(weights, reverse=True)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--kind", "ov"), "give a head"),
        (("--kind", "ffn-in", "--head", "0"), "give no head"),
        (("--kind", "ov", "--head", "99"), "head 99 is out of range"),
    ],
)
def test_cli_bad_requests_end_in_one_line_and_exit_2(capsys, tiny_model, extra, message):
    code, out, err = run_cli(capsys, "svd", str(tiny_model("gpt2")), "--layer", "0", *extra)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
