"""embspace.compare: every unit's change, one unit's diff in the vocabulary, layer alignment, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from compare_fixtures import PLANTED_HEAD, PLANTED_NEURON, PLANTED_TOKENS, make_permuted, make_tuned, make_wider

from embspace import EmbspaceError, PairFilter, VocabFilter, open_model
from embspace.compare import (
    ModelsDiffer,
    align_layers,
    centred_kernel,
    correlations,
    diff_units,
    factored_change,
    most_correlated_rows,
    unit_diff,
)
from embspace.compare.align import PARTS, best_matching, unit_rows
from embspace.compare.diff import circuit_factors


@pytest.fixture(scope="module")
def models(tiny_model, tmp_path_factory):
    """{"base", "tuned", "permuted", "wider", "gpt2"}: opened tiny models (all BERT but gpt2)."""
    root = tmp_path_factory.mktemp("compare")
    base = tiny_model("bert")
    paths = {
        "base": base,
        "tuned": make_tuned(base, root / "tuned"),
        "permuted": make_permuted(base, root / "permuted"),
        "wider": make_wider(base, root / "wider"),
        "gpt2": tiny_model("gpt2"),
    }
    return {name: open_model(str(path)) for name, path in paths.items()}


def test_planted_changes_rank_first_and_show_their_tokens(models):
    units = diff_units(models["base"], models["tuned"])
    top = {(u.kind, u.layer, u.index) for u in units[:2]}
    assert top == {("neuron-V", *PLANTED_NEURON), ("vo", *PLANTED_HEAD)}
    assert units[2].change < 0.01 < 1 < units[1].change  # noise far below the planted changes
    assert [u.change for u in units] == sorted((u.change for u in units), reverse=True)
    n = models["base"].shape
    assert len(units) == n.n_layers * (2 * n.d_ff + 2 * n.n_heads)
    found = unit_diff(models["base"], models["tuned"], "neuron-V", *PLANTED_NEURON, k=5)
    assert set(found.plus.tokens[: len(PLANTED_TOKENS)]) == set(PLANTED_TOKENS)
    assert not set(found.minus.tokens) & set(PLANTED_TOKENS)
    assert np.all(found.minus.scores > 0)  # the negation's own scores, best first


def test_every_change_against_the_dense_difference(models):
    base, tuned = models["base"], models["tuned"]
    by_unit = {(u.kind, u.layer, u.index): u for u in diff_units(base, tuned)}
    for layer in range(base.shape.n_layers):
        wb, wt = base.layer(layer), tuned.layer(layer)
        for kind in ("vo", "qk"):
            (lb, rb), (lt, rt) = circuit_factors(wb, kind), circuit_factors(wt, kind)
            for head in range(base.shape.n_heads):
                dense_b = lb[head].double() @ rb[head].double()  # [d, d]: fine at d = 32
                dense_t = lt[head].double() @ rt[head].double()
                unit = by_unit[(kind, layer, head)]
                assert unit.base_norm == pytest.approx(float(dense_b.norm()), rel=1e-6)
                assert unit.change == pytest.approx(float((dense_t - dense_b).norm() / dense_b.norm()), rel=1e-4)
        for kind, name in (("neuron-K", "ffn_keys"), ("neuron-V", "ffn_values")):
            delta = (getattr(wt, name) - getattr(wb, name)).norm(dim=1) / getattr(wb, name).norm(dim=1)
            got = [by_unit[(kind, layer, i)].change for i in range(base.shape.d_ff)]
            np.testing.assert_allclose(got, delta.numpy(), rtol=1e-5)


def test_factored_change_on_random_factors():
    generator = torch.Generator().manual_seed(0)
    lf, lb = torch.randn(3, 20, 4, generator=generator), torch.randn(3, 20, 4, generator=generator)
    rf, rb = torch.randn(3, 4, 20, generator=generator), torch.randn(3, 4, 20, generator=generator)
    delta, norm = factored_change(lf, rf, lb, rb)
    dense = (lf @ rf - lb @ rb).double()
    np.testing.assert_allclose(delta.numpy(), dense.flatten(1).norm(dim=1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(norm.numpy(), (lb @ rb).double().flatten(1).norm(dim=1).numpy(), rtol=1e-6)


FILTERS = [
    (VocabFilter(), PairFilter()),
    (VocabFilter(only_alnum=True), PairFilter()),
    (VocabFilter(only_ascii=True, exclude_special=False), PairFilter(exclude_same=True)),
    (VocabFilter(), PairFilter(exclude_fuzzy=True)),
    (VocabFilter(allowed_ids=frozenset(range(40, 120))), PairFilter(exclude_same=True)),
]


@pytest.mark.parametrize("kind", ["vo", "qk"])
@pytest.mark.parametrize(("vocab_filter", "pair_filter"), FILTERS)
def test_head_diff_pairs_against_the_dense_matrix(models, kind, vocab_filter, pair_filter):
    """Eᵀ (L_F R_F - L_B R_B) E built in full on the tiny vocabulary, masked, sorted: the same pairs."""
    base, tuned = models["base"], models["tuned"]
    layer, head = PLANTED_HEAD
    lb, rb = (x[head] for x in circuit_factors(base.layer(layer), kind))
    lt, rt = (x[head] for x in circuit_factors(tuned.layer(layer), kind))
    e_rows, e_out = base.embedding_rows.double(), base.output_rows.double()  # [V, d]
    delta = lt.double() @ rt.double() - lb.double() @ rb.double()  # [d, d]
    dense = (e_rows @ delta @ e_out.T).numpy()  # [V, V]
    kept = base.vocab_mask(vocab_filter)
    rows, cols = np.nonzero(np.ones_like(dense, dtype=bool))
    keep = pair_filter.keep_mask(base.vocab, rows, cols, kept)
    found = unit_diff(base, tuned, kind, layer, head, k=15, vocab_filter=vocab_filter, pair_filter=pair_filter)
    for table, sign in ((found.plus, 1), (found.minus, -1)):
        scores = sign * dense[rows[keep], cols[keep]]
        best = np.argsort(-scores, kind="stable")[:15]
        np.testing.assert_allclose(table.scores, scores[best], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(sign * dense[table.row_ids, table.col_ids], table.scores, rtol=1e-4, atol=1e-6)
        assert keep_all(pair_filter, base, kept, table)


def keep_all(pair_filter, model, kept, table) -> bool:
    return bool(pair_filter.keep_mask(model.vocab, table.row_ids, table.col_ids, kept).all())


@pytest.mark.parametrize("part", sorted(PARTS))
def test_align_against_the_dense_correlation(models, part):
    """Mean |corr| of every layer pair equals np.corrcoef of the V-long projections, built in full."""
    a, b = models["base"], models["tuned"]
    rows_of, writes = PARTS[part]
    e_a = (a.output_rows if writes else a.embedding_rows).double()  # [V, d]
    e_b = (b.output_rows if writes else b.embedding_rows).double()
    alignment = align_layers(a, b, part)
    for layer_a in range(a.shape.n_layers):
        for layer_b in range(b.shape.n_layers):
            x, y = rows_of(a.layer(layer_a)).double(), rows_of(b.layer(layer_b)).double()
            dense = np.corrcoef((x @ e_a.T).numpy(), (y @ e_b.T).numpy())[: len(x), len(x) :]
            kernel = correlations(x, y, centred_kernel(e_a, e_b), centred_kernel(e_a, e_a), centred_kernel(e_b, e_b))
            np.testing.assert_allclose(kernel.numpy(), dense, atol=1e-8)
            assert alignment.similarity[layer_a, layer_b] == pytest.approx(np.abs(dense).mean(), rel=1e-9)


@pytest.mark.parametrize("part", sorted(PARTS))
def test_a_permuted_copy_is_matched_back(models, part):
    alignment = align_layers(models["base"], models["permuted"], part)
    n = models["base"].shape.n_layers
    assert alignment.matching == tuple((i, n - 1 - i) for i in range(n))
    assert alignment.to_dict()["part"] == part


def test_different_vocabularies_are_refused_before_any_layer_is_read(models):
    for call in (
        lambda: diff_units(models["base"], models["gpt2"]),
        lambda: unit_diff(models["base"], models["gpt2"], "vo", 0, 0),
        lambda: align_layers(models["base"], models["gpt2"]),
    ):
        with pytest.raises(ModelsDiffer, match="different vocabularies"):
            call()


def test_different_shapes_are_refused_for_diff_but_aligned(models):
    with pytest.raises(ModelsDiffer, match="d_ff 64 vs 128"):
        diff_units(models["base"], models["wider"])
    with pytest.raises(ModelsDiffer, match="d_ff"):
        unit_diff(models["base"], models["wider"], "neuron-K", 0, 0)
    assert align_layers(models["base"], models["wider"]).similarity.shape == (2, 2)


def test_matching_of_models_with_different_depths():
    """Hungarian assignment on a 2 x 3 similarity: each layer of A gets its own layer of B, total largest."""
    similarity = np.array([[0.9, 0.8, 0.1], [0.85, 0.2, 0.3]])
    assert best_matching(similarity) == ((0, 1), (1, 0))  # 0.8 + 0.85 beats 0.9 + 0.3


def dense_correlation(a, b, part, layer_a, layer_b):
    """np.corrcoef of A's layer rows' and B's layer rows' V-long projections: [n_a, n_b]."""
    rows_of, writes = PARTS[part]
    e_a = (a.output_rows if writes else a.embedding_rows).double()
    e_b = (b.output_rows if writes else b.embedding_rows).double()
    x, y = rows_of(a.layer(layer_a)).double(), rows_of(b.layer(layer_b)).double()
    return np.corrcoef((x @ e_a.T).numpy(), (y @ e_b.T).numpy())[: len(x), len(x) :]


@pytest.mark.parametrize(("part", "index"), [("ffn-v", 7), ("ffn-k", 3), ("wv", 2), ("wo", 1), ("wq", 0), ("wk", 3)])
def test_most_correlated_rows_against_the_dense_correlation(models, part, index):
    """B's best rows for one row (neuron) or head of A: every score and the order from np.corrcoef."""
    a, b = models["base"], models["wider"]  # sizes differ: B's FFN is twice as wide
    layer, d_head = 1, a.shape.d_head
    expected = []
    for layer_b in range(b.shape.n_layers):
        dense = dense_correlation(a, b, part, layer, layer_b)
        if part.startswith("ffn"):
            expected += [(layer_b, i, c) for i, c in enumerate(dense[index])]
        else:
            block = np.abs(dense[index * d_head : (index + 1) * d_head])  # [d_head, H_B * d_head]
            expected += [(layer_b, h, block[:, h * d_head : (h + 1) * d_head].mean()) for h in range(b.shape.n_heads)]
    expected.sort(key=lambda row: -abs(row[2]))
    found = most_correlated_rows(a, b, part, layer, index, top=6)
    assert len(found) == 6
    assert [(r.layer, r.index) for r in found] == [row[:2] for row in expected[:6]]
    np.testing.assert_allclose([r.corr for r in found], [row[2] for row in expected[:6]], atol=1e-8)


def test_a_neuron_finds_itself_in_a_permuted_copy(models):
    """Layer 0 of the base is the last layer of the reversed copy: its neuron correlates 1 with itself there."""
    n = models["base"].shape.n_layers
    (best,) = most_correlated_rows(models["base"], models["permuted"], "ffn-v", 0, 5, top=1)
    assert (best.layer, best.index) == (n - 1, 5) and best.corr == pytest.approx(1.0)
    assert best.to_record() == {"layer": n - 1, "index": 5, "corr": 1.0}


def test_most_correlated_rows_refusals(models):
    with pytest.raises(ModelsDiffer, match="different vocabularies"):
        most_correlated_rows(models["base"], models["gpt2"], "ffn-v", 0, 0)
    with pytest.raises(EmbspaceError, match="head 4 is out of range"):
        most_correlated_rows(models["base"], models["tuned"], "wv", 0, 4)
    with pytest.raises(EmbspaceError, match="layer 5 is out of range"):
        most_correlated_rows(models["base"], models["tuned"], "ffn-k", 5, 0)
    assert unit_rows(torch.arange(12.0).reshape(6, 2), "wo", 1, 3).tolist() == [[6, 7], [8, 9], [10, 11]]


@pytest.mark.parametrize("kind", ["vo", "qk"])
def test_an_unchanged_head_promotes_nothing(models, kind):
    """A head equal in both models has an all-zero difference: empty tables, not a search of V² ties."""
    found = unit_diff(models["base"], models["base"], kind, 1, 2, k=5)
    assert found.to_dict() == {"plus": [], "minus": []}
    assert len(unit_diff(models["base"], models["tuned"], kind, 1, 2, k=5).plus.scores) == 5
