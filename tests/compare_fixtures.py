"""Tiny model pairs for the compare tests: a BERT base and copies of it, saved the way a fine-tune is shipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForMaskedLM, AutoTokenizer

PLANTED_NEURON = (1, 7)  # (layer, neuron) whose value vector is pushed toward PLANTED_TOKENS
PLANTED_HEAD = (0, 2)  # (layer, head) whose OV circuit gets a rank-1 change
PLANTED_TOKENS = ("dog", "kot")  # words of the tiny tokenizer (tokenizer_factory)


def _copy(base: Path, directory: Path, edit) -> Path:
    """Load `base` with transformers, apply edit(model, tokenizer) under no_grad, save to `directory`."""
    model = AutoModelForMaskedLM.from_pretrained(str(base)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    with torch.no_grad():
        edit(model, tokenizer)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


def planted_ids(tokenizer) -> list[int]:
    return [tokenizer.convert_tokens_to_ids(token) for token in PLANTED_TOKENS]


def make_tuned(base: Path, directory: Path) -> Path:
    """A "fine-tune" of `base`: small noise everywhere but the embeddings, PLANTED_NEURON's value vector
    pushed toward PLANTED_TOKENS' embeddings, PLANTED_HEAD's W_O row 0 moved (a rank-1 change of W_V W_O)."""

    def edit(model, tokenizer):
        generator = torch.Generator().manual_seed(1)
        for name, parameter in model.named_parameters():
            if parameter.ndim == 2 and "embeddings" not in name:
                parameter.add_(1e-3 * parameter.std() * torch.randn(parameter.shape, generator=generator))
        embeddings = model.bert.embeddings.word_embeddings.weight  # [V, d]
        layer, neuron = PLANTED_NEURON
        target = torch.zeros(embeddings.shape[0], 1)
        target[planted_ids(tokenizer)] = 1.0
        push = torch.linalg.lstsq(embeddings, target).solution[:, 0]  # E push ≈ 1 on the planted tokens, 0 elsewhere
        values = model.bert.encoder.layer[layer].output.dense.weight  # [d, d_ff]: neuron i's value is column i
        values[:, neuron] += 3 * values[:, neuron].norm() * push / push.norm()
        layer, head = PLANTED_HEAD
        d_head = model.config.hidden_size // model.config.num_attention_heads
        w_o = model.bert.encoder.layer[
            layer
        ].attention.output.dense.weight  # [d_out, d_in]: W_O^h = cols of h, transposed
        w_o[:, head * d_head] += 3 * w_o.norm() * torch.randn(w_o.shape[0], generator=generator) / w_o.shape[0] ** 0.5

    return _copy(base, directory, edit)


def make_permuted(base: Path, directory: Path) -> Path:
    """`base` with its transformer blocks in reverse order."""

    def edit(model, tokenizer):
        layers = model.bert.encoder.layer
        model.bert.encoder.layer = torch.nn.ModuleList(list(layers)[::-1])

    return _copy(base, directory, edit)


def make_wider(base: Path, directory: Path) -> Path:
    """A model with `base`'s tokenizer and a wider FFN: same vocabulary, different shape."""
    model = AutoModelForMaskedLM.from_pretrained(str(base))
    config = model.config
    config.intermediate_size *= 2
    AutoModelForMaskedLM.from_config(config).save_pretrained(directory, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (base / name).exists():
            shutil.copy(base / name, directory / name)
    return directory


MINILM_PLANTED = (2, 3)  # (layer, head) of MiniLM whose W_O gets a rank-1 change in make_tuned_minilm


def make_tuned_minilm(minilm_dir: Path, directory: Path) -> Path:
    """MiniLM with head MINILM_PLANTED's W_O row 0 moved (W_V W_O changes by rank 1), every other tensor kept."""
    shutil.copytree(minilm_dir, directory, dirs_exist_ok=True)
    (weights_file,) = directory.glob("*.safetensors")
    tensors = load_file(weights_file)
    layer, head = MINILM_PLANTED
    (name,) = [n for n in tensors if n.endswith(f"layer.{layer}.attention.output.dense.weight")]
    w_o = tensors[name].clone()  # [d_out, d_in]: head h's W_O is columns h*32 .. h*32+31, transposed
    noise = torch.randn(w_o.shape[0], generator=torch.Generator().manual_seed(0))
    w_o[:, head * 32] += 2 * w_o[:, head * 32].norm() * noise
    tensors[name] = w_o
    save_file(tensors, weights_file, metadata={"format": "pt"})
    return directory
