"""Architecture adapters: each config.json `model_type`'s checkpoint names and split rules, as data.

base (the `Adapter` protocol, config reading, per-head reshaping) -> generic (`ArchitectureSpec` and
the one adapter that reads any spec) -> specs (the table `SPECS` -> `ADAPTERS`, and `adapter_for`).
"""

from __future__ import annotations

from embspace.model.adapters.base import Adapter, ShapeKeys, UnsupportedArchitecture
from embspace.model.adapters.generic import ArchitectureAdapter, ArchitectureSpec, FusedQKV, MlpNames, SeparateQKV
from embspace.model.adapters.specs import ADAPTERS, SPECS, adapter_for

__all__ = [
    "ADAPTERS",
    "SPECS",
    "Adapter",
    "ArchitectureAdapter",
    "ArchitectureSpec",
    "FusedQKV",
    "MlpNames",
    "SeparateQKV",
    "ShapeKeys",
    "UnsupportedArchitecture",
    "adapter_for",
]
