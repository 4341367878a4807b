import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sparsebench.analysis import AnalysisInputError, holm, paired_comparison
from sparsebench.analysis.paired import (
    IDENTICAL,
    MIN_SEEDS,
    TOO_FEW_SEEDS,
    compare_family,
    decide,
    difference_statistics,
    min_wilcoxon_p,
    seeds_needed_for_margin,
    tost_p,
)

from .frames import trials_from

METHOD = np.array([0.812, 0.805, 0.821, 0.799, 0.816, 0.808])
RANDOM = np.array([0.801, 0.806, 0.809, 0.790, 0.812, 0.800])


def test_statistics_match_scipy_on_fixed_pairs():
    s = difference_statistics(METHOD - RANDOM, margin=0.01)
    d = METHOD - RANDOM
    assert s["n"] == 6
    assert s["mean_diff"] == pytest.approx(d.mean())
    assert s["sd_diff"] == pytest.approx(d.std(ddof=1))
    assert s["p_t"] == pytest.approx(stats.ttest_rel(METHOD, RANDOM).pvalue)
    assert s["p_wilcoxon"] == pytest.approx(stats.wilcoxon(METHOD, RANDOM).pvalue)
    # 95% paired t interval by hand: mean ± t_{0.975, n-1} · sd / sqrt(n)
    half = stats.t.ppf(0.975, 5) * d.std(ddof=1) / math.sqrt(6)
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))


def test_tost_is_the_larger_of_two_one_sided_paired_t_tests():
    d = METHOD - RANDOM
    lower = stats.ttest_rel(METHOD + 0.01, RANDOM, alternative="greater").pvalue  # H0: mean <= -0.01
    upper = stats.ttest_rel(METHOD - 0.01, RANDOM, alternative="less").pvalue  # H0: mean >= +0.01
    assert tost_p(d, 0.01) == pytest.approx(max(lower, upper))
    # Hand value: t = (mean - 0.01) / (sd / sqrt(n)) for the binding upper bound.
    t_upper = (d.mean() - 0.01) / (d.std(ddof=1) / math.sqrt(6))
    assert tost_p(d, 0.01) == pytest.approx(stats.t.cdf(t_upper, 5))


def test_holm_matches_a_hand_computed_example():
    # sorted p: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06), 0.04 (x1 -> max(0.04, 0.06) = 0.06)
    assert holm([0.03, 0.01, 0.04, 0.02]).tolist() == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.9]).tolist() == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]).tolist() == [0.02]  # a family of one is unadjusted


def test_holm_ignores_nan_and_keeps_it():
    adjusted = holm([0.01, math.nan, 0.04])
    assert adjusted[0] == pytest.approx(0.02) and adjusted[2] == pytest.approx(0.04)
    assert math.isnan(adjusted[1])
    assert np.isnan(holm([math.nan])).all() and holm([]).size == 0


def test_wilcoxon_floor_for_few_seeds():
    assert min_wilcoxon_p(3) == 0.25 and min_wilcoxon_p(5) == 0.0625
    # the floor is what scipy's exact test gives for all-positive differences
    assert stats.wilcoxon([1.0, 2.0, 3.0]).pvalue == pytest.approx(min_wilcoxon_p(3))


@pytest.mark.parametrize("diffs", [[], [0.01], [0.0, 0.0, 0.0], [0.02, 0.02, 0.02]])
def test_degenerate_samples_give_nan_not_errors(diffs):
    s = difference_statistics(diffs)
    assert math.isnan(s["p_t"]) and math.isnan(s["p_tost"])
    if len(diffs) < 2 or not any(diffs):
        assert math.isnan(s["p_wilcoxon"])
    row = compare_family([diffs], min_seeds=2)[0]
    expected = {0: TOO_FEW_SEEDS, 1: TOO_FEW_SEEDS}.get(len(diffs), IDENTICAL if not any(diffs) else "inconclusive")
    assert row["verdict"] == expected
    assert ("n=" in row["reason"]) or ("equal" in row["reason"]) or ("exactly 0" in row["reason"])


def test_n_equal_one_reason():
    assert compare_family([[0.05]])[0]["reason"] == f"n=1; a verdict needs at least {MIN_SEEDS} paired seeds"
    assert compare_family([[0.05]], min_seeds=2)[0]["verdict"] == TOO_FEW_SEEDS


def test_nan_differences_are_dropped_not_averaged():
    s = difference_statistics([0.01, math.nan, 0.03])
    assert s["n"] == 2 and s["mean_diff"] == pytest.approx(0.02)


def test_direction_for_a_lower_is_better_metric():
    lower_loss = [-0.05, -0.06, -0.055, -0.052, -0.058]
    assert compare_family([lower_loss], False, margin=None, min_seeds=2)[0]["verdict"] == "better"
    assert compare_family([lower_loss], True, margin=None, min_seeds=2)[0]["verdict"] == "worse"


def test_equivalence_wins_over_a_significant_but_tiny_difference():
    tiny = 0.002 + np.array([0.0001, -0.0001, 0.0002, -0.0002, 0.0, 0.0001, -0.0001, 0.0])
    row = compare_family([tiny], margin=0.01, min_seeds=2)[0]
    assert row["p_t_holm"] < 0.05 and row["p_tost_holm"] < 0.05
    assert row["verdict"] == "equivalent"
    assert "significant but smaller than the margin" in row["reason"]


def test_equivalence_needs_enough_seeds():
    # The same spread and a zero mean difference: 3 seeds cannot show ±1 pp equivalence, 20 can.
    pattern = np.array([0.006, -0.006, 0.0])
    few = compare_family([pattern], margin=0.01, min_seeds=2)[0]
    assert few["verdict"] == "inconclusive"
    assert few["reason"].startswith("more seeds needed for the margin")
    needed = seeds_needed_for_margin(few["sd_diff"], 0.01)
    assert needed is not None and needed > 3
    many = compare_family([np.tile(pattern, 7)], margin=0.01)[0]
    assert many["verdict"] == "equivalent"


def test_seeds_needed_is_the_first_n_whose_90_ci_fits_the_margin():
    n = seeds_needed_for_margin(sd=0.01, margin=0.01)
    half = lambda k: stats.t.ppf(0.95, k - 1) * 0.01 / math.sqrt(k)  # noqa: E731
    assert half(n) < 0.01 <= half(n - 1)


def test_ci_spans_the_margin_reason():
    # 20 seeds are enough for a ±1 pp margin at sd 1.5 pp, but a mean of +0.5 pp with that
    # spread is neither significant (t = 1.49) nor inside the margin (TOST p = 0.076).
    z = np.linspace(-1, 1, 20)
    d = 0.005 + 0.015 * (z - z.mean()) / z.std(ddof=1)
    row = compare_family([d], margin=0.01)[0]
    assert row["p_t_holm"] == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
    assert row["p_t_holm"] > 0.05 and row["p_tost_holm"] > 0.05
    assert seeds_needed_for_margin(row["sd_diff"], 0.01) <= 20
    assert row["verdict"] == "inconclusive"
    assert row["reason"] == "no significant difference, and the CI spans the margin ±0.01"


def test_decide_uses_adjusted_p_values():
    row = dict(n=10, mean_diff=0.02, sd_diff=0.01, p_t_holm=0.06, p_wilcoxon_holm=0.25, p_tost_holm=0.9)
    assert decide(row, higher_is_better=True, margin=0.01)[0] == "inconclusive"
    assert decide({**row, "p_t_holm": 0.01}, higher_is_better=True, margin=0.01)[0] == "better"


def test_holm_is_applied_across_sparsities_in_a_family():
    a = [0.011, 0.012, 0.009, 0.010, 0.013]
    b = [0.001, -0.02, 0.03, -0.01, 0.002]
    rows = compare_family([a, b], margin=None)
    raw = [r["p_t"] for r in rows]
    assert [r["p_t_holm"] for r in rows] == pytest.approx(holm(raw).tolist())


def test_paired_comparison_pairs_by_seed_and_excludes_diverged():
    trials = trials_from({
        ("random", 0.5): [0.80, 0.81, 0.79, 0.80, 0.82],
        ("mine", 0.5): [0.83, 0.84, None, 0.83, 0.85],  # seed 2 diverged
        ("random", 0.9): [0.70, 0.71, 0.69, 0.70, 0.72],
        ("mine", 0.9): [0.70, 0.72, 0.69, 0.71, 0.72],
    })
    table = paired_comparison(trials, margin=0.01)
    assert list(table["sparsity"]) == [0.5, 0.9] and set(table["method"]) == {"mine"}
    at_05 = table.iloc[0]
    assert at_05["n"] == 4 and at_05["n_excluded"] == 1
    expected = np.array([0.03, 0.03, 0.03, 0.03])
    assert at_05["mean_diff"] == pytest.approx(expected.mean())
    d09 = np.array([0.0, 0.01, 0.0, 0.01, 0.0])
    at_09 = table.iloc[1]
    assert at_09["p_t"] == pytest.approx(stats.ttest_1samp(d09, 0).pvalue)
    assert at_09["p_t_holm"] == pytest.approx(holm([at_05["p_t"], at_09["p_t"]])[1])
    assert not table[["mean_diff", "mean_method", "mean_baseline"]].isna().any().any()


def test_paired_comparison_ignores_probe_trials_and_handles_loss():
    trials = trials_from({("random", 0.5): [0.5, 0.6, 0.55], ("mine", 0.5): [0.4, 0.45, 0.47]},
                         metric="final_test_loss")
    probe = trials.iloc[[3]].assign(role="probe", final_test_loss=9.0, trial_id=99)
    table = paired_comparison(pd.concat([trials, probe]), metric="final_test_loss", margin=None)
    assert table.iloc[0]["n"] == 3 and not table.iloc[0]["higher_is_better"]
    assert table.iloc[0]["mean_diff"] == pytest.approx(np.mean([-0.1, -0.15, -0.08]))


def test_paired_comparison_input_errors():
    trials = trials_from({("random", 0.5): [0.8, 0.8], ("mine", 0.5): [0.8, 0.8]})
    with pytest.raises(AnalysisInputError, match="more than one selected trial"):
        paired_comparison(pd.concat([trials, trials.iloc[[0]]]))
    with pytest.raises(AnalysisInputError, match="experiments"):
        paired_comparison(pd.concat([trials, trials.assign(experiment_id=2)]))
    with pytest.raises(AnalysisInputError, match="higher_is_better"):
        paired_comparison(trials, metric="train_seconds")
    with pytest.raises(AnalysisInputError, match="missing column"):
        paired_comparison(trials.drop(columns="seed"))


def test_no_baseline_gives_an_empty_table_with_columns():
    table = paired_comparison(trials_from({("mine", 0.5): [0.8, 0.81]}))
    assert table.empty and "verdict" in table.columns


def test_a_method_whose_trials_all_diverged_still_gets_a_row():
    trials = trials_from({("random", 0.9): [0.7, 0.71, 0.72], ("mine", 0.9): [None, None, None]})
    row = paired_comparison(trials).iloc[0]
    assert row["method"] == "mine" and row["n"] == 0 and row["n_excluded"] == 3
    assert row["verdict"] == TOO_FEW_SEEDS and row["reason"].startswith("n=0")
    assert math.isnan(row["mean_method"]) and math.isnan(row["p_t_holm"])


@pytest.mark.parametrize("n", [1, 2, 3, 10, 25])
@pytest.mark.parametrize("margin", [0.01, None])
def test_identical_paired_results_are_labelled_not_tested_at_any_n(n, margin):
    # e.g. sparsity 0, where random keeps every node and trains exactly like the dense parent, or
    # every network collapsed to chance: no test, and not 'equivalent' (issue 11, item 5)
    same = compare_family([[0.0] * n], margin=margin)[0]
    assert same["verdict"] == IDENTICAL == "identical (not tested)"
    assert "exactly 0" in same["reason"] and "equivalent" not in same["reason"]


def test_a_constant_nonzero_difference_is_not_evidence():
    # a constant small difference (one test example each time) is not evidence of equivalence
    for constant in (0.0028, 0.05):
        shifted = compare_family([[constant] * 10], margin=0.01)[0]
        assert shifted["verdict"] == "inconclusive" and "tests undefined" in shifted["reason"]


def test_three_seeds_with_a_huge_effect_give_no_verdict():
    # issue 12: a paired t test on 3 seeds with a tiny spread gives confident, wrong verdicts
    trials = trials_from({
        ("random", 0.5): [0.60, 0.61, 0.62], ("mine", 0.5): [0.90, 0.912, 0.918],
        ("random", 0.9): [0.50, 0.51, 0.52], ("mine", 0.9): [0.20, 0.208, 0.221],
    })
    for margin in (0.01, None):
        table = paired_comparison(trials, margin=margin)
        assert (table["p_t"] < 0.01).all()  # the test alone would call both
        assert (table["verdict"] == TOO_FEW_SEEDS).all()
        assert table["mean_diff"].notna().all() and table["ci_low"].notna().all()  # still shown
        for reason in table["reason"]:
            assert not any(word in reason for word in ("better", "worse", "equivalent")), reason


def test_min_seeds_can_be_raised_not_lowered_below_five():
    trials = trials_from({("random", 0.5): [0.6 + i / 100 for i in range(12)],
                          ("mine", 0.5): [0.7 + i / 99 for i in range(12)]})
    assert paired_comparison(trials)["verdict"].iloc[0] == "better"
    assert paired_comparison(trials, min_seeds=20)["verdict"].iloc[0] == TOO_FEW_SEEDS
    for bad in (4, 2.5, True, "10"):
        with pytest.raises(AnalysisInputError, match="min_seeds"):
            paired_comparison(trials, min_seeds=bad)
