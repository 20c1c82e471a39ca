"""Adapters checked against each model's own forward pass.

The model runs with transformers; hooks capture the attention input x, the q/k/v the model
itself split into heads, the per-head attention output z it fed its output projection, and the
MLP's intermediate values. The canonical `LayerWeights` read from the checkpoint must reproduce
all of them. Rotary models run with every position id 0, where the rotation is the identity, so
the captured q/k are the pre-rotary projections.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_models import ARCHS, MASKED_LM, ROTARY, make_tiny_model
from transformers import AttentionInterface, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer
from transformers.activations import ACT2FN
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from embspace.model.adapters import (
    ADAPTERS,
    SPECS,
    ArchitectureAdapter,
    MlpNames,
    SeparateQKV,
    UnsupportedArchitecture,
    adapter_for,
)
from embspace.model.adapters.base import split_fused
from embspace.model.checkpoint import CheckpointError, TensorReader
from embspace.model.layout import LayerWeights, ModelShape

CAPTURE = "embspace_capture"
TOLERANCE = {"atol": 1e-5, "rtol": 1e-4}


def _capturing_attention(module, query, key, value, attention_mask, scaling=None, **kwargs):
    """sdpa attention that also leaves the model's own tensors on the module.

    q, k, v: [B, H, S, d_head]; z: [B, S, H, d_head].
    """
    z, weights = sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
    module.captured = {"query": query, "key": key, "value": value, "scaling": scaling, "z": z}
    return z, weights


AttentionInterface.register(CAPTURE, _capturing_attention)


@dataclass(frozen=True)
class ModuleNames:
    """Where one layer's pieces live inside the base model (`{}` = layer index), in the model's own names."""

    attention: str  # the module whose attention call is captured
    attention_input: str  # a projection whose input is the attention input x
    out_proj: str
    mlp_first: str  # keys (gate for gated MLPs)
    mlp_up: str | None
    mlp_last: str  # values
    activation_key: str  # config.json key naming the MLP activation


_BERT = ModuleNames(
    "encoder.layer.{}.attention.self",
    "encoder.layer.{}.attention.self.query",
    "encoder.layer.{}.attention.output.dense",
    "encoder.layer.{}.intermediate.dense",
    None,
    "encoder.layer.{}.output.dense",
    "hidden_act",
)
_LLAMA = ModuleNames(
    "layers.{}.self_attn",
    "layers.{}.self_attn.q_proj",
    "layers.{}.self_attn.o_proj",
    "layers.{}.mlp.gate_proj",
    "layers.{}.mlp.up_proj",
    "layers.{}.mlp.down_proj",
    "hidden_act",
)
MODULES = {
    "gpt2": ModuleNames(
        "h.{}.attn",
        "h.{}.attn.c_attn",
        "h.{}.attn.c_proj",
        "h.{}.mlp.c_fc",
        None,
        "h.{}.mlp.c_proj",
        "activation_function",
    ),
    "bert": _BERT,
    "roberta": _BERT,
    "gpt_neox": ModuleNames(
        "layers.{}.attention",
        "layers.{}.attention.query_key_value",
        "layers.{}.attention.dense",
        "layers.{}.mlp.dense_h_to_4h",
        None,
        "layers.{}.mlp.dense_4h_to_h",
        "hidden_act",
    ),
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "opt": ModuleNames(
        "decoder.layers.{}.self_attn",
        "decoder.layers.{}.self_attn.q_proj",
        "decoder.layers.{}.self_attn.out_proj",
        "decoder.layers.{}.fc1",
        None,
        "decoder.layers.{}.fc2",
        "activation_function",
    ),
    "gptj": ModuleNames(
        "h.{}.attn",
        "h.{}.attn.q_proj",
        "h.{}.attn.out_proj",
        "h.{}.mlp.fc_in",
        None,
        "h.{}.mlp.fc_out",
        "activation_function",
    ),
}


def _load(path: Path, arch: str, *, bare: bool = False) -> torch.nn.Module:
    auto = AutoModel if bare else AutoModelForMaskedLM if arch in MASKED_LM else AutoModelForCausalLM
    # GPT-J has no attention interface; its `_attn` is wrapped instead (see _capture_gptj).
    attention = "eager" if arch == "gptj" else CAPTURE
    return auto.from_pretrained(path, dtype=torch.float32, attn_implementation=attention).eval()


def _capture_gptj(attention: torch.nn.Module) -> None:
    original = attention._attn

    def wrapped(query, key, value, attention_mask=None):
        z, weights = original(query, key, value, attention_mask)
        attention.captured = {
            "query": query,
            "key": key,
            "value": value,
            "scaling": 1.0 / attention.scale_attn,
            "z": z.transpose(1, 2),
        }
        return z, weights

    attention._attn = wrapped


def run_and_capture(model: torch.nn.Module, arch: str, input_ids: torch.Tensor, n_layers: int) -> list[dict]:
    """One forward pass; per layer, the tensors the model computed inside attention and MLP."""
    names = MODULES[arch]
    base = model.base_model
    captured: list[dict] = [{} for _ in range(n_layers)]
    handles = []

    def keep(layer: int, key: str, what: str):
        def hook(module, inputs, output):
            if what in ("input", "both"):
                captured[layer][key + "_in"] = inputs[0]
            if what in ("output", "both"):
                captured[layer][key + "_out"] = output

        return hook

    for layer in range(n_layers):
        targets = {
            "x": (names.attention_input, "input"),
            "out_proj": (names.out_proj, "output"),
            "mlp_first": (names.mlp_first, "both"),
            "mlp_last": (names.mlp_last, "both"),
        }
        if names.mlp_up:
            targets["mlp_up"] = (names.mlp_up, "output")
        for key, (path, what) in targets.items():
            handles.append(base.get_submodule(path.format(layer)).register_forward_hook(keep(layer, key, what)))
        if arch == "gptj":
            _capture_gptj(base.get_submodule(names.attention.format(layer)))
    kwargs = {"position_ids": torch.zeros_like(input_ids)} if arch in ROTARY else {}
    try:
        with torch.no_grad():
            model(input_ids=input_ids, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    for layer in range(n_layers):
        captured[layer].update(base.get_submodule(names.attention.format(layer)).captured)
    return captured


def _plus(tensor: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return tensor if bias is None else tensor + bias


def check_layer(weights: LayerWeights, shape: ModelShape, seen: dict, activation: str) -> None:
    """The canonical weights reproduce everything the model computed in this layer."""
    n_heads, d_head, d_model, d_ff = shape.n_heads, shape.d_head, shape.d_model, shape.d_ff
    assert weights.W_Q.shape == weights.W_K.shape == weights.W_V.shape == (n_heads, d_model, d_head)
    assert weights.W_O.shape == (n_heads, d_head, d_model)
    assert weights.ffn_keys.shape == weights.ffn_values.shape == (d_ff, d_model)
    assert all(t.dtype == torch.float32 for t in vars(weights).values() if isinstance(t, torch.Tensor))

    x = seen["x_in"]  # [batch, seq, d_model]
    assert x.shape[-1] == d_model

    # (a) q, k, v per head, compared in the [batch, head, seq, d_head] layout the model attends with.
    def per_head(W: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        out = torch.einsum("bsd,hde->bhse", x, W)
        return out if b is None else out + b[None, :, None, :]

    q, k, v = per_head(weights.W_Q, weights.b_Q), per_head(weights.W_K, weights.b_K), per_head(weights.W_V, weights.b_V)
    # The model may fold the 1/sqrt(d_head) into q (OPT) or into the attention call; the scores agree.
    scaling = seen["scaling"] if seen["scaling"] is not None else d_head**-0.5
    torch.testing.assert_close(seen["query"] * scaling, q * d_head**-0.5, **TOLERANCE)
    assert seen["key"].shape[1] == shape.n_kv_heads
    group = n_heads // shape.n_kv_heads
    for head in range(n_heads):
        torch.testing.assert_close(seen["key"][:, head // group], k[:, head], **TOLERANCE)
        torch.testing.assert_close(seen["value"][:, head // group], v[:, head], **TOLERANCE)

    # (b) sum_h z_h @ W_O[h] + b_O is the output projection of the model's own z.
    z = seen["z"]  # [batch, seq, head, d_head]
    attention_out = _plus(torch.einsum("bshe,hed->bsd", z, weights.W_O), weights.b_O)
    torch.testing.assert_close(attention_out, seen["out_proj_out"], **TOLERANCE)

    # (c) keys give the pre-activation, the activation (times up for gated MLPs) meets values.
    mlp_in = seen["mlp_first_in"]
    pre = _plus(mlp_in @ weights.ffn_keys.T, weights.ffn_key_bias)
    torch.testing.assert_close(pre, seen["mlp_first_out"], **TOLERANCE)
    act = ACT2FN[activation](pre)
    if shape.gated_mlp:
        assert weights.ffn_up is not None and weights.ffn_up.shape == (d_ff, d_model)
        up = _plus(mlp_in @ weights.ffn_up.T, weights.ffn_up_bias)
        torch.testing.assert_close(up, seen["mlp_up_out"], **TOLERANCE)
        act = act * up
    else:
        assert weights.ffn_up is None
    torch.testing.assert_close(act, seen["mlp_last_in"], **TOLERANCE)
    torch.testing.assert_close(
        _plus(act @ weights.ffn_values, weights.ffn_value_bias), seen["mlp_last_out"], **TOLERANCE
    )


def _config(path: Path) -> dict:
    return json.loads((path / "config.json").read_text())


def check_model(path: Path, arch: str, input_ids: torch.Tensor, *, bare: bool = False) -> None:
    config = _config(path)
    adapter = adapter_for(config)
    shape = adapter.shape(config)
    reader = TensorReader(path)
    model = _load(path, arch, bare=bare)
    assert shape.n_layers == model.config.num_hidden_layers
    seen = run_and_capture(model, arch, input_ids, shape.n_layers)
    for layer in range(shape.n_layers):
        check_layer(adapter.read_layer(reader, shape, layer), shape, seen[layer], config[MODULES[arch].activation_key])


def _input_ids(path: Path, batch: int = 2, seq: int = 7) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, len(AutoTokenizer.from_pretrained(path)), (batch, seq), generator=generator)


@pytest.mark.parametrize("arch", ARCHS)
def test_layers_reproduce_the_models_forward_pass(tiny_model, arch):
    path = tiny_model(arch)
    check_model(path, arch, _input_ids(path))


def test_minilm_layers_reproduce_its_forward_pass(minilm_dir):
    """The bundled real checkpoint (bare BertModel, 6 layers, 12 heads, d_model 384)."""
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    batch = tokenizer(["Zażółć gęślą jaźń, kot i kota.", "The cat sat on the mat."], padding=True, return_tensors="pt")
    shape = adapter_for(_config(minilm_dir)).shape(_config(minilm_dir))
    assert (shape.n_layers, shape.n_heads, shape.d_model, shape.d_head) == (6, 12, 384, 32)
    check_model(minilm_dir, "bert", batch["input_ids"], bare=True)


@pytest.mark.parametrize("arch", ARCHS)
def test_bare_base_model_reads_like_the_headed_one(tiny_model, tmp_path, arch):
    """`GPT2Model` vs `GPT2LMHeadModel` (etc.): same weights, names without the prefix."""
    headed_path = tiny_model(arch)
    bare_path = make_tiny_model(arch, tmp_path, bare=True)
    headed, bare = TensorReader(headed_path), TensorReader(bare_path)
    assert bare.names.isdisjoint(headed.names - {"lm_head.weight"}), "variants must differ in naming"
    config = _config(headed_path)
    adapter = adapter_for(config)
    for layer in range(adapter.shape(config).n_layers):
        shape = adapter.shape(config)
        ours, theirs = adapter.read_layer(bare, shape, layer), adapter.read_layer(headed, shape, layer)
        for field, tensor in vars(ours).items():
            if tensor is not None:
                torch.testing.assert_close(tensor, getattr(theirs, field), atol=0, rtol=0)
    assert adapter.output_embedding_name(bare, config) is None
    torch.testing.assert_close(
        bare.get(adapter.input_embedding_name(bare, config)), headed.get(adapter.input_embedding_name(headed, config))
    )


@pytest.mark.parametrize("arch", ["bert", "gpt2"])
def test_bare_base_model_matches_its_own_forward_pass(tmp_path, arch):
    path = make_tiny_model(arch, tmp_path, bare=True)
    check_model(path, arch, _input_ids(path), bare=True)


# arch -> output embedding name expected in the default tiny build (None: tied, so not saved).
EXPECTED_HEAD = {
    "gpt2": None,
    "bert": None,
    "roberta": None,
    "gpt_neox": "embed_out.weight",
    "llama": "lm_head.weight",
    "mistral": "lm_head.weight",
    "qwen2": "lm_head.weight",
    "opt": None,
    "gptj": "lm_head.weight",
}


def check_embeddings(path: Path, arch: str, expected_head: str | None) -> None:
    config = _config(path)
    adapter = adapter_for(config)
    shape = adapter.shape(config)
    reader = TensorReader(path)
    model = _load(path, arch)
    E = reader.get(adapter.input_embedding_name(reader, config))
    assert E.shape == (shape.vocab_size, shape.d_model)
    torch.testing.assert_close(E, model.get_input_embeddings().weight, atol=0, rtol=0)
    head_name = adapter.output_embedding_name(reader, config)
    assert head_name == expected_head
    head = model.get_output_embeddings().weight
    if head_name is None:
        assert head.data_ptr() == model.get_input_embeddings().weight.data_ptr(), "None must mean tied"
    else:
        U = reader.get(head_name)
        assert U.shape == (shape.vocab_size, shape.d_model)
        torch.testing.assert_close(U, head, atol=0, rtol=0)
        assert not torch.equal(U, E)


@pytest.mark.parametrize("arch", ARCHS)
def test_embeddings_resolve_to_the_models_own(tiny_model, arch):
    check_embeddings(tiny_model(arch), arch, EXPECTED_HEAD[arch])


@pytest.mark.parametrize(
    ("arch", "tie", "expected_head"),
    [
        ("gpt2", False, "lm_head.weight"),
        ("bert", False, "cls.predictions.decoder.weight"),
        ("roberta", False, "lm_head.decoder.weight"),
        ("opt", False, "lm_head.weight"),
        ("llama", True, None),
    ],
)
def test_untied_and_tied_heads(tmp_path, arch, tie, expected_head):
    check_embeddings(make_tiny_model(arch, tmp_path, tie=tie), arch, expected_head)


def test_padded_vocabulary_is_the_embedding_rows(tiny_model):
    """Pythia-style: E has more rows than the tokenizer has tokens; vocab_size follows E."""
    path = tiny_model("gpt_neox")
    config = _config(path)
    shape = adapter_for(config).shape(config)
    assert shape.vocab_size == TensorReader(path).get("gpt_neox.embed_in.weight").shape[0]
    assert shape.vocab_size > len(AutoTokenizer.from_pretrained(path))


def test_grouped_query_shape_and_head_dim_from_config(tiny_model):
    llama = _config(tiny_model("llama"))
    mistral = _config(tiny_model("mistral"))
    assert ADAPTERS["llama"].shape(llama).n_kv_heads == 2 and ADAPTERS["llama"].shape(llama).n_heads == 4
    assert ADAPTERS["mistral"].shape(mistral).d_head == 16 != mistral["hidden_size"] // mistral["num_attention_heads"]
    weights = ADAPTERS["llama"].read_layer(TensorReader(tiny_model("llama")), ADAPTERS["llama"].shape(llama), 0)
    # Heads 0 and 1 share key group 0; heads 1 and 2 do not.
    assert torch.equal(weights.W_K[0], weights.W_K[1]) and not torch.equal(weights.W_K[1], weights.W_K[2])


def test_registry_names_and_model_types():
    assert set(ADAPTERS) == {"gpt2", "bert", "roberta", "gpt_neox", "llama", "mistral", "qwen2", "opt", "gptj"}
    assert ADAPTERS["roberta"].name == "roberta" and ADAPTERS["qwen2"].name == "qwen2"
    assert ADAPTERS["qwen2"].shape(
        {
            "model_type": "qwen2",
            "hidden_size": 64,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,
            "num_hidden_layers": 3,
            "intermediate_size": 128,
            "vocab_size": 100,
        }
    ) == ModelShape("qwen2", 3, 8, 2, 64, 8, 128, 100, gated_mlp=True)


def test_unknown_model_type_lists_the_supported_ones():
    with pytest.raises(UnsupportedArchitecture, match="not supported") as info:
        adapter_for({"model_type": "mamba"})
    for model_type in ADAPTERS:
        assert model_type in str(info.value)
    with pytest.raises(UnsupportedArchitecture, match="no 'model_type'"):
        adapter_for({})


def test_repository_code_is_refused():
    config = {"model_type": "phi-custom", "auto_map": {"AutoModelForCausalLM": "modeling_phi.PhiForCausalLM"}}
    with pytest.raises(UnsupportedArchitecture, match="never runs repository code"):
        adapter_for(config)


def test_opt_with_embedding_projection_is_refused():
    config = {
        "model_type": "opt",
        "hidden_size": 1024,
        "word_embed_proj_dim": 512,
        "num_attention_heads": 16,
        "num_hidden_layers": 24,
        "ffn_dim": 4096,
        "vocab_size": 50272,
    }
    with pytest.raises(UnsupportedArchitecture, match="opt-350m"):
        adapter_for(config).shape(config)


def test_checkpoint_of_another_architecture_names_the_missing_tensors(tiny_model):
    reader = TensorReader(tiny_model("gpt2"))
    bert = _config(tiny_model("bert"))
    with pytest.raises(CheckpointError, match="embeddings.word_embeddings.weight"):
        ADAPTERS["bert"].read_layer(reader, ADAPTERS["bert"].shape(bert), 0)


def test_shape_helper_reads_each_adapters_own_keys_and_defaults():
    # GPT-2 names differ from HF's generic ones; n_inner absent -> 4 * d_model.
    gpt2 = {"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 3, "vocab_size": 100}
    shape = adapter_for(gpt2).shape(gpt2)
    assert (shape.d_model, shape.n_heads, shape.n_layers, shape.d_ff, shape.d_head) == (64, 4, 3, 256, 16)
    # BERT has no d_ff default: a missing intermediate_size is an error, not a guess.
    bert = {"model_type": "bert", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 9}
    with pytest.raises(UnsupportedArchitecture, match="intermediate_size"):
        adapter_for(bert).shape(bert)
    llama = dict(bert, model_type="llama", intermediate_size=96, num_key_value_heads=3)
    with pytest.raises(UnsupportedArchitecture, match="key/value groups"):
        adapter_for(llama).shape(llama)
    assert adapter_for(dict(llama, num_key_value_heads=2)).shape(llama | {"num_key_value_heads": 2}).gated_mlp


@pytest.mark.parametrize("per_head", [False, True])
def test_fused_qkv_split_matches_a_row_by_row_reference(per_head):
    """GPT-2 rows are q | k | v; GPT-NeoX rows are head-major (q_h, k_h, v_h per head h)."""
    n_heads, d_head, d_model = 3, 4, 5
    weight = torch.randn(3 * n_heads * d_head, d_model, generator=torch.Generator().manual_seed(1))
    bias = torch.arange(3 * n_heads * d_head, dtype=torch.float32)
    for fused in (weight, bias):
        expected = [[], [], []]  # q, k, v rows in head order
        for head in range(n_heads):
            for part in range(3):
                start = (head * 3 + part) * d_head if per_head else (part * n_heads + head) * d_head
                expected[part].append(fused[start : start + d_head])
        for got, rows in zip(split_fused(fused, n_heads, d_head, per_head=per_head), expected, strict=True):
            assert torch.equal(got, torch.cat(rows))


def test_registry_is_the_read_only_table_of_specs():
    """One generic adapter per model type, each reading its own row of SPECS; neither table can be edited."""
    assert list(ADAPTERS) == list(SPECS)
    for model_type, adapter in ADAPTERS.items():
        assert adapter == ArchitectureAdapter(model_type, SPECS[model_type])
    with pytest.raises(TypeError):
        ADAPTERS["mamba"] = ADAPTERS["llama"]  # type: ignore[index]
    with pytest.raises(TypeError):
        SPECS["mamba"] = SPECS["llama"]  # type: ignore[index]
    assert SPECS["roberta"].prefixes[0] == "roberta." and SPECS["bert"].prefixes[0] == "bert."


# A Llama checkpoint under other names: what a new architecture with Llama's maths would look like.
RENAMED = {
    "model.": "net.",
    "embed_tokens.": "embed.",
    "layers.": "blocks.",
    "self_attn.q_proj": "attn.wq",
    "self_attn.k_proj": "attn.wk",
    "self_attn.v_proj": "attn.wv",
    "self_attn.o_proj": "attn.wo",
    "mlp.gate_proj": "ffn.w1",
    "mlp.up_proj": "ffn.w3",
    "mlp.down_proj": "ffn.w2",
}


def test_a_new_architecture_is_one_spec(tiny_model, tmp_path):
    """Renamed tensors are read by a spec alone, giving exactly what the Llama adapter reads."""
    llama_path = tiny_model("llama")
    tensors = load_file(llama_path / "model.safetensors")
    renamed = {}
    for name, tensor in tensors.items():
        for old, new in RENAMED.items():
            name = name.replace(old, new)
        renamed[name] = tensor
    save_file(renamed, tmp_path / "model.safetensors")
    shutil.copy(llama_path / "config.json", tmp_path / "config.json")
    spec = replace(
        SPECS["llama"],
        prefixes=("net.", ""),
        embedding="embed.weight",
        block="blocks.{layer}.",
        attention=SeparateQKV(q="attn.wq", k="attn.wk", v="attn.wv", out="attn.wo"),
        mlp=MlpNames(keys="ffn.w1", values="ffn.w2", up="ffn.w3"),
    )
    pico, llama = ArchitectureAdapter("pico", spec), ADAPTERS["llama"]
    config = _config(llama_path)
    shape = pico.shape(config)
    assert shape == replace(llama.shape(config), architecture="pico")
    ours, theirs = TensorReader(tmp_path), TensorReader(llama_path)
    assert ours.names.isdisjoint(theirs.names - {"lm_head.weight"})
    for layer in range(shape.n_layers):
        read, reference = pico.read_layer(ours, shape, layer), llama.read_layer(theirs, shape, layer)
        for field, tensor in vars(reference).items():
            if tensor is None:
                assert getattr(read, field) is None
            else:
                torch.testing.assert_close(getattr(read, field), tensor, atol=0, rtol=0)
    assert pico.input_embedding_name(ours, config) == "net.embed.weight"
    assert pico.output_embedding_name(ours, config) == "lm_head.weight"
