"""Is the search score predictive? Spearman correlation of initial score and trained accuracy.

A search method (random search, evolution; any method that returns its scored candidates)
ranks candidate masks by a score measured at initialization (``init_score``: the
validation loss by default, or any score of ``sparsebench.scores``) and trains only
the best; trained-search ranks them by their validation accuracy after brief training
(``search_score``, ``ranked_by`` "trained-accuracy"); :func:`ranking_score` is
what each candidate was ranked by. With ``--probe N`` (or a search's own ``probe``
parameter) sparsebench also trains N other scored candidates per
(seed, sparsity) (``role == 'probe'``). Over those probes plus the selected winner
(the "scored and trained candidates") this module answers the question in the
way the search uses the score: **within one seed and sparsity**, where all
candidates share a parent initialization and a data order.

Every table has one set of rows per method label (``method``; by default every
label that has trained probes, so ``random-search`` ranking by loss and
``rs-naswot`` ranking by NASWOT in one experiment are two sets of rows) and score
(``score_name``), so that the report can say which score predicts trained accuracy.

Primary (:func:`within_seed_predictiveness`, :func:`winner_vs_probes`):

- Spearman's rho between the ranking score and the trained ``final_test_acc`` **within
  each (seed, sparsity) group** (groups need at least 3 candidates and some spread
  in both). Per sparsity: the mean of the groups' rhos with a 95% Student-t
  interval and a two-sided one-sample t test over the groups (one group per seed,
  so the seeds are the independent units). Overall: each seed's rhos are first
  averaged over its sparsities (groups of one seed share a parent, so they are not
  independent), then the same t interval and test run over the seeds. A t test over
  independent units is used rather than a stratified permutation test so that the
  analysis stays exact and free of random draws; it is the one interval every
  other table uses.
- "Winner vs its probes": per group, the winner's trained accuracy minus the mean
  trained accuracy of that group's probes (the candidates the score ranked lower);
  per sparsity and overall as above (mean, 95% t interval, t test over seeds). If
  the score is useful, the winner beats its probes.

Secondary, kept for comparison (:func:`score_predictiveness`): the **pooled**
correlation over all seeds' candidates of one sparsity. It is confounded by
parent (seed) effects: a seed whose parent trains better *and* scores differently
moves every one of its candidates together, which can create, hide or reverse a
correlation that no within-seed choice ever sees; it also treats a seed's
candidates as independent points. Per sparsity it is ``scipy.stats.spearmanr``
with a 95% **Fisher z** interval using the Fieller-Hartley-Pearson standard error
``sqrt(1.06/(n-3))`` for Spearman's rho (the interval needs n >= 4, the correlation
n >= 3, else NaN); its ``pooled`` row combines the per-sparsity rhos on the Fisher z
scale with weights n-3 (correlating all sparsities in one go would mostly measure
sparsity itself: sparser networks start with higher loss *and* end with lower
accuracy).

A *useful* loss score gives a negative rho (lower loss, higher accuracy); a useful
accuracy score, or any score where higher is better (``names.SCORE_FACTS``), a
positive one. ``rho_useful`` flips the sign for scores where lower is better, so
that positive always means "the score ranks candidates the right way".

>>> import pandas as pd
>>> trials = pd.DataFrame({"method": "random-search", "status": "done",
...     "role": ["selected", "probe", "probe", "probe", "probe"], "sparsity": 0.9, "seed": 0,
...     "candidate": [3, 0, 1, 2, 4], "score_name": "loss",
...     "init_score": [2.0, 2.1, 2.3, 2.2, 2.4], "final_test_acc": [0.8, 0.79, 0.75, 0.77, 0.74]})
>>> score_predictiveness(trials)[["method", "scope", "n", "rho", "rho_useful"]]
          method     scope  n  rho  rho_useful
0  random-search  sparsity  5 -1.0         1.0
1  random-search    pooled  5 -1.0         1.0
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from sparsebench.analysis.intervals import NAN, is_constant
from sparsebench.analysis.paired import difference_statistics
from sparsebench.analysis.trials import require_columns, require_single_experiment
from sparsebench.names import RANDOM_SEARCH, SCORES, score_higher_is_better

SEARCH_METHOD = RANDOM_SEARCH
# Fieller, Hartley & Pearson (1957): variance of atanh(Spearman rho) is about 1.06/(n-3).
SPEARMAN_Z_VARIANCE = 1.06
# atanh(+-1) is infinite; a perfect rank correlation of a few points is clipped to this
# before the z transform, so its interval stays finite instead of collapsing to a point.
RHO_CLIP = 0.9999

COLUMNS = ["method", "scope", "sparsity", "score_name", "n", "rho", "ci_low", "ci_high", "p", "rho_useful"]


def useful_sign(score_names: pd.Series) -> np.ndarray:
    """+1 where a higher score is better, -1 where lower is (loss): rho times it is positive when useful."""
    return np.array([1.0 if score_higher_is_better(str(n)) else -1.0 for n in score_names], dtype=float)


def probed_methods(trials: pd.DataFrame) -> list[str]:
    """Method labels with at least one finished probe (a trained candidate the search ranked lower), sorted."""
    require_columns(trials, ["method", "role", "status"])
    probes = trials[(trials["role"] == "probe") & (trials["status"] == "done")]
    return sorted(probes["method"].unique())


def ranking_score(points: pd.DataFrame) -> pd.Series:
    """What each trial's search ranked its mask by: ``init_score`` where that is a score at initialization
    (``ranked_by``, else ``score_name``, in ``names.SCORES``: the trial's own, computed alone), else
    ``search_score`` (the search's stored value: trained-search's accuracy after brief training).

    >>> ranking_score(pd.DataFrame({"ranked_by": ["loss", "trained-accuracy"], "init_score": [2.3, 2.2],
    ...                             "search_score": [2.3, 0.41]})).tolist()
    [2.3, 0.41]
    """
    init = points["init_score"].astype(float)
    name = "ranked_by" if "ranked_by" in points.columns else "score_name"
    if "search_score" not in points.columns or name not in points.columns:
        return init
    return init.where(points[name].isin(SCORES), points["search_score"].astype(float))


def scored_candidates(trials: pd.DataFrame, method: str | None = SEARCH_METHOD,
                      metric: str = "final_test_acc") -> pd.DataFrame:
    """Finished trials of ``method`` (a label; None: every label with trained probes) that were scored and
    trained: probes plus the winner, with ``ranking_score`` (:func:`ranking_score`) beside them.

    Rows with a NaN score or metric are dropped (diverged trials have NaN metrics
    and are excluded explicitly by status).
    """
    require_columns(trials, ["method", "role", "status", "sparsity", "init_score", metric])
    require_single_experiment(trials)
    methods = probed_methods(trials) if method is None else [method]
    of_method = trials[trials["method"].isin(methods) & (trials["status"] == "done")]
    winner = of_method["role"] == "selected"
    if "candidate" in of_method.columns:
        winner &= of_method["candidate"] >= 0
    chosen = of_method[(of_method["role"] == "probe") | winner]
    chosen = chosen.assign(ranking_score=ranking_score(chosen))
    if "ranked_by" in chosen.columns:  # the tables name the score each search ranked by
        chosen = chosen.assign(score_name=chosen["ranked_by"])
    finite = np.isfinite(chosen["ranking_score"]) & np.isfinite(chosen[metric].astype(float))
    return chosen[finite]


def spearman_with_ci(scores: np.ndarray, outcomes: np.ndarray, confidence: float = 0.95) -> dict:
    """Spearman rho, its p-value and a Fisher z interval; NaN where undefined.

    >>> r = spearman_with_ci(np.array([1., 2, 3, 4, 5, 6]), np.array([1., 3, 2, 4, 6, 5]))
    >>> round(r["rho"], 3), round(r["ci_low"], 3), round(r["ci_high"], 3)
    (0.886, 0.232, 0.988)
    """
    n = int(len(scores))
    out = dict(n=n, rho=NAN, ci_low=NAN, ci_high=NAN, p=NAN)
    if n < 3 or is_constant(scores) or is_constant(outcomes):
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on small n; we report what it gives
        result = stats.spearmanr(scores, outcomes)
    out["rho"], out["p"] = float(result.statistic), float(result.pvalue)
    if n >= 4:
        out["ci_low"], out["ci_high"] = fisher_interval(out["rho"], [n], confidence)
    return out


def fisher_interval(rho: float, sizes: list[int], confidence: float = 0.95) -> tuple[float, float]:
    """Fisher z interval for a Spearman rho estimated from groups of the given sizes.

    >>> [round(v, 3) for v in fisher_interval(0.5, [20])]
    [0.06, 0.777]
    """
    weight = sum(n - 3 for n in sizes if n > 3)
    if weight <= 0 or not math.isfinite(rho):
        return NAN, NAN
    z = math.atanh(min(max(rho, -RHO_CLIP), RHO_CLIP))
    half = stats.norm.ppf(0.5 + confidence / 2) * math.sqrt(SPEARMAN_Z_VARIANCE / weight)
    return math.tanh(z - half), math.tanh(z + half)


def _pooled(rows: list[dict], method: str, score_name: str) -> dict:
    """Fisher-z weighted mean of per-sparsity rhos (weights n-3), with interval and p."""
    usable = [r for r in rows if math.isfinite(r["rho"]) and r["n"] > 3]
    out = dict(method=method, scope="pooled", sparsity=NAN, score_name=score_name,
               n=int(sum(r["n"] for r in rows)), rho=NAN, ci_low=NAN, ci_high=NAN, p=NAN)
    if not usable:
        return out
    weights = np.array([r["n"] - 3 for r in usable], dtype=float)
    zs = np.arctanh(np.clip([r["rho"] for r in usable], -RHO_CLIP, RHO_CLIP))
    # With one usable sparsity the pooled rho is that rho (not its clipped round trip).
    rho = usable[0]["rho"] if len(usable) == 1 else float(np.tanh(np.sum(weights * zs) / weights.sum()))
    out["rho"] = rho
    out["ci_low"], out["ci_high"] = fisher_interval(rho, [r["n"] for r in usable])
    z_stat = np.sum(weights * zs) / math.sqrt(SPEARMAN_Z_VARIANCE * weights.sum())
    out["p"] = float(2 * stats.norm.sf(abs(z_stat)))
    return out


def score_predictiveness(trials: pd.DataFrame, method: str | None = None,
                         metric: str = "final_test_acc") -> pd.DataFrame:
    """Secondary: Spearman rho with all seeds pooled, per sparsity and combined.

    Confounded by parent (seed) effects (see the module docstring); the primary
    analysis is :func:`within_seed_predictiveness`.

    Returns :data:`COLUMNS`: ``method`` (the label; ``method`` None: every label with
    trained probes), ``scope`` ('sparsity' or 'pooled'), ``sparsity`` (NaN when
    pooled), ``score_name``, n candidates, rho, 95% Fisher z CI, p, and
    ``rho_useful`` (rho with the sign flipped where lower scores are better). One row
    per sparsity that has any scored-and-trained candidate, plus one pooled row per
    method and score name; an empty frame when no probe candidate was trained (no
    ``--probe`` run).
    """
    points = scored_candidates(trials, method, metric)
    if not (points["role"] == "probe").any():
        # The winners alone all have the best score of their pool: nothing to correlate.
        points = points.iloc[0:0]
    if "score_name" not in points.columns:
        points = points.assign(score_name="loss")
    rows = []
    for (label, score_name), of_score in points.groupby(["method", "score_name"], sort=True):
        per_sparsity = []
        for sparsity, group in of_score.groupby("sparsity", sort=True):
            result = spearman_with_ci(group["ranking_score"].to_numpy(float), group[metric].to_numpy(float))
            per_sparsity.append(dict(method=label, scope="sparsity", sparsity=float(sparsity),
                                     score_name=score_name, **result))
        rows += per_sparsity + [_pooled(per_sparsity, label, score_name)]
    table = pd.DataFrame(rows, columns=COLUMNS[:-1])
    # Lower loss should mean higher accuracy, so a useful loss score has a negative rho.
    table["rho_useful"] = table["rho"] * useful_sign(table["score_name"])
    return table


WITHIN_COLUMNS = ["method", "scope", "sparsity", "score_name", "n_groups", "n_seeds", "n_candidates",
                  "mean_rho", "ci_low", "ci_high", "p", "mean_rho_useful"]
WINNER_COLUMNS = ["method", "scope", "sparsity", "n_groups", "n_seeds", "mean_winner", "mean_probes",
                  "mean_diff", "ci_low", "ci_high", "p"]


def _probed(trials: pd.DataFrame, method: str | None, metric: str) -> pd.DataFrame:
    """Scored-and-trained candidates, or none at all when no probe was trained."""
    points = scored_candidates(trials, method, metric)
    require_columns(points, ["seed"])
    if not (points["role"] == "probe").any():
        return points.iloc[0:0]
    return points if "score_name" in points.columns else points.assign(score_name="loss")


def _over_seeds(per_group: pd.DataFrame, value: str) -> dict:
    """Mean, 95% t interval and two-sided t-test p of ``value`` over seeds.

    ``per_group`` has one row per (seed, sparsity); a seed's groups are averaged first,
    so that every seed (an independent parent) counts once.
    """
    per_seed = per_group.groupby("seed")[value].mean().to_numpy(float)
    stats_ = difference_statistics(per_seed, margin=None)
    return dict(n_groups=int(len(per_group)), n_seeds=int(stats_["n"]), mean=stats_["mean_diff"],
                ci_low=stats_["ci_low"], ci_high=stats_["ci_high"], p=stats_["p_t"])


def group_correlations(trials: pd.DataFrame, method: str | None = None,
                       metric: str = "final_test_acc") -> pd.DataFrame:
    """Spearman rho within each (seed, sparsity) group of scored-and-trained candidates.

    Returns ``method, score_name, sparsity, seed, n, rho`` (rho NaN when the group has fewer
    than 3 candidates or no spread in score or accuracy).
    """
    rows = []
    for (label, score_name, sparsity, seed), group in _probed(trials, method, metric).groupby(
            ["method", "score_name", "sparsity", "seed"], sort=True):
        result = spearman_with_ci(group["ranking_score"].to_numpy(float), group[metric].to_numpy(float))
        rows.append(dict(method=label, score_name=score_name, sparsity=float(sparsity), seed=seed,
                         n=result["n"], rho=result["rho"]))
    return pd.DataFrame(rows, columns=["method", "score_name", "sparsity", "seed", "n", "rho"])


def within_seed_predictiveness(trials: pd.DataFrame, method: str | None = None,
                               metric: str = "final_test_acc") -> pd.DataFrame:
    """Primary: mean within-(seed, sparsity) Spearman rho, per sparsity and overall, per method label and score.

    Returns :data:`WITHIN_COLUMNS`: ``method`` (the label; ``method`` None: every label
    with trained probes), ``scope`` ('sparsity' or 'overall'; ``sparsity``
    NaN overall), ``n_groups`` (groups with a defined rho), ``n_seeds`` (the
    independent units of the interval), ``n_candidates`` (in those groups), the mean
    rho with its 95% t interval over seeds and the t test's p, and
    ``mean_rho_useful`` (sign flipped where lower scores are better, as loss). Empty
    (with the columns) when no probe candidate was trained.

    >>> rows = [dict(method="random-search", status="done", sparsity=0.9, seed=seed,
    ...              role="selected" if i == 0 else "probe", candidate=i, score_name="loss",
    ...              init_score=2.0 + i / 10, final_test_acc=0.8 - i / 100 + seed / 10)
    ...         for seed in range(3) for i in range(4)]
    >>> table = within_seed_predictiveness(pd.DataFrame(rows))
    >>> table[["scope", "n_groups", "n_seeds", "mean_rho", "mean_rho_useful"]]
          scope  n_groups  n_seeds  mean_rho  mean_rho_useful
    0  sparsity         3        3      -1.0              1.0
    1   overall         3        3      -1.0              1.0
    """
    groups = group_correlations(trials, method, metric)
    groups = groups[np.isfinite(groups["rho"].astype(float))]
    rows = []
    for (label, score_name), of_score in groups.groupby(["method", "score_name"], sort=True):
        scopes = [("sparsity", float(s), g) for s, g in of_score.groupby("sparsity", sort=True)]
        for scope, sparsity, group in scopes + [("overall", NAN, of_score)]:
            summary = _over_seeds(group, "rho")
            rows.append(dict(method=label, scope=scope, sparsity=sparsity, score_name=score_name,
                             n_groups=summary["n_groups"], n_seeds=summary["n_seeds"],
                             n_candidates=int(group["n"].sum()), mean_rho=summary["mean"],
                             ci_low=summary["ci_low"], ci_high=summary["ci_high"], p=summary["p"]))
    table = pd.DataFrame(rows, columns=WITHIN_COLUMNS[:-1])
    table["mean_rho_useful"] = table["mean_rho"] * useful_sign(table["score_name"])
    return table


def winner_vs_probes(trials: pd.DataFrame, method: str | None = None,
                     metric: str = "final_test_acc") -> pd.DataFrame:
    """Primary: the selected winner's ``metric`` minus the mean of its group's probes.

    Per (method label, seed, sparsity) group with a finished winner and at least one
    finished probe; summarised per label, per sparsity and overall (``sparsity`` NaN) with
    :data:`WINNER_COLUMNS`: the mean difference (in the metric's units) with a 95% t
    interval and two-sided t-test p over seeds (a seed's groups averaged first), and
    the mean winner and probe accuracies. Empty when no probe was trained.

    >>> rows = [dict(method="random-search", status="done", sparsity=0.9, seed=seed,
    ...              role="selected" if i == 0 else "probe", candidate=i, score_name="loss",
    ...              init_score=2.0 + i / 10, final_test_acc=a + seed / 100)
    ...         for seed in range(3) for i, a in enumerate([0.80, 0.79, 0.77])]
    >>> winner_vs_probes(pd.DataFrame(rows))[["scope", "n_groups", "mean_diff"]].round(3)
          scope  n_groups  mean_diff
    0  sparsity         3       0.02
    1   overall         3       0.02
    """
    points = _probed(trials, method, metric)
    groups = []
    for (label, sparsity, seed), group in points.groupby(["method", "sparsity", "seed"], sort=True):
        winner, probes = group[group["role"] == "selected"], group[group["role"] == "probe"]
        if len(winner) and len(probes):
            win, rest = float(winner[metric].mean()), float(probes[metric].mean())
            groups.append(dict(method=label, sparsity=float(sparsity), seed=seed, winner=win, probes=rest,
                               diff=win - rest))
    groups = pd.DataFrame(groups, columns=["method", "sparsity", "seed", "winner", "probes", "diff"])
    rows = []
    for label, of_label in groups.groupby("method", sort=True):
        scopes = [("sparsity", float(s), g) for s, g in of_label.groupby("sparsity", sort=True)]
        for scope, sparsity, group in scopes + [("overall", NAN, of_label)]:
            summary = _over_seeds(group, "diff")
            rows.append(dict(method=label, scope=scope, sparsity=sparsity, n_groups=summary["n_groups"],
                             n_seeds=summary["n_seeds"], mean_winner=float(group["winner"].mean()),
                             mean_probes=float(group["probes"].mean()), mean_diff=summary["mean"],
                             ci_low=summary["ci_low"], ci_high=summary["ci_high"], p=summary["p"]))
    return pd.DataFrame(rows, columns=WINNER_COLUMNS)
