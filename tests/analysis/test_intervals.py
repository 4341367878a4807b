import math

import pytest
from scipy import stats

from sparsebench.analysis.intervals import finite_values, is_constant, mean_ci, sample_sd


def test_mean_ci_is_the_student_t_interval():
    values = [0.81, 0.79, 0.84, 0.80]
    mean, low, high = mean_ci(values)
    expected = stats.t.interval(0.95, 3, loc=sum(values) / 4, scale=stats.sem(values))
    assert (low, high) == pytest.approx(expected) and mean == pytest.approx(0.81)


def test_nan_is_dropped_before_averaging():
    assert mean_ci([0.8, math.nan, 0.9])[0] == pytest.approx(0.85)
    assert all(math.isnan(v) for v in mean_ci([math.nan]))
    assert finite_values([math.inf, 1.0]).tolist() == [1.0]
    assert math.isnan(sample_sd([1.0]))


def test_constant_values_collapse_the_interval():
    assert mean_ci([0.1, 0.1, 0.1]) == pytest.approx((0.1, 0.1, 0.1))
    assert is_constant(finite_values([0.3, 0.1 + 0.2]))
