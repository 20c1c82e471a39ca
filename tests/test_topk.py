"""top_pairs (pruned tile scan) against brute_force_top_pairs (every entry scored and sorted)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from embspace.compute import topk
from embspace.compute.topk import PairSearchError, TopPairs, brute_force_top_pairs, top_pairs

FLAGS = ("row_mask", "col_mask", "same_groups", "exclude", "negative")


def every_fifth_pair(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """A vectorised stand-in for fuzzy matching: drops 2 pairs in 5, scattered over the matrix."""
    return (rows * 31 + cols * 17) % 5 < 2


def random_factors(rng: np.random.Generator, n_rows: int, n_cols: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    left = torch.from_numpy(rng.standard_normal((n_rows, rank)).astype(np.float32))
    right = torch.from_numpy(rng.standard_normal((rank, n_cols)).astype(np.float32))
    if rng.random() < 0.5:  # uneven norms, as in real embeddings: some tiles can be pruned
        left *= torch.from_numpy(rng.lognormal(0, 1, (n_rows, 1)).astype(np.float32))
    return left, right


def options(rng: np.random.Generator, n: int, flags: dict[str, bool]) -> dict:
    kwargs: dict = {"negative": flags["negative"]}
    if flags["row_mask"]:
        kwargs["row_mask"] = rng.random(n) < rng.uniform(0.2, 0.9)
    if flags["col_mask"]:
        kwargs["col_mask"] = torch.from_numpy(rng.random(n) < rng.uniform(0.2, 0.9))  # torch masks work too
    if flags["same_groups"]:
        kwargs["same_groups"] = rng.integers(0, max(1, n // 3), n)
    if flags["exclude"]:
        kwargs["exclude"] = every_fifth_pair
    return kwargs


def pairs(result: TopPairs, keep: np.ndarray | None = None) -> list[tuple[int, int]]:
    keep = np.ones(len(result), bool) if keep is None else keep
    return sorted(zip(result.row_ids[keep].tolist(), result.col_ids[keep].tolist(), strict=True))


def assert_same_top(got: TopPairs, left, right, k: int, **kwargs) -> None:
    """Scores equal exactly; pairs above the k-th score equal; pairs at it are genuine ties."""
    ref = brute_force_top_pairs(left, right, k, **kwargs)
    assert got.row_ids.dtype == np.int64 and got.col_ids.dtype == np.int64 and got.scores.dtype == np.float32
    np.testing.assert_array_equal(got.scores, ref.scores)
    if len(ref) == 0:
        return
    kth = ref.scores[-1]
    above = ref.scores != kth  # best first, so everything not equal to the k-th score is strictly better
    assert pairs(got, above) == pairs(ref, above)
    at_kth = pairs(got, ~above)
    if at_kth != pairs(ref, ~above):  # another choice among tied pairs: each must be a genuine tie
        everything = brute_force_top_pairs(left, right, left.shape[0] * right.shape[1], **kwargs)
        tied = set(pairs(everything, everything.scores == kth))
        assert len(set(at_kth)) == len(at_kth) and set(at_kth) <= tied


@pytest.mark.parametrize("screen", [True, False], ids=["bf16-screen", "fp32"])
@pytest.mark.parametrize("combo", list(itertools.product([False, True], repeat=len(FLAGS))))
def test_every_filter_combination_matches_brute_force(combo, screen):
    flags = dict(zip(FLAGS, combo, strict=True))
    rng = np.random.default_rng(sum(bit << i for i, bit in enumerate(combo)))
    for _ in range(3):
        n = int(rng.integers(1, 301))
        rank = int(rng.integers(1, 17))
        k = int(rng.integers(0, 51))
        left, right = random_factors(rng, n, n, rank)
        kwargs = options(rng, n, flags)
        block_rows = int(rng.choice([1, 5, 64, 256]))
        got = top_pairs(left, right, k, block_rows=block_rows, screen=screen, **kwargs)
        assert_same_top(got, left, right, k, **kwargs)


@pytest.mark.parametrize("screen", [True, False], ids=["bf16-screen", "fp32"])
@pytest.mark.parametrize("seed", range(12))
def test_random_shapes_match_brute_force(seed, screen):
    """Rectangular matrices, tiny V, rank above V (the unbalanced fallback), k above #eligible."""
    rng = np.random.default_rng(100 + seed)
    n_rows, n_cols = (int(x) for x in rng.integers(1, 120, 2))
    rank = int(rng.integers(1, 17))
    k = int(rng.choice([1, 7, 50, n_rows * n_cols + 5]))
    left, right = random_factors(rng, n_rows, n_cols, rank)
    negative = bool(seed % 2)
    got = top_pairs(left, right, k, negative=negative, block_rows=int(rng.integers(1, 40)), screen=screen)
    assert len(got) == min(k, n_rows * n_cols)
    assert_same_top(got, left, right, k, negative=negative)


@pytest.mark.parametrize("screen", [True, False], ids=["bf16-screen", "fp32"])
def test_ties_follow_the_documented_order(screen):
    """Integer factors tie massively; ties go by (row, col) ascending, exactly as the reference."""
    rng = np.random.default_rng(7)
    left = torch.from_numpy(rng.integers(-2, 3, (200, 3)).astype(np.float32))
    right = torch.from_numpy(rng.integers(-2, 3, (3, 180)).astype(np.float32))
    for negative in (False, True):
        got = top_pairs(left, right, 45, negative=negative, block_rows=16, screen=screen)
        ref = brute_force_top_pairs(left, right, 45, negative=negative)
        for field in ("row_ids", "col_ids", "scores"):
            np.testing.assert_array_equal(getattr(got, field), getattr(ref, field))
        order = np.lexsort((ref.col_ids, ref.row_ids, ref.scores if negative else -ref.scores))
        np.testing.assert_array_equal(order, np.arange(len(ref)))


def near_tie_factors(
    rng: np.random.Generator, signs: np.ndarray, spread: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    left = 1 + spread * rng.standard_normal((400, 16))
    right = signs[:, None] * (1 + spread * rng.standard_normal((16, 300)))
    return torch.from_numpy(left.astype(np.float32)), torch.from_numpy(right.astype(np.float32))


@pytest.mark.parametrize("screen", [True, False], ids=["bf16-screen", "fp32"])
@pytest.mark.parametrize("spread", [1e-6, 1e-3], ids=["below-fp32", "below-bf16"])
@pytest.mark.parametrize("signs", [np.ones(16), np.repeat([1.0, -1.0], 8)], ids=["same-sign", "cancelling"])
def test_near_ties_are_decided_by_the_exact_scores(signs, spread, screen):
    """Scores within float32 rounding of each other (around 16, or around 0 with |a||b| = 16).

    The tile matmul and the exact score then round differently; only a sound margin keeps it exact.
    spread 1e-3: differences bf16 screening cannot see but fp32 can (near its error bound).
    """
    left, right = near_tie_factors(np.random.default_rng(11), signs, spread)
    for negative in (False, True):
        got = top_pairs(left, right, 200, negative=negative, block_rows=32, screen=screen)
        ref = brute_force_top_pairs(left, right, 200, negative=negative)
        assert pairs(got) == pairs(ref)
        np.testing.assert_array_equal(got.scores, ref.scores)


def test_pruning_skips_most_tiles_and_stays_exact(monkeypatch):
    """A few huge-norm rows and columns hold the top entries: the bound must prune the rest."""
    monkeypatch.setattr(topk, "TILE_COLS", 128)
    rng = np.random.default_rng(5)
    left, right = random_factors(rng, 1500, 1200, 8)
    left[:12] *= 40
    right[:, :20] *= 6
    for negative in (False, True):
        got = top_pairs(left, right, 40, negative=negative, block_rows=64)
        assert got.tiles_total == 24 * 10
        assert got.tiles_computed <= got.tiles_total // 10
        assert got.entries_computed < 0.05 * 1500 * 1200
        assert_same_top(got, left, right, 40, negative=negative)


def test_masks_and_groups_on_the_pruning_path(monkeypatch):
    monkeypatch.setattr(topk, "TILE_COLS", 100)
    rng = np.random.default_rng(6)
    left, right = random_factors(rng, 1000, 1000, 6)
    left[:30] *= 30
    kwargs = {
        "row_mask": rng.random(1000) < 0.6,
        "col_mask": rng.random(1000) < 0.6,
        "same_groups": rng.integers(0, 50, 1000),
    }
    got = top_pairs(left, right, 50, block_rows=50, **kwargs)
    assert got.tiles_computed < got.tiles_total // 4
    assert_same_top(got, left, right, 50, **kwargs)


def test_exclude_that_removes_the_top_forces_a_deeper_search(monkeypatch):
    """The huge rows' pairs are all excluded: the answer lies deeper, and exclude sees few pairs."""
    monkeypatch.setattr(topk, "TILE_COLS", 128)
    rng = np.random.default_rng(8)
    left, right = random_factors(rng, 1200, 1000, 8)
    left[:15] *= 50
    calls: list[int] = []

    def drop_huge_rows(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        calls.append(len(rows))
        return rows < 15

    k = 25
    shallow = top_pairs(left, right, k, block_rows=64)
    assert set(shallow.row_ids.tolist()) <= set(range(15))
    got = top_pairs(left, right, k, exclude=drop_huge_rows, block_rows=64)
    assert got.row_ids.min() >= 15
    assert got.tiles_computed > shallow.tiles_computed
    assert max(calls) <= k and sum(calls) == got.pairs_checked < 0.01 * 1200 * 1000
    assert_same_top(got, left, right, k, exclude=drop_huge_rows)


def test_exclude_keeping_one_pair_in_ten():
    rng = np.random.default_rng(9)
    left, right = random_factors(rng, 250, 250, 5)

    def keep_one_in_ten(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return (rows + 3 * cols) % 10 != 0

    for negative in (False, True):
        got = top_pairs(left, right, 50, exclude=keep_one_in_ten, negative=negative, block_rows=20)
        assert not keep_one_in_ten(got.row_ids, got.col_ids).any()
        assert_same_top(got, left, right, 50, exclude=keep_one_in_ten, negative=negative)


def test_empty_masks_and_k_zero_give_no_pairs():
    left, right = random_factors(np.random.default_rng(1), 40, 40, 4)
    none = np.zeros(40, bool)
    for result in (
        top_pairs(left, right, 10, row_mask=none),
        top_pairs(left, right, 10, col_mask=none),
        top_pairs(left, right, 0),
        top_pairs(left, right, 10, exclude=lambda rows, cols: np.ones(len(rows), bool)),
        top_pairs(left, right, 10, same_groups=np.zeros(40, np.int64)),
    ):
        assert len(result) == 0 and result.row_ids.dtype == np.int64 and result.scores.dtype == np.float32


def test_k_above_the_number_of_eligible_pairs_returns_them_all():
    rng = np.random.default_rng(2)
    left, right = random_factors(rng, 30, 30, 3)
    rows, cols = np.zeros(30, bool), np.zeros(30, bool)
    rows[[1, 4, 9]], cols[[0, 2, 5, 7]] = True, True
    got = top_pairs(left, right, 100, row_mask=rows, col_mask=cols, same_groups=np.arange(30) % 5)
    eligible = {(r, c) for r in (1, 4, 9) for c in (0, 2, 5, 7) if r % 5 != c % 5}
    assert set(pairs(got)) == eligible and len(got) == len(eligible)


def test_negative_reports_the_true_negative_scores():
    rng = np.random.default_rng(3)
    left, right = random_factors(rng, 60, 70, 4)
    got = top_pairs(left, right, 20, negative=True)
    dense = (left.double() @ right.double()).numpy()
    np.testing.assert_allclose(got.scores, dense[got.row_ids, got.col_ids], rtol=1e-6)
    assert np.all(np.diff(got.scores) >= 0) and got.scores[0] == pytest.approx(dense.min(), rel=1e-6)


def test_brute_force_reference_agrees_with_a_dense_float64_product():
    """The reference itself: its scores are the float64 products rounded to float32."""
    rng = np.random.default_rng(4)
    left, right = random_factors(rng, 90, 80, 7)
    ref = brute_force_top_pairs(left, right, 25)
    dense = (left.double() @ right.double()).numpy()
    np.testing.assert_array_equal(ref.scores, dense[ref.row_ids, ref.col_ids].astype(np.float32))
    expected = np.argsort(-dense, axis=None, kind="stable")[:25]
    assert pairs(ref) == sorted(zip(*(x.tolist() for x in np.unravel_index(expected, dense.shape)), strict=True))


def test_degenerate_factors():
    """All-zero factors (every score ties at 0) and rank 0."""
    zeros = top_pairs(torch.zeros(20, 3), torch.zeros(3, 15), 7, block_rows=4)
    assert pairs(zeros) == [(0, c) for c in range(7)] and not zeros.scores.any()
    rank0 = top_pairs(torch.zeros(5, 0), torch.zeros(0, 6), 4)
    assert pairs(rank0) == [(0, 0), (0, 1), (0, 2), (0, 3)]


def test_other_dtypes_and_numpy_inputs_are_converted():
    rng = np.random.default_rng(10)
    left, right = random_factors(rng, 50, 50, 4)
    expected = top_pairs(left, right, 10)
    for converted in (top_pairs(left.double(), right.double(), 10), top_pairs(left.numpy(), right.numpy(), 10)):
        assert pairs(converted) == pairs(expected)
        np.testing.assert_array_equal(converted.scores, expected.scores)


def test_reduced_precision_matmul_setting_is_respected_and_left_alone():
    """Under "medium" (bf16 inside torch's fp32 matmuls) the fp32 tiles stay exact (they run in numpy's
    BLAS, which the setting does not reach); nothing is switched."""
    rng = np.random.default_rng(12)
    left, right = random_factors(rng, 200, 200, 12)
    saved = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        got = top_pairs(left, right, 30, block_rows=16, screen=False)
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(saved)
    assert_same_top(got, left, right, 30)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((torch.zeros(4, 3), torch.zeros(2, 4), 1), {}, "left is"),
        ((torch.zeros(4), torch.zeros(4, 4), 1), {}, "2-D"),
        ((torch.zeros(4, 2), torch.zeros(2, 4), -1), {}, "k must"),
        ((torch.zeros(4, 2), torch.zeros(2, 4), 1), {"row_mask": np.ones(3, bool)}, "row_mask"),
        ((torch.zeros(4, 2), torch.zeros(2, 4), 1), {"col_mask": np.ones(4, int)}, "col_mask"),
        ((torch.zeros(4, 2), torch.zeros(2, 5), 1), {"same_groups": np.zeros(4, int)}, "same_groups"),
        ((torch.full((4, 2), float("nan")), torch.zeros(2, 4), 1), {}, "NaN"),
        ((torch.zeros(4, 2), torch.tensor([[0.0, float("inf"), 0, 0], [0, 0, 0, 0]]), 1), {}, "inf"),
        ((torch.tensor([[float("inf"), -float("inf")], [0, 0]]).repeat(2, 1), torch.zeros(2, 4), 1), {}, "NaN"),
        ((torch.zeros(4, 2), torch.zeros(2, 4), 1), {"exclude": lambda rows, cols: True}, "exclude"),
        ((torch.zeros(4, 2), torch.zeros(2, 4), 1), {"block_rows": 0}, "block_rows"),
    ],
)
def test_bad_arguments_name_the_problem(args, kwargs, message):
    with pytest.raises(PairSearchError, match=message):
        top_pairs(*args, **kwargs)


def test_brute_force_takes_the_arguments_of_top_pairs():
    """The reference is a drop-in: block_rows and screen are accepted and change nothing; a misspelt filter fails."""
    left, right = random_factors(np.random.default_rng(5), 40, 40, 4)
    plain = brute_force_top_pairs(left, right, 10, negative=True)
    tuned = brute_force_top_pairs(left, right, 10, negative=True, block_rows=8, screen=True)
    assert pairs(tuned) == pairs(plain)
    np.testing.assert_array_equal(tuned.scores, plain.scores)
    with pytest.raises(TypeError, match="row_masks"):
        brute_force_top_pairs(left, right, 10, row_masks=np.ones(40, bool))


@pytest.mark.filterwarnings("ignore:overflow encountered")  # the float32 Gram overflows too: plain bounds
def test_finite_factors_whose_sum_overflows_are_accepted():
    """The finiteness check sums first; a sum that overflows float32 must fall back to the entries."""
    big = torch.linspace(1e38, 3e38, 12).reshape(6, 2)
    small = torch.linspace(1e-39, 2e-38, 12).reshape(2, 6)
    found, expected = top_pairs(big, small, 3), brute_force_top_pairs(big, small, 3)
    assert found.row_ids.tolist() == expected.row_ids.tolist() and found.col_ids.tolist() == expected.col_ids.tolist()
    assert np.isfinite(found.scores).all()


# ---------------------------------------------------------------------------------------------
# bf16 screening: the error bound, the integer row max, the fallback, parallel workers


def adversarial_factors(rng: np.random.Generator, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Wide exponents, exact cancellations, values at bf16 rounding midpoints, tiny and zero rows."""
    a = rng.standard_normal((96, rank)) * np.exp2(rng.integers(-20, 20, (96, 1)))
    b = rng.standard_normal((rank, 80)) * np.exp2(rng.integers(-20, 20, (1, 80)))
    a[:8] = 1 + 2.0**-9  # halfway between two bf16 values: rounding error u_b on every input
    b[:, :8] = np.where(np.arange(rank)[:, None] % 2, -1.0, 1.0) * (1 + 3 * 2.0**-9)  # cancelling sums
    a[8:12] = 1e-40  # float32 denormals, which bf16 arithmetic may flush to zero
    a[12] = 0.0
    return torch.from_numpy(a.astype(np.float32)), torch.from_numpy(b.astype(np.float32))


@pytest.mark.parametrize("rank", [1, 2, 7, 32, 64, 128, 300])
def test_screening_error_bound_holds(rank):
    """|bf16 matmul - exact a.b| <= _screen_eps(r) |a||b| + _tiny_slack for every entry."""
    for seed in range(3):
        a, b = adversarial_factors(np.random.default_rng(seed), rank)
        screened = torch.mm(a.bfloat16(), b.bfloat16()).double()
        exact = a.double() @ b.double()
        scale = torch.linalg.vector_norm(a.double(), dim=1)[:, None] * torch.linalg.vector_norm(b.double(), dim=0)
        slack = topk._tiny_slack(rank, float(scale.max()), 1.0)
        bound = topk._screen_eps(rank) * scale + slack
        assert bool(((screened - exact).abs() <= bound).all())


@pytest.mark.parametrize("screen", [True, False], ids=["bf16-screen", "fp32"])
@pytest.mark.parametrize("rank", [3, 64])
def test_adversarial_factors_match_brute_force(rank, screen):
    a, b = adversarial_factors(np.random.default_rng(5), rank)
    for negative in (False, True):
        got = top_pairs(a, b, 60, negative=negative, block_rows=8, screen=screen)
        assert_same_top(got, a, b, 60, negative=negative)


def test_bf16_bits_at_most_is_a_bf16_just_below():
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.standard_normal(500) * np.exp2(rng.integers(-30, 30, 500)), [0.0, -0.0, 1.0, -1.0]])
    for x in values.tolist():
        bits = topk._bf16_bits_at_most(x)
        as_bf16 = torch.tensor(bits, dtype=torch.int16).view(torch.bfloat16)
        assert float(as_bf16) <= x
        assert x - float(as_bf16) <= 2.0**-7 * abs(x) + 1e-45  # within one bf16 step below x


def test_hot_rows_never_miss_an_entry():
    """The integer row max (positive cuts) and the float one (other cuts) find every row reaching the cut."""
    rng = np.random.default_rng(4)
    tile = torch.from_numpy(rng.standard_normal((300, 70)).astype(np.float32)).bfloat16()
    tile[:20] = -tile[:20].abs()  # all-negative rows: their integer max is the most negative value
    tile[20, :] = -0.0
    for cut in (-3.0, -0.5, -1e-30, 0.0, 1e-30, 0.3, 1.7, 2.5, 3.1, float(tile.float().max())):
        expected = np.flatnonzero((tile.float() >= cut).any(dim=1).numpy())
        got = topk._hot_rows(tile, cut)
        assert set(expected.tolist()) <= set(got.tolist())
        assert set(got.tolist()) <= set(
            np.flatnonzero((tile.float() >= cut - 0.02 * abs(cut) - 1e-6).any(dim=1).numpy())
        )


def test_huge_values_fall_back_to_fp32_and_stay_exact():
    """Near float32's range bf16 screening could overflow; the fp32 scan takes over."""
    rng = np.random.default_rng(6)
    left, right = random_factors(rng, 120, 90, 5)
    left, right = left * 1e18, right * 1e18
    assert not topk._screening_is_safe(float(left.norm(dim=1).max()), float(right.norm(dim=0).max()))
    assert_same_top(top_pairs(left, right, 40, block_rows=16, screen=True), left, right, 40)


@pytest.mark.parametrize("screen", [True, False], ids=["bf16-screen", "fp32"])
def test_parallel_workers_give_the_same_result(monkeypatch, screen):
    """Several scan workers share one running top k: same pairs, scores and tie order as one worker."""
    rng = np.random.default_rng(8)
    left, right = random_factors(rng, 650, 650, 9)
    kwargs = {"same_groups": rng.integers(0, 200, 650), "exclude": every_fifth_pair, "negative": True}
    one = top_pairs(left, right, 80, block_rows=32, screen=screen, **kwargs)
    monkeypatch.setattr(topk, "scan_workers", lambda: 4)
    for _ in range(3):
        many = top_pairs(left, right, 80, block_rows=32, screen=screen, **kwargs)
        for field in ("row_ids", "col_ids", "scores"):
            np.testing.assert_array_equal(getattr(many, field), getattr(one, field))
    assert_same_top(many, left, right, 80, **kwargs)


# ---------------------------------------------------------------------------------------------
# Which tiles: bf16 only where the CPU multiplies it natively; factor layouts


@pytest.mark.parametrize("native", [True, False])
def test_default_screen_follows_the_cpu(monkeypatch, native):
    """screen=None screens in bf16 exactly when native_bf16_matmul() says the CPU has bf16 arithmetic."""
    seen = []
    tiling = topk._tiling
    monkeypatch.setattr(topk, "native_bf16_matmul", lambda: native)
    monkeypatch.setattr(topk, "_tiling", lambda *args, **kw: seen.append(tiling(*args, **kw)) or seen[-1])
    left, right = random_factors(np.random.default_rng(21), 90, 70, 6)
    assert_same_top(top_pairs(left, right, 25, block_rows=16), left, right, 25)
    assert [topk._screened(t) for t in seen] == [native]
    seen.clear()
    top_pairs(left, right, 25, block_rows=16, screen=not native)  # an explicit choice wins
    assert [topk._screened(t) for t in seen] == [not native]


@pytest.mark.parametrize(
    ("probes", "expected"),
    [
        ({"_is_avx512_bf16_supported": lambda: False, "_is_amx_tile_supported": lambda: True}, True),
        ({"_is_avx512_bf16_supported": lambda: True}, True),
        ({"_is_avx512_bf16_supported": lambda: False, "_is_amx_tile_supported": lambda: False}, False),
        ({}, False),  # a torch without the private probes
        ({"_is_avx512_bf16_supported": lambda: (_ for _ in ()).throw(RuntimeError("no cpuinfo"))}, False),
    ],
    ids=["amx", "avx512-bf16", "neither", "no-probes", "probe-fails"],
)
def test_native_bf16_probe_reads_torchs_cpu_probes(monkeypatch, probes, expected):
    from embspace import runtime

    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, name, raising=False)
    for name, probe in probes.items():
        monkeypatch.setattr(torch.cpu, name, probe, raising=False)
    runtime.native_bf16_matmul.cache_clear()
    try:
        assert runtime.native_bf16_matmul() is expected
    finally:
        runtime.native_bf16_matmul.cache_clear()  # the next caller probes the real CPU again


def test_a_transposed_right_factor_is_read_without_a_copy_and_gives_the_same_pairs():
    """right may be the transpose of a contiguous [n_cols, r] array (as embspace.compute.heads passes it)."""
    rng = np.random.default_rng(22)
    left, right = random_factors(rng, 110, 110, 7)
    right_t = right.T.contiguous()
    assert topk._prepare(left, right_t.T, 5, None, None, None, None, False).right_t.base is not None
    for screen in (True, False):
        strided = top_pairs(left, right_t.T, 40, block_rows=16, screen=screen, negative=True)
        assert_same_top(strided, left, right, 40, negative=True)
        fused = torch.cat([left, right_t], dim=1)  # both factors as halves of one array: strided views
        halves = top_pairs(fused[:, :7], fused[:, 7:].T, 40, block_rows=16, screen=screen, negative=True)
        np.testing.assert_array_equal(halves.scores, strided.scores)
        assert pairs(halves) == pairs(strided)


def test_first_tile_offers_the_entries_above_the_kth_row_maximum():
    rng = np.random.default_rng(23)
    tile = rng.standard_normal((40, 30)).astype(np.float32)
    picked = topk._above_kth_row_max(tile, 7, 10_000)
    cut = np.sort(tile.max(axis=1))[-7]
    assert sorted(picked.tolist()) == np.flatnonzero(tile.reshape(-1) >= cut).tolist()
    assert len(set((picked // 30).tolist())) >= 7  # one entry at least from each of the 7 best rows
    assert topk._above_kth_row_max(tile, 41, 10_000) is None  # fewer rows than k
    assert topk._above_kth_row_max(np.zeros((40, 30), np.float32), 7, 100) is None  # all tied: too many


@pytest.mark.parametrize("k", [1, 10, 255, 256, 300])
def test_default_tiles_with_filters_that_reject_the_first_offers(k):
    """First tile harvested through the row-maximum cut, then (filters dropped pairs) the partition rounds."""
    rng = np.random.default_rng(24)
    left, right = random_factors(rng, 400, 400, 6)
    kwargs = {"same_groups": rng.integers(0, 40, 400), "exclude": every_fifth_pair}
    for negative in (False, True):
        got = top_pairs(left, right, k, negative=negative, screen=False, **kwargs)
        assert_same_top(got, left, right, k, negative=negative, **kwargs)
