"""Opening models: sources, embedding choice, lazy layers, budgets, the hub path on a local cache."""

import shutil

import huggingface_hub
import huggingface_hub.constants
import pytest
import torch

from embspace import DEFAULT_MODEL, EmbspaceError, ModelNotFound, ModelTooLarge, open_model
from embspace.model.checkpoint import TensorReader
from embspace.model.sources import bundled_model_dir, resolve_source


def test_default_id_resolves_to_the_bundled_minilm():
    model = open_model(DEFAULT_MODEL)
    assert model.info.origin == "bundled"
    shape = model.shape
    assert (shape.architecture, shape.n_layers, shape.n_heads, shape.d_model, shape.vocab_size) == (
        "bert",
        6,
        12,
        384,
        30522,
    )
    assert shape.d_ff == 1536
    assert model.info.embedding == "input"  # BertModel: no LM head
    assert model.E.shape == (384, 30522)


def test_minilm_has_no_output_embedding(minilm_dir):
    with pytest.raises(EmbspaceError, match="no LM head"):
        open_model(str(minilm_dir), embedding="output")


def test_layers_are_read_only_when_asked(minilm_dir, monkeypatch):
    read = []
    original = TensorReader.get
    monkeypatch.setattr(TensorReader, "get", lambda self, name: read.append(name) or original(self, name))
    model = open_model(str(minilm_dir))
    assert read == ["embeddings.word_embeddings.weight"]
    model.layer(4)
    assert read[1:] and all(".layer.4." in name for name in read[1:])


def test_layer_cache_is_bounded(minilm_dir):
    model = open_model(str(minilm_dir))
    first = model.layer(0)
    assert model.layer(0) is first
    for index in range(1, 6):
        model.layer(index)
    assert list(model._layers) == [4, 5]  # the two most recent layers only
    assert model.layer(0) is not first  # layer 0 was evicted and read again


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox", "llama", "opt"])
def test_auto_embedding_is_the_lm_head_for_causal_models(tiny_model, arch):
    model = open_model(str(tiny_model(arch)))
    assert model.info.embedding == "output"
    reader = TensorReader(tiny_model(arch))
    names = [n for n in reader.names if "embed" in n or "wte" in n or "lm_head" in n]
    assert names
    # Whatever tensor was chosen, input and output agree when tied and differ when not.
    by_input = open_model(str(tiny_model(arch)), embedding="input")
    same = torch.equal(model.E, by_input.E)
    assert same == model.info.tied


def test_untied_neox_output_embedding_is_embed_out(tiny_model):
    path = tiny_model("gpt_neox")
    model = open_model(str(path), embedding="output")
    torch.testing.assert_close(model.embedding_rows, TensorReader(path).get("embed_out.weight"))
    assert not model.info.tied


def test_missing_directory_and_bad_embedding_are_clear(tmp_path):
    with pytest.raises(ModelNotFound, match="No such model directory"):
        open_model(str(tmp_path / "nope" / "deeper" / "x"))
    with pytest.raises(ModelNotFound, match="config.json"):
        open_model(str(tmp_path))
    with pytest.raises(EmbspaceError, match="embedding must be one of"):
        open_model(DEFAULT_MODEL, embedding="middle")


def test_weight_budget_refuses_large_local_models(tiny_model):
    path = tiny_model("gpt2")
    with pytest.raises(ModelTooLarge, match="over this app's budget"):
        open_model(str(path), weight_budget_bytes=1000)
    assert open_model(str(path), weight_budget_bytes=10**9).shape.n_layers == 2


def _fake_hub_cache(cache, repo_id, model_dir, commit="0" * 40):
    """Lay out `model_dir` the way huggingface_hub's cache stores a downloaded snapshot."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    shutil.copytree(model_dir, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def test_hub_id_offline_uses_the_local_hub_cache(tiny_model, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    snapshot = _fake_hub_cache(cache, "someone/tiny-gpt2", tiny_model("gpt2"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = resolve_source("someone/tiny-gpt2")
    assert resolved.origin == "hub" and resolved.path == snapshot
    assert open_model("someone/tiny-gpt2").shape.n_layers == 2


def test_hub_id_offline_and_not_cached_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFound, match="not in the local Hugging Face cache"):
        open_model("someone/not-downloaded")


def test_bundled_model_dir_is_a_model_directory():
    path = bundled_model_dir()
    assert path is not None and (path / "model.safetensors").is_file()


def _hub_unreachable(repo_id, revision):
    """What `HfApi.model_info` raises with no network (the hub is not reachable from the tests)."""
    import httpx2

    raise httpx2.ConnectError("[Errno -2] Name or service not known")


def test_unreachable_hub_falls_back_to_the_local_cache(tiny_model, tmp_path, monkeypatch):
    """The online path with no network must still find a cached snapshot."""
    import embspace.model.sources as sources

    cache = tmp_path / "hub"
    snapshot = _fake_hub_cache(cache, "someone/cached", tiny_model("bert"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(sources, "hub_weight_files", _hub_unreachable)
    assert resolve_source("someone/cached").path == snapshot


def test_unreachable_hub_and_no_cache_is_one_clear_error(tmp_path, monkeypatch):
    import embspace.model.sources as sources

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(sources, "hub_weight_files", _hub_unreachable)
    with pytest.raises(ModelNotFound, match="Could not reach the Hugging Face hub"):
        resolve_source("someone/elsewhere")


def test_hub_model_over_budget_is_refused_before_download(monkeypatch, tmp_path):
    """The hub's size answer is faked (no hub here); the refusal must come before any download."""
    import embspace.model.sources as sources

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(sources, "hub_weight_files", lambda repo, rev: (["*.safetensors"], 5_000_000_000))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: pytest.fail("downloaded"))
    with pytest.raises(ModelTooLarge, match="5.00 GB of weights"):
        resolve_source("someone/huge", weight_budget_bytes=2_000_000_000)


def test_repository_without_weights_is_not_reported_as_a_network_problem(monkeypatch, tmp_path):
    import embspace.model.sources as sources

    def no_weights(repo_id, revision):
        raise ModelNotFound(f"{repo_id} has neither *.safetensors nor pytorch_model.bin weights.")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(sources, "hub_weight_files", no_weights)
    with pytest.raises(ModelNotFound, match="neither"):
        resolve_source("someone/tf-only")
