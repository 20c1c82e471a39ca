"""Architecture adapters, one module each, registered by config.json's `model_type`.

Adding an architecture: write `adapters/<name>.py` with a class satisfying `Adapter` and add
its model types to `ADAPTERS` below.
"""

from __future__ import annotations

from embspace.model.adapters.base import Adapter, UnsupportedArchitecture
from embspace.model.adapters.bert import BertAdapter
from embspace.model.adapters.gpt2 import GPT2Adapter
from embspace.model.adapters.gpt_neox import GPTNeoXAdapter
from embspace.model.adapters.gptj import GPTJAdapter
from embspace.model.adapters.llama import LlamaAdapter
from embspace.model.adapters.opt import OPTAdapter

__all__ = ["ADAPTERS", "Adapter", "UnsupportedArchitecture", "adapter_for"]

ADAPTERS: dict[str, Adapter] = {
    "gpt2": GPT2Adapter(),
    "bert": BertAdapter("bert"),
    "roberta": BertAdapter("roberta"),
    "gpt_neox": GPTNeoXAdapter(),
    "llama": LlamaAdapter("llama"),
    "mistral": LlamaAdapter("mistral"),
    "qwen2": LlamaAdapter("qwen2"),
    "opt": OPTAdapter(),
    "gptj": GPTJAdapter(),
}


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
        "Pick a model of one of these types, or add an adapter in embspace/adapters/."
    )
