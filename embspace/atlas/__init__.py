"""The atlas: a whole model's heads and neurons computed once and stored as Parquet, and its reader."""

from embspace.atlas.build import DEFAULT_K, BuildSummary, build_atlas, parse_layers
from embspace.atlas.manifest import AtlasError, describe
from embspace.atlas.read import (
    APP_ATLASES,
    Atlas,
    FilteredView,
    NeuronPlaces,
    StoredPairs,
    filter_pairs,
    filter_tokens,
    find_atlas,
)

__all__ = [
    "APP_ATLASES",
    "DEFAULT_K",
    "Atlas",
    "AtlasError",
    "BuildSummary",
    "FilteredView",
    "NeuronPlaces",
    "StoredPairs",
    "build_atlas",
    "describe",
    "filter_pairs",
    "filter_tokens",
    "find_atlas",
    "parse_layers",
]
