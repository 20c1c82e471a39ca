"""TensorReader: single and sharded safetensors, the weights-only pytorch_model.bin fallback, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tiny_models import make_tiny_model

from embspace.model.checkpoint import CheckpointError, TensorReader


def _safetensors_state(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as handle:
        return {name: handle.get_tensor(name) for name in handle.keys()}


class NotATensor:
    """Any class object in a pickle needs its code run to be rebuilt."""

    def __reduce__(self):
        return (print, ("this would have run",))


def test_single_safetensors_file(tiny_model):
    path = tiny_model("llama")
    reader = TensorReader(path)
    expected = _safetensors_state(path / "model.safetensors")
    assert reader.names == frozenset(expected)
    assert reader.total_bytes == (path / "model.safetensors").stat().st_size
    name = "model.layers.1.self_attn.q_proj.weight"
    assert reader.has(name) and not reader.has("model.layers.2.self_attn.q_proj.weight")
    tensor = reader.get(name)
    assert tensor.dtype == torch.float32 and tensor.device.type == "cpu"
    torch.testing.assert_close(tensor, expected[name], atol=0, rtol=0)


def test_half_precision_is_returned_as_float32(tmp_path):
    weights = {"bf16": torch.randn(4, 3).to(torch.bfloat16), "fp16": torch.randn(5).to(torch.float16)}
    save_file({**weights, "ids": torch.arange(3)}, tmp_path / "model.safetensors")
    reader = TensorReader(tmp_path)
    for name, stored in weights.items():
        got = reader.get(name)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, stored.float(), atol=0, rtol=0)
    assert torch.equal(reader.get("ids"), torch.arange(3)), "integer buffers keep their values"


def test_sharded_safetensors_match_the_single_file(tiny_model, tmp_path):
    single = TensorReader(tiny_model("gpt2"))
    path = make_tiny_model("gpt2", tmp_path, max_shard_size="20KB")
    shards = sorted(path.glob("model-*.safetensors"))
    assert len(shards) > 2 and (path / "model.safetensors.index.json").is_file()
    assert not (path / "model.safetensors").exists()
    reader = TensorReader(path)
    assert reader.names == single.names
    assert reader.total_bytes == sum(shard.stat().st_size for shard in shards)
    for name in sorted(reader.names):
        torch.testing.assert_close(reader.get(name), single.get(name), atol=0, rtol=0)


def test_shards_are_opened_only_when_read(tmp_path):
    """A damaged shard does not matter until one of its tensors is asked for."""
    path = make_tiny_model("gpt2", tmp_path, max_shard_size="20KB")
    weight_map = json.loads((path / "model.safetensors.index.json").read_text())["weight_map"]
    damaged = weight_map["transformer.wte.weight"]
    (path / damaged).write_bytes(b"not safetensors")
    reader = TensorReader(path)
    healthy = next(name for name, shard in weight_map.items() if shard != damaged)
    assert reader.get(healthy).numel() > 0
    with pytest.raises(CheckpointError, match="re-download"):
        reader.get("transformer.wte.weight")


def test_index_naming_a_missing_shard_is_refused_at_open(tmp_path):
    path = make_tiny_model("gpt2", tmp_path, max_shard_size="20KB")
    victim = sorted(path.glob("model-*.safetensors"))[0]
    victim.unlink()
    with pytest.raises(CheckpointError, match=victim.name):
        TensorReader(path)


def test_pytorch_bin_is_read_through_the_weights_only_unpickler(tiny_model, tmp_path, monkeypatch):
    source = tiny_model("bert")
    state = _safetensors_state(source / "model.safetensors")
    torch.save({name: t.to(torch.bfloat16) for name, t in state.items()}, tmp_path / "pytorch_model.bin")
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    reader = TensorReader(tmp_path)
    assert calls and all(call.get("weights_only") is True and call.get("mmap") is True for call in calls)
    assert reader.names == frozenset(state)
    assert reader.total_bytes == (tmp_path / "pytorch_model.bin").stat().st_size
    name = "bert.encoder.layer.0.attention.self.query.weight"
    got = reader.get(name)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, state[name].to(torch.bfloat16).float(), atol=0, rtol=0)


def test_sharded_pytorch_bin(tiny_model, tmp_path):
    state = _safetensors_state(tiny_model("opt") / "model.safetensors")
    names = sorted(state)
    halves = {"pytorch_model-00001-of-00002.bin": names[::2], "pytorch_model-00002-of-00002.bin": names[1::2]}
    weight_map = {}
    for shard, shard_names in halves.items():
        torch.save({name: state[name] for name in shard_names}, tmp_path / shard)
        weight_map.update(dict.fromkeys(shard_names, shard))
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    reader = TensorReader(tmp_path)
    assert reader.names == frozenset(state)
    for name in (names[0], names[1], names[-1]):
        torch.testing.assert_close(reader.get(name), state[name], atol=0, rtol=0)


def test_pickle_needing_code_execution_is_refused(tmp_path):
    torch.save({"w": torch.zeros(2), "extra": NotATensor()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="arbitrary code execution") as info:
        TensorReader(tmp_path)
    assert "safetensors" in str(info.value)


def test_safetensors_win_over_a_pickle(tiny_model, tmp_path):
    """With both present the pickle is never touched, even a malicious one."""
    shutil.copy(tiny_model("gpt2") / "model.safetensors", tmp_path)
    torch.save({"extra": NotATensor()}, tmp_path / "pytorch_model.bin")
    assert TensorReader(tmp_path).has("transformer.wte.weight")


def test_missing_weights_and_names_are_explained(tiny_model, tmp_path):
    with pytest.raises(CheckpointError, match="no readable weights"):
        TensorReader(tmp_path)
    with pytest.raises(CheckpointError, match="not a directory"):
        TensorReader(tmp_path / "absent")
    reader = TensorReader(tiny_model("gpt2"))
    assert reader.first("lm_head.weight", "transformer.wte.weight", "wte.weight") == "transformer.wte.weight"
    with pytest.raises(CheckpointError, match="lm_head.weight"):
        reader.first("lm_head.weight", "embed_out.weight")
    with pytest.raises(CheckpointError, match="reader.names"):
        reader.get("transformer.h.9.attn.c_attn.weight")


def test_legacy_non_zip_pickle_is_still_read_weights_only(tmp_path):
    """Pre-1.6 torch.save files cannot be memory-mapped; they are read whole, still weights-only."""
    torch.save(
        {"w": torch.arange(6.0).reshape(2, 3)}, tmp_path / "pytorch_model.bin", _use_new_zipfile_serialization=False
    )
    torch.testing.assert_close(TensorReader(tmp_path).get("w"), torch.arange(6.0).reshape(2, 3))
    torch.save({"extra": NotATensor()}, tmp_path / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="arbitrary code execution"):
        TensorReader(tmp_path)


def test_reads_leave_no_mapped_pages_resident(tmp_path):
    """Each get() copies its tensor out and unmaps the file: file-backed resident memory does not
    grow with what was read (it grew by the whole file when handles stayed open)."""
    import psutil

    tensors = {f"layer.{i}.weight": torch.randn(2048, 2048) for i in range(4)}  # 4 x 16 MiB
    save_file(tensors, str(tmp_path / "model.safetensors"))
    reader = TensorReader(tmp_path)
    process = psutil.Process()
    mapped_before = process.memory_info().shared
    for name, expected in tensors.items():
        got = reader.get(name)
        torch.testing.assert_close(got, expected, atol=0, rtol=0)
        got.add_(1)  # a private copy: writing into it changes neither the file nor the next read
        del got
    assert process.memory_info().shared - mapped_before < 16 * 2**20
    torch.testing.assert_close(reader.get("layer.0.weight"), tensors["layer.0.weight"], atol=0, rtol=0)


def test_release_drops_mapped_pickle_state_dicts(tmp_path):
    torch.save({"w": torch.arange(6.0).reshape(2, 3)}, tmp_path / "pytorch_model.bin")
    reader = TensorReader(tmp_path)
    first = reader.get("w")
    assert reader._state_dicts
    reader.release()
    assert not reader._state_dicts
    torch.testing.assert_close(reader.get("w"), first, atol=0, rtol=0)  # re-mapped on demand
