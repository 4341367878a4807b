"""Paired comparison of each method against ``random``, per sparsity, with a verdict.

For every sparsity and method, the trials are paired with the ``random`` trial of
the same seed (same parent initialization, same minibatch order); only selected
trials whose two members both finished are used. On the per-seed differences
``d = method - random`` the module reports:

- ``mean_diff`` and a **95% paired Student-t confidence interval** (``ci_low``,
  ``ci_high``);
- ``p_t``: two-sided **paired t test** (``ttest_1samp(d, 0)``, identical to
  ``scipy.stats.ttest_rel``) -- the *primary* test;
- ``p_wilcoxon``: two-sided **Wilcoxon signed-rank** test, reported beside it as
  a check that does not assume normal differences;
- ``p_tost``: **TOST** equivalence test, the larger p of two one-sided t tests
  of ``mean(d) > -margin`` and ``mean(d) < +margin``;
- ``*_holm``: the three p-values **Holm-adjusted** over a family of comparisons, so
  that a 'better', 'worse' or 'equivalent' in any of them is a family-wise claim.
  On the primary metric (:data:`PRIMARY_METRIC`, final test accuracy) the family is
  **every method × sparsity compared with random** in the experiment
  (``holm_family="experiment"``): adding a method to an experiment therefore changes
  the adjustment of the others. On a secondary metric (loss, convergence) the family
  is one method at every sparsity tested (``holm_family="method"``);
  ``holm_family_size`` says how many comparisons with a p-value the row's family holds.

Verdict rule (``alpha`` = 0.05 by default):

1. every difference exactly 0 -> ``identical (not tested)``, at any n: the two
   arms gave the same number in every seed (e.g. random at sparsity 0 is the dense
   network, or every network sits at chance). No test can be made on zero spread,
   and "the same" is not evidence that the methods are alike in general, so this is
   neither ``equivalent`` nor a test result;
2. fewer than :data:`MIN_SEEDS` pairs -> ``too few seeds`` (mean, CI and p-values
   are still reported; the verdict is withheld). See "Minimum evidence" below;
3. all differences equal but not 0 -> ``inconclusive`` (the tests are undefined);
4. ``p_tost_holm < alpha`` -> ``equivalent`` (at a single sparsity: the 90% paired t
   CI lies inside ±margin). This wins over a significant t test: a difference that is significant but smaller
   than the margin is, by the user's own margin, not a practical difference; the
   reason says so;
5. ``p_t_holm < alpha`` -> ``better`` or ``worse`` by the sign of the mean
   difference and the metric's direction (higher accuracy / lower loss is better);
6. otherwise ``inconclusive`` with the reason: ``more seeds needed for the margin``
   when even a zero mean difference could not pass TOST at this spread (the
   message estimates how many seeds would), or ``the CI spans the margin``;
   with ``margin=None`` there is no equivalence branch.

Minimum evidence: :data:`MIN_SEEDS` = 10 is derived, not chosen. It is the
smallest n at which the two-sided paired t test at ``alpha`` = 0.05 has at least
80% power to detect a true shift of one standard deviation of the per-seed
differences (exact, from the noncentral t distribution: 0.75 at n=9, 0.80 at
n=10; see :func:`seeds_for_power`), and never fewer than 5. Below it a real
shift of that size is usually missed (power 0.18 with 3 seeds), and the
significant results that do come are often a draw of seeds with an unusually
small spread: a 3-seed "worse" that 10 seeds did not replicate prompted the rule.
A row below the minimum stays in its Holm family (its p-values are still
computed and shown), which can only make the other rows' correction more conservative.

Why the t test is primary: with few seeds the exact Wilcoxon test cannot reach
small p-values at all -- its smallest two-sided p is ``2 / 2**n``: 0.25 for n=3,
0.125 for n=4, 0.0625 for n=5, 0.031 for n=6 -- so a Wilcoxon-based rule could
never say ``better`` with five seeds, whatever the data. The t test is exact for
normal differences and robust enough for means of trained-network accuracies.
When the t test decides but the Wilcoxon test does not agree, the reason says so.

Calibration (checked by ``tests/analysis/test_calibration.py`` on up to 2000
simulated experiments): with no true difference, ``better`` or ``worse`` comes out
at most ``alpha`` of the time (exactly ``alpha`` for normal differences at one
sparsity without a margin; less with a margin, whose ``equivalent`` takes
precedence, and less with Holm over several sparsities); a true difference
exactly at the margin is called ``equivalent`` at most ``alpha`` of the time; with a true shift of one standard
deviation of the differences and n=10 seeds the power is 0.80 (noncentral t),
with two standard deviations it is above 0.99. With n=3 seeds and a shift of one
standard deviation the power is only 0.18, which is why verdicts need
:data:`MIN_SEEDS` seeds. The tests themselves stay exact at any n (the
calibration tests check the 3-seed power with ``min_seeds=2``).

>>> import pandas as pd
>>> pairs = [(0.80, 0.801), (0.81, 0.809), (0.79, 0.792), (0.80, 0.800), (0.82, 0.821),
...          (0.78, 0.779), (0.80, 0.802), (0.81, 0.808), (0.79, 0.791), (0.80, 0.799)]
>>> rows = [dict(method=m, role="selected", status="done", sparsity=0.9, seed=s,
...              final_test_acc=acc)
...         for s, (a, b) in enumerate(pairs)
...         for m, acc in (("random", a), ("random-search", b))]
>>> table = paired_comparison(pd.DataFrame(rows), margin=0.01)
>>> table[["sparsity", "method", "n", "verdict"]]
   sparsity         method   n     verdict
0       0.9  random-search  10  equivalent
>>> paired_comparison(pd.DataFrame(rows[:6]), margin=0.01)["verdict"].tolist()
['too few seeds']
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from sparsebench.analysis.intervals import NAN, is_constant
from sparsebench.analysis.trials import (
    BASELINE,
    DENSE,
    AnalysisInputError,
    comparable_trials,
    method_order,
    pair_with_baseline,
    selected_trials,
)

ALPHA = 0.05
DEFAULT_MARGIN = 0.01  # one percentage point of accuracy
TOO_FEW_SEEDS = "too few seeds"
IDENTICAL = "identical (not tested)"
VERDICTS = ("better", "worse", "equivalent", "inconclusive", TOO_FEW_SEEDS, IDENTICAL)
#: The verdicts that claim something about the methods; rows below MIN_SEEDS never carry one.
CLAIMS = ("better", "worse", "equivalent")

#: Direction of the metrics the store records; other metrics must pass ``higher_is_better``.
HIGHER_IS_BETTER = {
    "final_test_acc": True,
    "best_test_acc": True,
    "best_val_acc": True,
    "final_test_loss": False,
    "best_test_loss": False,
    "auc": True,
    "epochs_to_threshold": False,
}

COLUMNS = [
    "sparsity", "method", "baseline", "metric", "higher_is_better", "n", "n_excluded",
    "mean_method", "mean_baseline", "mean_diff", "sd_diff", "ci_low", "ci_high",
    "p_t", "p_wilcoxon", "p_tost", "p_t_holm", "p_wilcoxon_holm", "p_tost_holm",
    "holm_family", "holm_family_size", "margin", "alpha", "verdict", "reason",
]

#: The primary metric: its Holm family is every method × sparsity compared with the baseline.
PRIMARY_METRIC = "final_test_acc"
#: Holm families: "experiment" = every method × sparsity of the table compared with the
#: baseline, one family; "method" = one family per method, over its sparsities.
HOLM_FAMILIES = ("experiment", "method")


def holm_family_for(metric: str) -> str:
    """The Holm family a metric's comparisons use by default: the whole experiment for the primary metric.

    >>> holm_family_for("final_test_acc"), holm_family_for("final_test_loss")
    ('experiment', 'method')
    """
    return "experiment" if metric == PRIMARY_METRIC else "method"


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values; NaNs stay NaN and do not count in the family.

    The k-th smallest of m p-values is multiplied by ``m - k + 1``; the results are
    made monotone (running maximum) and capped at 1. Reject where adjusted < alpha.

    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(p.shape, NAN)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    if m == 0:
        return adjusted
    order = finite[np.argsort(p[finite], kind="stable")]
    scaled = p[order] * (m - np.arange(m))
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def paired_t_power(shift_in_sd: float, n: int, alpha: float = ALPHA) -> float:
    """Exact power of the two-sided paired (one-sample) t test with n pairs.

    ``shift_in_sd`` is the true mean difference in units of the standard deviation
    of the differences; the power comes from the noncentral t distribution.

    >>> round(paired_t_power(1.0, 3), 3), round(paired_t_power(1.0, 10), 3)
    (0.179, 0.803)
    """
    if n < 2:
        return NAN
    critical = stats.t.ppf(1 - alpha / 2, n - 1)
    noncentrality = shift_in_sd * math.sqrt(n)
    return float(stats.nct.sf(critical, n - 1, noncentrality) + stats.nct.cdf(-critical, n - 1, noncentrality))


def seeds_for_power(shift_in_sd: float = 1.0, power: float = 0.80, alpha: float = ALPHA,
                    floor: int = 5, limit: int = 1000) -> int:
    """Smallest n (at least ``floor``) at which the paired t test reaches ``power``.

    >>> seeds_for_power(), seeds_for_power(shift_in_sd=2.0), seeds_for_power(0.5)
    (10, 5, 34)
    """
    for n in range(max(floor, 2), limit + 1):
        if paired_t_power(shift_in_sd, n, alpha) >= power:
            return n
    return limit


#: The fewest paired seeds that can give a verdict (see "Minimum evidence" in the module docstring).
MIN_SEEDS = seeds_for_power(shift_in_sd=1.0, power=0.80, alpha=ALPHA, floor=5)


def min_wilcoxon_p(n: int) -> float:
    """Smallest two-sided p-value the exact Wilcoxon signed-rank test can give with n pairs.

    >>> min_wilcoxon_p(3), min_wilcoxon_p(5)
    (0.25, 0.0625)
    """
    return min(1.0, 2.0 / 2.0**n) if n > 0 else NAN


def _wilcoxon_p(diffs: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p, NaN when undefined (n < 2 or all zero)."""
    if diffs.size < 2 or not np.any(diffs != 0):
        return NAN
    with warnings.catch_warnings():
        # scipy warns when zeros/ties force the normal approximation; the p is still the best available.
        warnings.simplefilter("ignore")
        return float(stats.wilcoxon(diffs).pvalue)


def tost_p(diffs: Sequence[float], margin: float) -> float:
    """TOST equivalence p for mean difference within (-margin, +margin): two one-sided t tests.

    >>> round(tost_p([0.001, -0.002, 0.0, 0.001, 0.002], margin=0.01), 5)
    7e-05
    """
    d = np.asarray(diffs, dtype=float)
    lower = stats.ttest_1samp(d, -margin, alternative="greater").pvalue
    upper = stats.ttest_1samp(d, margin, alternative="less").pvalue
    return float(max(lower, upper))


def difference_statistics(diffs: Sequence[float], margin: float | None = DEFAULT_MARGIN) -> dict:
    """Statistics of one sample of paired differences (NaNs dropped), before Holm.

    Returns a dict with ``n, mean_diff, sd_diff, ci_low, ci_high, p_t, p_wilcoxon,
    p_tost`` (95% paired t interval) and ``all_zero`` (every difference exactly 0).
    Undefined quantities are NaN rather than errors.

    >>> s = difference_statistics([0.01, 0.02, 0.03])
    >>> s["n"], round(s["mean_diff"], 3), round(s["p_t"], 4), s["p_wilcoxon"]
    (3, 0.02, 0.0742, 0.25)
    """
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    out = dict(n=int(d.size), mean_diff=NAN, sd_diff=NAN, ci_low=NAN, ci_high=NAN,
               p_t=NAN, p_wilcoxon=NAN, p_tost=NAN, all_zero=bool(d.size and np.all(d == 0)))
    if d.size == 0:
        return out
    out["mean_diff"] = float(np.mean(d))
    if d.size < 2:
        return out
    out["sd_diff"] = float(np.std(d, ddof=1))
    out["p_wilcoxon"] = _wilcoxon_p(d)
    if is_constant(d):
        # A t statistic would divide by a zero standard deviation: leave p undefined.
        out["sd_diff"] = 0.0
        out["ci_low"] = out["ci_high"] = out["mean_diff"]
        return out
    test = stats.ttest_1samp(d, 0.0)
    interval = test.confidence_interval(0.95)
    out.update(p_t=float(test.pvalue), ci_low=float(interval.low), ci_high=float(interval.high))
    if margin is not None:
        out["p_tost"] = tost_p(d, margin)
    return out


def seeds_needed_for_margin(sd: float, margin: float, alpha: float = ALPHA, limit: int = 1000) -> int | None:
    """Smallest n at which TOST could pass with a zero observed mean difference.

    That is the smallest n with ``t_{1-alpha, n-1} * sd / sqrt(n) < margin`` (the
    90% CI half-width inside the margin). It is a lower bound: a non-zero observed
    mean needs more. None if above ``limit``.

    >>> seeds_needed_for_margin(sd=0.01, margin=0.01)
    5
    """
    if not (sd > 0 and margin > 0):
        return None
    n = np.arange(2, limit + 1)
    fits = np.flatnonzero(stats.t.ppf(1 - alpha, n - 1) * sd / np.sqrt(n) < margin)
    return int(n[fits[0]]) if fits.size else None


def margin_text(margin: float, metric: str) -> str:
    """The margin as a reader wants it: accuracies and their curve's AUC (fractions) in percentage points.

    >>> margin_text(0.01, "final_test_acc"), margin_text(0.01, "auc"), margin_text(0.05, "final_test_loss")
    ('±1 pp', '±1 pp', '±0.05')
    """
    return f"±{margin * 100:g} pp" if metric.endswith("_acc") or metric == "auc" else f"±{margin:g}"


def decide(row: dict, higher_is_better: bool, alpha: float = ALPHA,
           margin: float | None = DEFAULT_MARGIN, min_seeds: int = MIN_SEEDS) -> tuple[str, str]:
    """Verdict and reason for one row holding Holm-adjusted p-values (see module docstring).

    >>> decide(dict(n=3, mean_diff=0.05, p_t_holm=0.001), higher_is_better=True)[0]
    'too few seeds'
    >>> decide(dict(n=2, mean_diff=0.0, all_zero=True), higher_is_better=True)[0]
    'identical (not tested)'
    """
    n = row["n"]
    if n >= 1 and row.get("all_zero", False):
        every = "the one paired difference is" if n == 1 else f"every one of the {n} paired differences is"
        return IDENTICAL, f"{every} exactly 0: nothing to test"
    if n < max(min_seeds, 2):
        return TOO_FEW_SEEDS, _too_few_reason(n, min_seeds, alpha)
    within = margin_text(margin, row.get("metric", "")) if margin is not None else ""
    if not math.isfinite(row.get("p_t_holm", NAN)):
        # No spread but not zero: a constant nonzero difference with zero spread is a
        # coincidence of discrete accuracies, not evidence; the tests are undefined.
        return "inconclusive", f"all {n} paired differences are equal: tests undefined"
    p_t, p_tost = row["p_t_holm"], row.get("p_tost_holm", NAN)
    significant = p_t < alpha
    p_w = row.get("p_wilcoxon_holm", NAN)
    # The p-values themselves are in their own columns; the reason says which rule applied.
    if margin is not None and math.isfinite(p_tost) and p_tost < alpha:
        reason = f"90% CI within {within}"
        if significant:
            reason += "; the difference is significant but smaller than the margin"
        return "equivalent", reason
    if significant:
        improves = (row["mean_diff"] > 0) == higher_is_better
        reason = f"paired t significant at {alpha:g}"
        if math.isfinite(p_w) and p_w >= alpha:
            floor = min_wilcoxon_p(n)
            # Name the floor only where it is the explanation: with few seeds Wilcoxon cannot reach alpha.
            reason += (f"; Wilcoxon not (its smallest possible p with n={n} is {floor:.3g})" if floor >= alpha
                       else f"; Wilcoxon not (Holm p={p_w:.3g})")
        return ("better" if improves else "worse"), reason
    if margin is None:
        return "inconclusive", "no significant difference; no equivalence margin set for this metric"
    needed = seeds_needed_for_margin(row["sd_diff"], margin, alpha)
    if needed is None or needed > n:
        more = f"about {needed}+ needed at this spread" if needed else "the spread is too large"
        return "inconclusive", f"more seeds needed for the margin {within}: {more}"
    return "inconclusive", f"no significant difference, and the CI spans the margin {within}"


def _too_few_reason(n: int, min_seeds: int, alpha: float) -> str:
    """Why a verdict is withheld below ``min_seeds``; no word of a claim (better, worse, ...)."""
    if n == 0:
        return "n=0: no seed where both trials finished"
    text = f"n={n}; a verdict needs at least {min_seeds} paired seeds"
    if n >= 2:
        text += (f" (the paired t test's power for a shift of one SD of the differences is "
                 f"{paired_t_power(1.0, n, alpha):.0%} at n={n}, "
                 f"{paired_t_power(1.0, min_seeds, alpha):.0%} at {min_seeds})")
    return text


def compare_family(
    samples: Sequence[Sequence[float]],
    higher_is_better: bool = True,
    margin: float | None = DEFAULT_MARGIN,
    alpha: float = ALPHA,
    metric: str = "",
    min_seeds: int = MIN_SEEDS,
) -> list[dict]:
    """Statistics, Holm adjustment and verdict for one family of difference samples.

    One family is, e.g., one method at several sparsities, or every method × sparsity of an
    experiment; Holm runs over the family. This is the whole decision procedure without any DataFrame handling, so the
    calibration tests can call it thousands of times. ``min_seeds`` below
    :data:`MIN_SEEDS` is for studying the tests themselves (calibration), not for verdicts.

    >>> [r["verdict"] for r in compare_family([[0.05, 0.06, 0.055, 0.052], [0.0, 0.01]], min_seeds=2)]
    ['better', 'inconclusive']
    >>> [r["verdict"] for r in compare_family([[0.05, 0.06, 0.055, 0.052], [0.0, 0.0]])]
    ['too few seeds', 'identical (not tested)']
    """
    rows = [difference_statistics(sample, margin) for sample in samples]
    for name in ("p_t", "p_wilcoxon", "p_tost"):
        for row, adjusted in zip(rows, holm([row[name] for row in rows])):
            row[f"{name}_holm"] = float(adjusted)
    for row in rows:
        row["verdict"], row["reason"] = decide(dict(row, metric=metric), higher_is_better, alpha, margin,
                                               min_seeds)
    return rows


def compare_to_baseline(
    values: pd.DataFrame,
    value: str,
    higher_is_better: bool,
    margin: float | None = DEFAULT_MARGIN,
    alpha: float = ALPHA,
    baseline: str = BASELINE,
    planned: pd.DataFrame | None = None,
    min_seeds: int = MIN_SEEDS,
    holm_family: str = "method",
) -> pd.DataFrame:
    """Paired comparison of any per-trial value against ``baseline``, per sparsity and method.

    ``values`` has one row per finished selected trial with columns ``sparsity,
    method, seed`` and ``value``; :func:`paired_comparison` and the convergence
    analysis both call this. ``planned`` (same key columns, any status) lets the
    result count seeds lost to divergence or missing trials in ``n_excluded``.
    ``holm_family`` (one of :data:`HOLM_FAMILIES`): "method" adjusts each method's
    sparsities as one family, "experiment" every method × sparsity of the table as one.
    Returns the columns in :data:`COLUMNS`.
    """
    check_holm_family(holm_family)
    pairs = pair_with_baseline(values, value, baseline)
    planned = values if planned is None else planned
    with_baseline = set(planned.loc[planned["method"] == baseline, "sparsity"])
    # Every planned comparison gets a row, even when no seed could be paired (n=0), so a
    # method whose trials all diverged is reported as such instead of silently missing.
    compared = planned[~planned["method"].isin([baseline, DENSE]) & planned["sparsity"].isin(with_baseline)]
    cells = []  # (method, sparsity, its pairs), in report order: method, then sparsity
    for method in method_order(compared["method"].unique()):
        of_method = pairs[pairs["method"] == method]
        for s in sorted(compared.loc[compared["method"] == method, "sparsity"].unique()):
            cells.append((method, s, of_method[of_method["sparsity"] == s]))
    families: dict[str, list[int]] = {}
    for i, (method, _, _) in enumerate(cells):
        families.setdefault("all" if holm_family == "experiment" else method, []).append(i)
    statistics: list[dict] = [{}] * len(cells)
    for name, members in families.items():
        family = compare_family([cells[i][2]["difference"].to_numpy() for i in members],
                                higher_is_better, margin, alpha, metric=value, min_seeds=min_seeds)
        size = sum(math.isfinite(row["p_t"]) for row in family)
        for i, stats_row in zip(members, family):
            statistics[i] = dict(stats_row, holm_family=name, holm_family_size=size)
    rows = []
    for (method, sparsity, group), stats_row in zip(cells, statistics):
        seeds = planned[(planned["sparsity"] == sparsity)
                        & planned["method"].isin([method, baseline])]["seed"].nunique()
        rows.append(dict(
            sparsity=float(sparsity), method=method, baseline=baseline, metric=value,
            higher_is_better=higher_is_better, n_excluded=int(seeds - stats_row["n"]),
            mean_method=_mean(group["value"]), mean_baseline=_mean(group["baseline_value"]),
            margin=NAN if margin is None else float(margin), alpha=alpha, **stats_row))
    # Typed even when empty (no method has a random to compare with), so that merges on it work.
    return pd.DataFrame(rows, columns=COLUMNS).astype({"sparsity": float})


def check_holm_family(holm_family: str) -> None:
    """Raise unless ``holm_family`` is one of :data:`HOLM_FAMILIES`."""
    if holm_family not in HOLM_FAMILIES:
        raise AnalysisInputError(f"holm_family: got {holm_family!r}; allowed: one of {list(HOLM_FAMILIES)}")


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else NAN


def paired_comparison(
    trials: pd.DataFrame,
    metric: str = "final_test_acc",
    margin: float | None = DEFAULT_MARGIN,
    alpha: float = ALPHA,
    baseline: str = BASELINE,
    higher_is_better: bool | None = None,
    min_seeds: int = MIN_SEEDS,
    holm_family: str | None = None,
) -> pd.DataFrame:
    """Each method against ``random`` per sparsity, paired by seed, with a verdict.

    ``metric`` is a trials column; its direction comes from :data:`HIGHER_IS_BETTER`
    unless given. ``margin`` is the equivalence margin in the metric's units
    (0.01 = 1 pp of accuracy); pass None for no equivalence test (e.g. for a loss,
    whose scale has no natural margin). Returns one row per (sparsity, method) with
    :data:`COLUMNS`: n pairs, n_excluded (seeds lost to divergence or missing),
    means, mean_diff (method - random) with 95% paired t CI, raw and Holm-adjusted
    p-values of the t, Wilcoxon and TOST tests, verdict and reason. A planned
    comparison without any finished pair gets a row with n=0 and the verdict 'too
    few seeds'; the frame is empty (with those columns) when ``random`` was not run.
    ``min_seeds`` (default :data:`MIN_SEEDS`) may be raised, never set below 5.
    ``holm_family``: which comparisons are Holm-adjusted together (:data:`HOLM_FAMILIES`);
    by default (None) "experiment" (every method × sparsity) for the primary metric
    ``final_test_acc`` and "method" (each method's sparsities) for any other metric; the
    ``holm_family`` and ``holm_family_size`` columns say which family each row is in.

    Example: see the module docstring.
    """
    if higher_is_better is None:
        if metric not in HIGHER_IS_BETTER:
            raise AnalysisInputError(f"metric: got {metric!r}; pass higher_is_better for metrics "
                                     f"other than {sorted(HIGHER_IS_BETTER)}")
        higher_is_better = HIGHER_IS_BETTER[metric]
    check_min_seeds(min_seeds)
    done = comparable_trials(trials)
    return compare_to_baseline(done, metric, higher_is_better, margin, alpha, baseline,
                               planned=selected_trials(trials), min_seeds=min_seeds,
                               holm_family=holm_family_for(metric) if holm_family is None else holm_family)


def check_min_seeds(min_seeds: int) -> None:
    """Raise unless ``min_seeds`` is a whole number of at least 5 (the floor of the rule)."""
    if isinstance(min_seeds, bool) or not isinstance(min_seeds, (int, np.integer)) or min_seeds < 5:
        raise AnalysisInputError(f"min_seeds: got {min_seeds!r}; allowed: a whole number >= 5 "
                                 f"(default {MIN_SEEDS}, see sparsebench.analysis.paired)")
