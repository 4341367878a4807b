"""Calibration of the verdict rule: how often it says 'better'/'worse'/'equivalent' when it should not.

Each test simulates many experiments with a fixed numpy seed and runs the real
decision procedure (:func:`compare_family`: statistics, Holm, verdict) on them.
Slack is three binomial standard errors of the simulated rate, so with the fixed
seeds the tests are deterministic and a failure means a real miscalibration.
The stated rates are those in the docstring of :mod:`sparsebench.analysis.paired`.
"""

import math

import numpy as np
import pytest
from scipy import stats

from sparsebench.analysis.paired import ALPHA, MIN_SEEDS, VERDICTS, compare_family, paired_t_power, seeds_for_power

SD = 0.01  # spread of per-seed accuracy differences: 1 pp
MARGIN = 0.01


def verdict_rates(samples, margin=MARGIN, higher_is_better=True, min_seeds=MIN_SEEDS) -> dict:
    verdicts = [compare_family([s], higher_is_better, margin, min_seeds=min_seeds)[0]["verdict"]
                for s in samples]
    return {v: verdicts.count(v) / len(verdicts) for v in VERDICTS}


def slack(p: float, runs: int) -> float:
    return 3 * math.sqrt(p * (1 - p) / runs)


def t_test_power(shift_in_sd: float, n: int, alpha: float = ALPHA) -> float:
    """Exact power of the two-sided one-sample t test from the noncentral t distribution."""
    critical = stats.t.ppf(1 - alpha / 2, n - 1)
    noncentrality = shift_in_sd * math.sqrt(n)
    upper = stats.nct.sf(critical, n - 1, noncentrality)
    return float(upper + stats.nct.cdf(-critical, n - 1, noncentrality))


def test_a_a_experiments_rarely_claim_a_difference():
    runs = 2000
    rng = np.random.default_rng(20240301)
    rates = verdict_rates(rng.normal(0.0, SD, size=(runs, 10)))
    assert rates["better"] + rates["worse"] <= ALPHA + slack(ALPHA, runs)
    # Neither side is favoured.
    assert abs(rates["better"] - rates["worse"]) <= slack(ALPHA / 2, runs) * 2


def test_a_a_rate_is_nominal_without_a_margin():
    # Without the equivalence branch the t test decides alone; it is exact for normal
    # differences, so the rate should be alpha itself, not far below (an over-cautious rule
    # would pass the test above trivially).
    runs = 1000
    rng = np.random.default_rng(7)
    rates = verdict_rates(rng.normal(0.0, SD, size=(runs, 10)), margin=None)
    claimed = rates["better"] + rates["worse"]
    assert ALPHA - slack(ALPHA, runs) <= claimed <= ALPHA + slack(ALPHA, runs)


@pytest.mark.parametrize("shift_in_sd, runs, stated", [(1.0, 1000, 0.80), (2.0, 400, 0.99)])
def test_a_real_shift_is_found_at_the_stated_power(shift_in_sd, runs, stated):
    rng = np.random.default_rng(11)
    rates = verdict_rates(rng.normal(shift_in_sd * SD, SD, size=(runs, 10)), margin=None)
    exact = t_test_power(shift_in_sd, 10)
    assert exact >= stated  # the docstring's claim
    assert rates["better"] >= stated - slack(stated, runs)
    assert abs(rates["better"] - exact) <= slack(exact, runs) + 1e-9
    assert rates["worse"] == 0.0


def test_with_three_seeds_power_is_low_as_stated():
    # The test itself, below the minimum for verdicts (min_seeds=2 lets it decide).
    rng = np.random.default_rng(3)
    runs = 600
    rates = verdict_rates(rng.normal(SD, SD, size=(runs, 3)), margin=None, min_seeds=2)
    exact = t_test_power(1.0, 3)
    assert exact == pytest.approx(0.18, abs=0.01)
    assert abs(rates["better"] - exact) <= slack(exact, runs)


def test_holm_keeps_the_family_wise_rate_over_sparsities():
    runs, sparsities = 500, 4
    rng = np.random.default_rng(5)
    any_claim = 0
    for _ in range(runs):
        family = compare_family(list(rng.normal(0.0, SD, size=(sparsities, 10))), margin=None)
        any_claim += any(row["verdict"] in ("better", "worse") for row in family)
    assert any_claim / runs <= ALPHA + slack(ALPHA, runs)


def test_equivalence_is_rarely_claimed_at_the_margin():
    # True difference exactly at the margin: 'equivalent' is a false claim; TOST keeps it at alpha.
    runs = 600
    rng = np.random.default_rng(13)
    rates = verdict_rates(rng.normal(MARGIN, 0.5 * SD, size=(runs, 20)))
    assert rates["equivalent"] <= ALPHA + slack(ALPHA, runs)


def test_min_seeds_is_the_smallest_n_with_80_percent_power_for_one_sd():
    assert MIN_SEEDS == 10 == seeds_for_power(1.0, 0.80, ALPHA, floor=5)
    assert t_test_power(1.0, MIN_SEEDS) >= 0.80 > t_test_power(1.0, MIN_SEEDS - 1)
    assert paired_t_power(1.0, 7) == pytest.approx(t_test_power(1.0, 7), abs=1e-12)
    assert seeds_for_power(shift_in_sd=3.0) == 5  # never fewer than 5, even for huge shifts


def test_below_min_seeds_no_experiment_claims_anything():
    # A huge true shift (5 SD) with 3..MIN_SEEDS-1 seeds: the tests would often be significant,
    # the verdict is still withheld.
    rng = np.random.default_rng(17)
    for n in range(1, MIN_SEEDS):
        rates = verdict_rates(rng.normal(5 * SD, SD, size=(50, n)))
        assert rates["too few seeds"] == 1.0, n
