"""Two models read side by side in one vocabulary: what fine-tuning changed (`diff`: every unit's change,
`unit_diff`: one unit's change as tokens or token pairs) and which layers correspond (`align`, and for one
row of A the most correlated rows of B: `most_correlated_rows`).

`refusals` first: both need one vocabulary, a diff also one shape.
"""

from embspace.compare.align import (
    PARTS,
    Alignment,
    CorrelatedRow,
    align_layers,
    centred_kernel,
    correlations,
    most_correlated_rows,
)
from embspace.compare.diff import DIFF_KINDS, UnitChange, diff_units, factored_change
from embspace.compare.refusals import ModelsDiffer, check_same_shape, check_same_vocabulary
from embspace.compare.unit_diff import UnitDiff, head_diff_factors, unit_diff

__all__ = [
    "DIFF_KINDS",
    "PARTS",
    "Alignment",
    "CorrelatedRow",
    "ModelsDiffer",
    "UnitChange",
    "UnitDiff",
    "align_layers",
    "centred_kernel",
    "check_same_shape",
    "check_same_vocabulary",
    "correlations",
    "diff_units",
    "factored_change",
    "head_diff_factors",
    "most_correlated_rows",
    "unit_diff",
]
