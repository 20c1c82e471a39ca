"""vocab_factors (one fused GEMM on E, row blocks over the scan workers) against float64 products."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embspace.compute import vocab_matmul
from embspace.compute.vocab_matmul import vocab_factors

U32 = 2.0**-24


def assert_float32_product(got: torch.Tensor, rows: torch.Tensor, w: torch.Tensor) -> None:
    """got == rows @ w up to float32 rounding: |error| <= (d + 2) u |row| |w column| for every entry."""
    exact = rows.double() @ w.double()
    bound = (rows.shape[1] + 2) * U32 * rows.double().norm(dim=1)[:, None] * w.double().norm(dim=0)[None, :]
    assert got.dtype == torch.float32 and got.is_contiguous() and got.shape == exact.shape
    assert bool(((got.double() - exact).abs() <= bound).all())


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_shared_rows_fuse_into_one_product_per_block(monkeypatch, workers):
    monkeypatch.setattr(vocab_matmul, "scan_workers", lambda: workers)
    monkeypatch.setattr(vocab_matmul, "_MIN_BLOCK_ROWS", 7)
    rng = np.random.default_rng(0)
    emb = torch.from_numpy(rng.standard_normal((101, 24)).astype(np.float32))
    w_left = torch.from_numpy(rng.standard_normal((24, 5)).astype(np.float32))
    w_right = torch.from_numpy(rng.standard_normal((5, 24)).astype(np.float32)).T  # a transposed view, as W_O^hᵀ
    calls = []
    split = vocab_matmul._split_product
    monkeypatch.setattr(vocab_matmul, "_split_product", lambda *args: calls.append(args[2]) or split(*args))
    left, right = vocab_factors(emb, w_left, emb.T.T, w_right)  # the same memory read the same way
    assert len(calls) == workers and sorted((b.start, b.stop) for b in calls)[0][0] == 0
    assert_float32_product(left, emb, w_left)
    assert_float32_product(right, emb, w_right)


def test_different_rows_are_two_products():
    """input-output: rows through the input embedding, columns through the LM head."""
    rng = np.random.default_rng(1)
    emb_in = torch.from_numpy(rng.standard_normal((60, 16)).astype(np.float32))
    emb_out = torch.from_numpy(rng.standard_normal((60, 16)).astype(np.float32))
    w_left, w_right = (torch.from_numpy(rng.standard_normal((16, 4)).astype(np.float32)) for _ in range(2))
    left, right = vocab_factors(emb_in, w_left, emb_out, w_right)
    assert_float32_product(left, emb_in, w_left)
    assert_float32_product(right, emb_out, w_right)


def test_other_dtypes_are_read_as_float32():
    rng = np.random.default_rng(2)
    emb = torch.from_numpy(rng.standard_normal((40, 8))).to(torch.bfloat16)
    w = torch.from_numpy(rng.standard_normal((8, 3))).to(torch.float64)
    left, right = vocab_factors(emb, w, emb, w)
    assert_float32_product(left, emb.float(), w.float())
    torch.testing.assert_close(left, right, rtol=0, atol=0)
