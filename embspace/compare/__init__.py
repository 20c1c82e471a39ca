"""Two models read side by side in one vocabulary: what fine-tuning changed (`diff`: every unit's change,
`unit_diff`: one unit's change as tokens or token pairs) and which layers correspond (`align`).

`refusals` first: both need one vocabulary, a diff also one shape.
"""

from embspace.compare.align import PARTS, Alignment, align_layers, centred_kernel, correlations
from embspace.compare.diff import DIFF_KINDS, UnitChange, diff_units, factored_change
from embspace.compare.refusals import ModelsDiffer, check_same_shape, check_same_vocabulary
from embspace.compare.unit_diff import UnitDiff, head_diff_factors, unit_diff

__all__ = [
    "DIFF_KINDS",
    "PARTS",
    "Alignment",
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
    "unit_diff",
]
