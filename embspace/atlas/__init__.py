"""The atlas: a whole model's heads and neurons computed once and stored as Parquet, and its reader."""

from embspace.atlas.build import DEFAULT_K, BuildSummary, build_atlas, parse_layers
from embspace.atlas.manifest import AtlasError
from embspace.atlas.read import (
    Atlas,
    FilteredView,
    NeuronPlaces,
    StoredPairs,
    filter_pairs,
    filter_tokens,
    find_atlas,
)

__all__ = [
    "DEFAULT_K",
    "Atlas",
    "AtlasError",
    "BuildSummary",
    "FilteredView",
    "NeuronPlaces",
    "StoredPairs",
    "build_atlas",
    "filter_pairs",
    "filter_tokens",
    "find_atlas",
    "parse_layers",
]
