"""Confidence intervals for a mean: the one interval every table and figure uses.

All intervals in sparsebench are two-sided Student-t intervals for the mean of
independent values (seeds), computed by ``scipy.stats.ttest_1samp``. For paired
comparisons the values are the per-seed differences, which makes it the paired
t interval.

>>> mean, low, high = mean_ci([0.80, 0.82, 0.81])
>>> round(mean, 3), round(low, 3), round(high, 3)
(0.81, 0.785, 0.835)
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy import stats

NAN = float("nan")


def finite_values(values: Iterable[float]) -> np.ndarray:
    """The values as a float array with NaN and inf removed.

    Every analysis calls this before averaging, so a NaN never reaches a mean.

    >>> finite_values([1.0, float("nan"), 2.0]).tolist()
    [1.0, 2.0]
    """
    array = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    return array[np.isfinite(array)]


def is_constant(values: np.ndarray) -> bool:
    """True when all values are equal up to floating-point noise.

    A t statistic divides by the standard deviation; values such as
    ``[0.1, 0.1, 0.1]`` have a standard deviation of ~1e-17 rather than 0 after
    rounding, which would give a meaningless p-value instead of an undefined one.

    >>> is_constant(np.array([0.1, 0.1, 0.1])), is_constant(np.array([0.1, 0.2]))
    (True, False)
    """
    if values.size == 0:
        return True
    scale = max(float(np.max(np.abs(values))), 1e-12)
    return float(np.ptp(values)) <= 1e-9 * scale


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two-sided Student-t confidence interval of the mean.

    NaNs are dropped first. With one value the interval is undefined (NaN); with
    constant values it collapses to the mean.

    >>> mean_ci([1.0])
    (1.0, nan, nan)
    """
    array = finite_values(values)
    if array.size == 0:
        return NAN, NAN, NAN
    mean = float(np.mean(array))
    if array.size < 2:
        return mean, NAN, NAN
    if is_constant(array):
        return mean, mean, mean
    interval = stats.ttest_1samp(array, 0.0).confidence_interval(confidence)
    return mean, float(interval.low), float(interval.high)


def sample_sd(values: Iterable[float]) -> float:
    """Sample standard deviation (ddof=1) of the finite values; NaN below two values.

    >>> sample_sd([1.0, 3.0])
    1.4142135623730951
    """
    array = finite_values(values)
    if array.size < 2:
        return NAN
    return float(np.std(array, ddof=1))

