"""Numeric constants of exact float32 screening: the unit roundoffs that rounding-error bounds are built from.

A bound of the form |computed - exact| <= c * u * |a| |b| (Higham, Accuracy and Stability of Numerical
Algorithms, ch. 3) needs the unit roundoff u of each format the computation passes through; every
module that proves such a bound reads it here.
"""

from __future__ import annotations

FLOAT32_UNIT_ROUNDOFF = 2.0**-24  # u of float32 (24-bit significand): |fl(x) - x| <= u |x|
BFLOAT16_UNIT_ROUNDOFF = 2.0**-8  # u of bfloat16 (8-bit significand, float32's exponent range)
