"""Tolerances of the reference scripts' --check: whether regenerated outputs drifted from the
stored fixtures by more than float32 rounding.

The stored values were made on another machine; a CPU with other kernels (another BLAS, no
AVX-512) rounds matrix products and reductions differently in the last bits, which is not
drift. A changed seed, shape or model is, and moves the values by far more.
"""
import math

FLOAT32_EPSILON = 2.0**-23


def same_loss(a, b):
    """Equal up to a few float32 roundings of a loss (a float32 reduction)."""
    return math.isclose(a, b, rel_tol=4 * FLOAT32_EPSILON, abs_tol=1e-6)


def logits_drift(stored, fresh):
    """The largest difference, and whether it is more than 8 units in the last place of the
    largest stored logit."""
    worst = max(abs(a - b) for a, b in zip(stored, fresh))
    scale = max(1.0, max(abs(a) for a in stored))
    return worst, worst > 8 * FLOAT32_EPSILON * scale
