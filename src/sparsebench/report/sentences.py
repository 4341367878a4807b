"""Plain-language sentences from the analysis tables.

>>> row = dict(sparsity=0.9, method="random-search", baseline="random", n=5, n_excluded=0,
...            verdict="equivalent", reason="", mean_diff=0.003, ci_low=-0.004, ci_high=0.010,
...            p_t_holm=0.6, p_wilcoxon_holm=0.8, p_tost_holm=0.012, margin=0.01)
>>> verdict_sentence(row, family=3)
'At sparsity 0.9, random-search is equivalent to random within ±1 pp (TOST p=0.012, Holm-adjusted across 3 sparsities), n=5 seeds; mean difference +0.3 pp [95% CI −0.4, +1.0].'
"""

from __future__ import annotations

import math

import pandas as pd

from sparsebench.analysis.paired import ALPHA, IDENTICAL, TOO_FEW_SEEDS
from sparsebench.names import SCORE_FACTS, score_higher_is_better
from sparsebench.report.formatting import _finite, ci_pp, fixed, pp, pvalue, sparsity


def _difference(row) -> str:
    interval = ci_pp(row["ci_low"], row["ci_high"])
    interval = "" if interval == "n/a" else f" [95% CI {interval[1:-1]}]"
    return f"mean difference {pp(row['mean_diff'])}{interval}"


def _seeds(row) -> str:
    text = f"n={row['n']} seed{'s' if row['n'] != 1 else ''}"
    excluded = int(row.get("n_excluded", 0) or 0)
    if excluded:
        text += f" ({excluded} more left out: a trial diverged or is missing)"
    return text


def _holm(family: int, both: bool = False, across: str = "sparsities") -> str:
    if family <= 1:
        return ""
    return f"{'; both' if both else ','} Holm-adjusted across {family} {across}"


def _unadjusted_ci_note(row, family: int, across: str = "sparsities") -> str:
    """Why a 95% CI that excludes 0 can sit beside a non-significant verdict: the CI is not
    Holm-adjusted, the p-values are."""
    low, high = row["ci_low"], row["ci_high"]
    if not (_finite(low) and _finite(high)) or low <= 0 <= high:
        return ""
    alpha = row.get("alpha", ALPHA)
    alpha = alpha if _finite(alpha) else ALPHA
    if not _finite(row["p_t_holm"]) or row["p_t_holm"] < alpha:
        return ""
    if family > 1 and (not _finite(row.get("p_t")) or row["p_t"] < alpha):
        return f"; the unadjusted 95% CI excludes 0, but not after correcting for {family} {across}"
    return f"; the 95% CI excludes 0, but the tests use alpha {alpha:g}"


def verdict_sentence(row, family: int = 1, across: str = "sparsities") -> str:
    """One sentence for one row of :func:`sparsebench.analysis.paired_comparison` on accuracy.

    ``family`` is how many comparisons the row's p-values were Holm-adjusted across
    (its Holm family's rows with a finite p-value: ``holm_family_size``), ``across`` what
    they are ("sparsities" for one method's family, "method × sparsity comparisons" for
    the whole experiment's); the sentence says so when the family holds more than one.
    A 'too few seeds' row gives the estimate and its interval without a p-value and
    without any of the words better, worse or equivalent.
    """
    where = f"At sparsity {sparsity(row['sparsity'])}, {row['method']}"
    base = row["baseline"]
    if row["n"] == 0:
        return f"{where} could not be compared with {base}: no seed where both trials finished."
    margin = row.get("margin", math.nan)
    within = f"±{margin * 100:g} pp" if isinstance(margin, float) and math.isfinite(margin) else "the margin"
    verdict = row["verdict"]
    if verdict == TOO_FEW_SEEDS:
        # No p-value and no "excludes 0" note: with so few seeds they invite the claim the rule withholds.
        return (f"{where} vs {base}: too few seeds for a verdict ({row['reason']}), {_seeds(row)}; "
                f"{_difference(row)}.")
    if verdict == IDENTICAL:
        return (f"{where} and {base} gave identical results in every seed (not tested: "
                f"{row['reason']}), {_seeds(row)}.")
    if verdict == "equivalent":
        # With no spread between seeds TOST is undefined; the reason then says why it is equivalent.
        test = (f"TOST p={pvalue(row['p_tost_holm'])}{_holm(family, across=across)}" if _finite(row["p_tost_holm"])
                else row["reason"])
        claim = f"is equivalent to {base} within {within} ({test})"
    elif verdict in ("better", "worse"):
        claim = (f"is {verdict} than {base} (paired t p={pvalue(row['p_t_holm'])}; "
                 f"Wilcoxon p={pvalue(row['p_wilcoxon_holm'])}{_holm(family, True, across)})")
    elif not _finite(row["p_t_holm"]):  # undefined tests (no spread): no p-values to show or adjust
        claim = f"vs {base} is inconclusive ({row['reason']})"
    else:
        claim = (f"vs {base} is inconclusive ({row['reason']}; paired t p={pvalue(row['p_t_holm'])}, "
                 f"TOST p={pvalue(row['p_tost_holm'])}{_holm(family, True, across)})")
    return f"{where} {claim}, {_seeds(row)}; {_difference(row)}{_unadjusted_ci_note(row, family, across)}."


def dense_gap_sentence(gaps: pd.DataFrame) -> str:
    """One sentence listing a method's gap to the dense parent at each sparsity."""
    if gaps.empty:
        return "No finished dense parent to compare with."
    parts = []
    for r in gaps.itertuples():
        interval = ci_pp(r.ci_low, r.ci_high)
        interval = "" if interval == "n/a" else f" [95% CI {interval[1:-1]}]"
        parts.append(f"{pp(r.gap_mean)}{interval} at sparsity {sparsity(r.sparsity)}")
    return "Gap to the dense parent of the same seed: " + "; ".join(parts) + "."


def convergence_sentence(rows: pd.DataFrame) -> str:
    """Which verdicts the convergence comparison gave, grouped, for one method."""
    parts = []
    split = rows["split"].iloc[0] if "split" in rows.columns and len(rows) else "validation"
    curve = "monitoring-split" if split == "monitor" else "validation"
    for metric, label in (("auc", f"area under the {curve} accuracy curve"),
                          ("epochs_to_threshold", "epochs to the accuracy threshold")):
        of_metric = rows[rows["metric"] == metric]
        if of_metric.empty:
            continue
        by_verdict = [f"{verdict} at {', '.join(sparsity(s) for s in group['sparsity'])}"
                      for verdict, group in of_metric.groupby("verdict", sort=False)]
        text = f"{label}: " + "; ".join(by_verdict)
        if metric == "epochs_to_threshold":
            censored = int(of_metric["n_censored_method"].sum())
            total = int(of_metric["n"].sum())
            if censored:
                text += f" ({censored} of its {total} paired trials never reached the threshold)"
        parts.append(text)
    return ("Convergence vs random, " + "; ".join(parts) + ".") if parts else ""


def divergence_sentence(counts: pd.DataFrame) -> str:
    """How many of a method's selected trials diverged (they are excluded everywhere else)."""
    diverged = int(counts["n_diverged"].sum())
    if not diverged:
        return ""
    where = ", ".join(f"{int(r.n_diverged)} at sparsity {sparsity(r.sparsity)}"
                      for r in counts.itertuples() if r.n_diverged)
    return f"{diverged} of its {int(counts['n_trials'].sum())} trials diverged ({where}) and are excluded."


def _useful_direction(score_name: str) -> str:
    return "positive" if score_higher_is_better(score_name) else "negative"


def score_words(score_name: str) -> str:
    """A score a search ranks by, in words: when it is measured (at initialization, or trained-search's after
    brief training), its name, its direction and, for a log, that it is one.

    >>> score_words("loss"), score_words("synflow")
    ('initial loss score (lower is better)', 'initial synflow score (a natural log; higher is better)')
    >>> score_words("trained-accuracy")
    "trained-accuracy score (validation accuracy after the search's brief training; higher is better)"
    """
    log = SCORE_FACTS.get(score_name, (True, False))[1]
    direction = "higher" if score_higher_is_better(score_name) else "lower"
    if score_name not in SCORE_FACTS:
        when = "validation accuracy after the search's brief training; " if score_name == "trained-accuracy" else ""
        return f"{score_name} score ({when}{direction} is better)"
    return f"initial {score_name} score ({'a natural log; ' if log else ''}{direction} is better)"


def predictive_sentence(within: pd.DataFrame, winner: pd.DataFrame | None = None) -> str:
    """The headline on score predictiveness: the within-seed analysis, in words, for one method label.

    ``within`` is :func:`sparsebench.analysis.within_seed_predictiveness`, ``winner``
    :func:`sparsebench.analysis.winner_vs_probes` (both of one experiment and one label).
    """
    overall = within[within["scope"] == "overall"] if not within.empty else within
    has_winner = winner is not None and not winner.empty
    if overall.empty and not has_winner:
        return ("No probe candidates were trained, so whether the search score predicts trained "
                "accuracy was not measured (run with --probe N).")
    parts = []
    if not overall.empty:
        row = overall.iloc[0]
        rho, low, high = (fixed(row[key]) for key in ("mean_rho", "ci_low", "ci_high"))
        interval = f" [95% CI {low}, {high}]" if _finite(row["ci_low"]) else ""
        p = f", p={pvalue(row['p'])}" if _finite(row["p"]) else ""
        parts.append(
            f"Within seeds (candidates of one seed and sparsity share a parent and a data order, and "
            f"these are the only candidates the search ever compares), Spearman's rho between the "
            f"{score_words(row['score_name'])} and trained test accuracy averages {rho}{interval} over "
            f"{int(row['n_groups'])} (seed, sparsity) groups of {int(row['n_candidates'])} candidates "
            f"(t interval over {int(row['n_seeds'])} seeds{p}). A useful {row['score_name']} score has "
            f"a {_useful_direction(row['score_name'])} rho; a rho near zero means the score ranks "
            f"candidates no better than chance.")
    else:
        parts.append("Too few trained candidates per seed and sparsity (need at least 3) to estimate "
                     "a within-seed correlation.")
    if has_winner:
        row = winner[winner["scope"] == "overall"].iloc[0]
        interval = ci_pp(row["ci_low"], row["ci_high"])
        interval = "" if interval == "n/a" else f" [95% CI {interval[1:-1]}]"
        p = f", p={pvalue(row['p'])}" if _finite(row["p"]) else ""
        parts.append(f"The selected winner's test accuracy minus the mean of its probes (same seed and "
                     f"sparsity) is {pp(row['mean_diff'], 2)}{interval} over {int(row['n_groups'])} "
                     f"groups (t interval over {int(row['n_seeds'])} seeds{p}).")
    return " ".join(parts)


def pooled_predictive_sentence(table: pd.DataFrame) -> str:
    """The pooled (all seeds together) correlation, labelled secondary with its confound named."""
    pooled = table[table["scope"] == "pooled"] if not table.empty else table
    if pooled.empty or not math.isfinite(pooled.iloc[0]["rho"]):
        return ""
    row = pooled.iloc[0]
    rho, low, high = (fixed(row[key]) for key in ("rho", "ci_low", "ci_high"))
    return (f"Secondary, for comparison only: pooling the {int(row['n'])} candidates of all seeds gives "
            f"rho {rho} [95% CI {low}, {high}] (p={pvalue(row['p'])}), combined over sparsities. Pooling "
            f"mixes parents: seeds whose parent trains better and scores differently move all their "
            f"candidates together (a parent effect), and a seed's candidates are counted as independent, "
            f"so the pooled figure can differ from the within-seed one even in sign.")


def predictive_comparison_sentence(within: pd.DataFrame) -> str:
    """Which search score predicts trained accuracy best: the method labels by their overall mean within-seed rho,
    its sign made positive where the score ranks candidates the right way (empty with fewer than two labels).

    >>> import pandas as pd
    >>> within = pd.DataFrame({"method": ["random-search", "rs-naswot"], "scope": "overall",
    ...     "score_name": ["loss", "naswot"], "mean_rho_useful": [0.04, 0.31], "ci_low": [-0.2, 0.1],
    ...     "ci_high": [0.1, 0.5], "mean_rho": [-0.04, 0.31]})
    >>> print(predictive_comparison_sentence(within))  # doctest: +ELLIPSIS
    Which score predicts trained accuracy: ... rs-naswot (naswot score) +0.31; random-search (loss score) +0.04. ...
    """
    if within.empty or "method" not in within.columns:
        return ""
    overall = within[within["scope"] == "overall"].sort_values("mean_rho_useful", ascending=False)
    if overall["method"].nunique() < 2:
        return ""
    parts = [f"{r.method} ({r.score_name} score) {'+' if r.mean_rho_useful > 0 else ''}{fixed(r.mean_rho_useful, 2)}"
             for r in overall.itertuples()]
    return ("Which score predicts trained accuracy: the mean within-seed rho of each search, its sign made "
            "positive where the score ranks candidates the right way (lower loss, or a higher score of any other "
            "kind, going with higher accuracy): " + "; ".join(parts) + ". A higher value is a more useful score; "
            "compare each one's interval below before calling one better than another.")
