"""embspace.compute.ffn_scan: every neuron at once equals `neuron_top_tokens` and a float64 brute force; devices."""

import numpy as np
import pytest
import torch

from embspace import VocabFilter, open_model
from embspace.compute.devices import resolve_device
from embspace.compute.ffn_scan import SCAN_VECTORS, NeuronScanner, scan_layer_neurons, top_k_rows
from embspace.compute.projections import neuron_top_tokens
from embspace.errors import EmbspaceError


def by_score_then_id(ids: np.ndarray, scores: np.ndarray) -> tuple[list, list]:
    """torch.topk leaves ties in any order; the scan orders them by id: compare in that order."""
    order = np.lexsort((ids, -scores))
    return ids[order].tolist(), scores[order].tolist()


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("vocab_filter", [None, VocabFilter(only_ascii=True)])
def test_scan_equals_neuron_top_tokens(tiny_model, arch, vocab_filter):
    model = open_model(str(tiny_model(arch)))
    scan = scan_layer_neurons(model, 1, k=15, vocab_filter=vocab_filter)
    for neuron in range(model.shape.d_ff):
        live = neuron_top_tokens(model, 1, neuron, 15, vocab_filter)
        for vector in SCAN_VECTORS:
            ids, scores = by_score_then_id(live[vector].token_ids, live[vector].scores)
            assert scan.token_ids[vector][neuron].tolist() == ids
            np.testing.assert_allclose(scan.scores[vector][neuron], scores, rtol=1e-5, atol=1e-6)


def test_scan_matches_float64_brute_force(tiny_model):
    model = open_model(str(tiny_model("gpt2")))
    vocab_filter = VocabFilter(only_alnum=True)
    mask = model.vocab_mask(vocab_filter)
    scan = NeuronScanner(model, 9, vocab_filter, block_neurons=7).scan(0)  # blocks that do not divide d_ff
    keys = model.layer(0).ffn_keys.double()
    for sign, vector in ((1.0, "K"), (-1.0, "-K")):
        full = (sign * keys @ model.E.double()).numpy()  # [d_ff, V]
        full[:, ~mask] = -np.inf
        expected = np.argsort(-full, axis=1, kind="stable")[:, :9]
        assert (np.sort(scan.token_ids[vector], axis=1) == np.sort(expected, axis=1)).all()
        np.testing.assert_allclose(scan.scores[vector], np.take_along_axis(full, scan.token_ids[vector], 1), rtol=1e-5)


def test_k_is_clipped_to_the_tokens_the_filter_keeps(tiny_model):
    model = open_model(str(tiny_model("gpt2")))
    few = VocabFilter(allowed_ids=frozenset({5, 6, 7}))
    scan = scan_layer_neurons(model, 0, k=50, vocab_filter=few)
    assert scan.token_ids["V"].shape == (model.shape.d_ff, 3)
    assert set(np.unique(scan.token_ids["-V"])) <= {5, 6, 7}


def test_ties_are_ordered_by_token_id():
    values = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0]])
    scores, ids = top_k_rows(values, 4)
    assert ids.tolist() == [[1, 2, 4, 3]] and scores.tolist() == [[3.0, 3.0, 3.0, 2.0]]


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(None).type == "cpu"
    with pytest.raises(EmbspaceError, match="device must be one of"):
        resolve_device("mps")
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        with pytest.raises(EmbspaceError, match="CUDA is not available here.*--device cpu"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_scan_equals_cpu_scan(tiny_model):
    model = open_model(str(tiny_model("gpt2")))
    cpu, gpu = scan_layer_neurons(model, 1, 10), scan_layer_neurons(model, 1, 10, device="cuda")
    for vector in SCAN_VECTORS:
        assert (cpu.token_ids[vector] == gpu.token_ids[vector]).mean() > 0.99
        np.testing.assert_allclose(cpu.scores[vector], gpu.scores[vector], rtol=1e-4, atol=1e-5)


def test_a_scan_on_worker_threads_equals_one_thread(tiny_model):
    """Under the app's policy (torch single-threaded) blocks run on scan_workers() threads, in order."""
    model = open_model(str(tiny_model("gpt2")))
    one = NeuronScanner(model, 8, block_neurons=3, workers=1).scan(1)
    many = NeuronScanner(model, 8, block_neurons=3, workers=4).scan(1)
    for vector in SCAN_VECTORS:
        assert (one.token_ids[vector] == many.token_ids[vector]).all()
        assert (one.scores[vector] == many.scores[vector]).all()
