"""Tiny random models of every supported architecture, built and saved in the test session.

Each is saved the way the Hub ships real ones (config.json + model.safetensors + a fast
tokenizer), so embspace reads them through exactly the code paths used for real models.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizer_factory import ROBERTA_SPECIALS, byte_level_tokenizer, metaspace_tokenizer, wordpiece_tokenizer
from transformers import (
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    BertConfig,
    GPT2Config,
    GPTJConfig,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    OPTConfig,
    PretrainedConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
    RobertaConfig,
)

ARCHS = ("gpt2", "bert", "roberta", "gpt_neox", "llama", "mistral", "qwen2", "opt", "gptj")
MASKED_LM = frozenset({"bert", "roberta"})
ROTARY = frozenset({"gpt_neox", "llama", "mistral", "qwen2", "gptj"})

D_MODEL, N_HEADS, N_LAYERS, N_POSITIONS = 32, 4, 2, 64


def make_tiny_model(
    arch: str,
    directory: Path,
    *,
    tie: bool | None = None,
    bare: bool = False,
    max_shard_size: str | None = None,
) -> Path:
    """Build a random 2-layer `arch` model with a freshly trained tokenizer and save it to `directory`.

    tie: override the architecture's default `tie_word_embeddings`.
    bare: save the base model (`GPT2Model`, `BertModel`, ...) whose tensor names have no prefix.
    max_shard_size: e.g. "20KB" to save sharded safetensors with an index.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown tiny architecture {arch!r}; choose one of {ARCHS}")
    tokenizer = _tokenizer(arch)
    config = _config(arch, tokenizer)
    if tie is not None:
        config.tie_word_embeddings = tie
    torch.manual_seed(ARCHS.index(arch))
    auto = AutoModelForMaskedLM if arch in MASKED_LM else AutoModelForCausalLM
    model = auto.from_config(config).eval()
    with torch.no_grad():
        # Transformers initialises biases to zero and norms to one; noise makes every bias
        # matter, so an adapter that drops or misplaces one fails the forward-pass tests.
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    if bare:
        model = model.base_model
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True, max_shard_size=max_shard_size or "5GB")
    tokenizer.save_pretrained(directory)
    return directory


def _tokenizer(arch: str) -> PreTrainedTokenizerFast:
    if arch == "bert":
        return wordpiece_tokenizer()
    if arch in ("llama", "mistral", "qwen2"):
        return metaspace_tokenizer()
    if arch == "roberta":
        return byte_level_tokenizer(400, ROBERTA_SPECIALS)
    tokenizer = byte_level_tokenizer()
    if arch == "opt":
        tokenizer.add_special_tokens({"bos_token": "</s>", "eos_token": "</s>", "pad_token": "<pad>"})
    return tokenizer


def _config(arch: str, tokenizer: PreTrainedTokenizerFast) -> PretrainedConfig:
    vocab = len(tokenizer)
    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    gpt = {"n_embd": D_MODEL, "n_head": N_HEADS, "n_layer": N_LAYERS, "n_positions": N_POSITIONS}
    hf = {
        "hidden_size": D_MODEL,
        "num_attention_heads": N_HEADS,
        "num_hidden_layers": N_LAYERS,
        "max_position_embeddings": N_POSITIONS,
    }
    if arch == "gpt2":
        return GPT2Config(vocab_size=vocab, n_inner=96, **gpt, **ids)  # n_inner != 4 * d_model on purpose
    if arch == "gptj":
        return GPTJConfig(vocab_size=vocab, rotary_dim=4, **gpt, **ids)  # n_inner None -> 4 * d_model
    if arch == "bert":
        return BertConfig(vocab_size=vocab, intermediate_size=64, **hf, pad_token_id=tokenizer.pad_token_id)
    if arch == "roberta":
        return RobertaConfig(vocab_size=vocab, intermediate_size=64, **{**hf, "max_position_embeddings": 66}, **ids)
    if arch == "gpt_neox":
        # Pythia pads its embedding to a multiple of 128 beyond the tokenizer's size.
        padded = -(-vocab // 128) * 128
        return GPTNeoXConfig(vocab_size=padded, intermediate_size=128, **hf, **ids)
    if arch == "llama":
        return LlamaConfig(vocab_size=vocab, intermediate_size=64, num_key_value_heads=2, **hf, **ids)
    if arch == "mistral":
        # head_dim 16 != d_model / n_heads = 8: the adapter must read it from config.json.
        return MistralConfig(vocab_size=vocab, intermediate_size=64, num_key_value_heads=2, head_dim=16, **hf, **ids)
    if arch == "qwen2":
        return Qwen2Config(vocab_size=vocab, intermediate_size=64, num_key_value_heads=2, **hf, **ids)
    if arch == "opt":
        return OPTConfig(vocab_size=vocab, ffn_dim=64, word_embed_proj_dim=D_MODEL, **hf, **ids)
    raise AssertionError(arch)
