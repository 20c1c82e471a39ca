"""The table of supported architectures: each config.json `model_type`'s names and split rules, and `adapter_for`.

Adding an architecture: add an `ArchitectureSpec` to `SPECS`; write code (a new attention rule in
`generic.py`, a `check_config`) only for what no existing rule covers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from embspace.model.adapters.base import Adapter, ShapeKeys, UnsupportedArchitecture, config_value
from embspace.model.adapters.generic import ArchitectureAdapter, ArchitectureSpec, FusedQKV, MlpNames, SeparateQKV

# GPT-2 and GPT-J name their sizes the GPT way; n_inner absent means 4 * d_model.
GPT_KEYS = ShapeKeys(
    d_model=("n_embd", "hidden_size"),
    n_heads=("n_head", "num_attention_heads"),
    n_layers=("n_layer", "num_hidden_layers"),
    d_ff=("n_inner",),
    d_ff_default=4,
)


def refuse_embedding_projection(config: dict) -> None:
    """OPT: refuse a `word_embed_proj_dim` other than `hidden_size`.

    opt-350m embeds tokens in a smaller space that enters the residual stream through
    `project_in`, so E is not [vocab, d_model].
    """
    d_model = config_value(config, "hidden_size")
    embedding_dim = config_value(config, "word_embed_proj_dim", default=d_model)
    if embedding_dim != d_model:
        raise UnsupportedArchitecture(
            f"this OPT model embeds tokens in {embedding_dim} dimensions and projects them to "
            f"its {d_model}-dimensional residual stream (like facebook/opt-350m); embspace "
            "does not map that projection. Pick another OPT size (125m, 1.3b, 2.7b, ...)."
        )


BERT = ArchitectureSpec(
    # Some RoBERTa derivatives were converted from BERT code, so each accepts both spellings.
    prefixes=("bert.", "roberta.", ""),
    embedding="embeddings.word_embeddings.weight",
    # Masked-LM decoders of BertForMaskedLM / BertForPreTraining and RobertaForMaskedLM; usually
    # tied to the input embedding and then not saved at all.
    lm_heads=("cls.predictions.decoder.weight", "lm_head.decoder.weight"),
    block="encoder.layer.{layer}.",
    attention=SeparateQKV(
        q="attention.self.query", k="attention.self.key", v="attention.self.value", out="attention.output.dense"
    ),
    mlp=MlpNames(keys="intermediate.dense", values="output.dense"),
)

# Llama, Mistral and Qwen2: grouped-query K/V, gated MLP, head_dim may differ from d_model / n_heads.
LLAMA = ArchitectureSpec(
    keys=ShapeKeys(n_kv_heads=("num_key_value_heads",), head_dim=("head_dim",)),
    prefixes=("model.", ""),
    embedding="embed_tokens.weight",
    block="layers.{layer}.",
    attention=SeparateQKV(q="self_attn.q_proj", k="self_attn.k_proj", v="self_attn.v_proj", out="self_attn.o_proj"),
    mlp=MlpNames(keys="mlp.gate_proj", values="mlp.down_proj", up="mlp.up_proj"),
)

SPECS: Mapping[str, ArchitectureSpec] = MappingProxyType(
    {
        # Conv1D weights [in, out]; c_attn's rows are q | k | v; LM head tied to wte unless saved.
        "gpt2": ArchitectureSpec(
            keys=GPT_KEYS,
            prefixes=("transformer.", ""),
            embedding="wte.weight",
            block="h.{layer}.",
            stored_in_out=True,
            attention=FusedQKV(qkv="attn.c_attn", out="attn.c_proj", per_head=False),
            mlp=MlpNames(keys="mlp.c_fc", values="mlp.c_proj"),
        ),
        "bert": BERT,
        "roberta": replace(BERT, prefixes=("roberta.", "bert.", "")),
        # GPT-NeoX / Pythia: query_key_value rows head-major [n_heads, 3, d_head]; untied embed_out.
        "gpt_neox": ArchitectureSpec(
            keys=ShapeKeys(d_ff_default=4),
            prefixes=("gpt_neox.", ""),
            embedding="embed_in.weight",
            lm_heads=("embed_out.weight",),
            block="layers.{layer}.",
            attention=FusedQKV(qkv="attention.query_key_value", out="attention.dense", per_head=True),
            mlp=MlpNames(keys="mlp.dense_h_to_4h", values="mlp.dense_4h_to_h"),
        ),
        "llama": LLAMA,
        "mistral": LLAMA,
        "qwen2": LLAMA,
        # OPT multiplies the *output* of q_proj by d_head ** -0.5 (then attends with scaling 1.0).
        # W_Q/b_Q are the raw q_proj parameters, so q . k carries the usual 1/sqrt(d_head).
        "opt": ArchitectureSpec(
            keys=ShapeKeys(d_ff=("ffn_dim",)),
            check_config=refuse_embedding_projection,
            prefixes=("model.decoder.", "decoder.", ""),
            embedding="embed_tokens.weight",
            block="layers.{layer}.",
            attention=SeparateQKV(
                q="self_attn.q_proj", k="self_attn.k_proj", v="self_attn.v_proj", out="self_attn.out_proj"
            ),
            mlp=MlpNames(keys="fc1", values="fc2"),
        ),
        # GPT-J: bias-free q/k/v/out projections, untied LM head (with a bias).
        "gptj": ArchitectureSpec(
            keys=GPT_KEYS,
            prefixes=("transformer.", ""),
            embedding="wte.weight",
            block="h.{layer}.",
            attention=SeparateQKV(q="attn.q_proj", k="attn.k_proj", v="attn.v_proj", out="attn.out_proj"),
            mlp=MlpNames(keys="mlp.fc_in", values="mlp.fc_out"),
        ),
    }
)

ADAPTERS: Mapping[str, Adapter] = MappingProxyType(
    {model_type: ArchitectureAdapter(model_type, spec) for model_type, spec in SPECS.items()}
)


def adapter_for(config: dict) -> Adapter:
    """The adapter for a parsed config.json, chosen by its `model_type`."""
    model_type = config.get("model_type")
    supported = ", ".join(sorted(ADAPTERS))
    if model_type in ADAPTERS:
        return ADAPTERS[model_type]
    if model_type is None:
        raise UnsupportedArchitecture(
            f"config.json has no 'model_type', so the architecture is unknown; "
            f"embspace supports the model types: {supported}."
        )
    if "auto_map" in config:
        raise UnsupportedArchitecture(
            f"model type {model_type!r} is defined by code inside the model repository "
            f"(config.json has 'auto_map'); embspace never runs repository code. "
            f"Supported model types: {supported}."
        )
    raise UnsupportedArchitecture(
        f"model type {model_type!r} is not supported; embspace supports the model types: {supported}. "
        "Pick a model of one of these types, or add a row to SPECS in embspace/model/adapters/specs.py."
    )
