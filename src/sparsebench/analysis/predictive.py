"""Is the search score predictive? Spearman correlation of initial score and trained accuracy.

Random search ranks candidate masks by a score measured at initialization
(``init_score``, the validation loss by default) and trains only the best. With
``--probe N`` sparsebench also trains N other scored candidates per (seed,
sparsity) (``role == 'probe'``). Over those probes plus the selected winner
(the "scored and trained candidates"), this module reports Spearman's rho between
``init_score`` and the trained ``final_test_acc``:

- per sparsity: ``scipy.stats.spearmanr`` over all scored-and-trained candidates of
  that sparsity (all seeds together), with its p-value and a 95% **Fisher z**
  interval using the Fieller-Hartley-Pearson standard error ``sqrt(1.06/(n-3))``
  for Spearman's rho (scipy gives no interval for Spearman); the interval needs
  n >= 4, the correlation n >= 3, else NaN. Candidates of all seeds are pooled
  here, so a seed whose parent is better overall adds to rho only if its scores
  are also better overall;
- pooled (``sparsity`` NaN, ``scope == 'pooled'``): the per-sparsity rhos combined
  on the Fisher z scale with weights n-3. Correlating all sparsities in one go
  would mostly measure sparsity itself (sparser networks start with higher loss
  *and* end with lower accuracy) rather than the score's ranking within the pool
  random search actually chooses from.

A *useful* loss score gives a negative rho (lower loss, higher accuracy); a useful
accuracy score a positive one. ``rho_useful`` flips the sign for loss scores so
that positive always means "the score ranks candidates the right way".

>>> import pandas as pd
>>> trials = pd.DataFrame({"method": "random-search", "status": "done",
...     "role": ["selected", "probe", "probe", "probe", "probe"], "sparsity": 0.9, "seed": 0,
...     "candidate": [3, 0, 1, 2, 4], "score_name": "loss",
...     "init_score": [2.0, 2.1, 2.3, 2.2, 2.4], "final_test_acc": [0.8, 0.79, 0.75, 0.77, 0.74]})
>>> score_predictiveness(trials)[["scope", "n", "rho", "rho_useful"]]
      scope  n  rho  rho_useful
0  sparsity  5 -1.0         1.0
1    pooled  5 -1.0         1.0
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from sparsebench.analysis.intervals import NAN, is_constant
from sparsebench.analysis.trials import require_columns, require_single_experiment

SEARCH_METHOD = "random-search"
# Fieller, Hartley & Pearson (1957): variance of atanh(Spearman rho) is about 1.06/(n-3).
SPEARMAN_Z_VARIANCE = 1.06
# atanh(+-1) is infinite; a perfect rank correlation of a few points is clipped to this
# before the z transform, so its interval stays finite instead of collapsing to a point.
RHO_CLIP = 0.9999

COLUMNS = ["scope", "sparsity", "score_name", "n", "rho", "ci_low", "ci_high", "p", "rho_useful"]


def scored_candidates(trials: pd.DataFrame, method: str = SEARCH_METHOD,
                      metric: str = "final_test_acc") -> pd.DataFrame:
    """Finished trials of ``method`` that were scored and trained: probes plus the winner.

    Rows with a NaN score or metric are dropped (diverged trials have NaN metrics
    and are excluded explicitly by status).
    """
    require_columns(trials, ["method", "role", "status", "sparsity", "init_score", metric])
    require_single_experiment(trials)
    of_method = trials[(trials["method"] == method) & (trials["status"] == "done")]
    winner = of_method["role"] == "selected"
    if "candidate" in of_method.columns:
        winner &= of_method["candidate"] >= 0
    chosen = of_method[(of_method["role"] == "probe") | winner]
    finite = np.isfinite(chosen["init_score"].astype(float)) & np.isfinite(chosen[metric].astype(float))
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


def _pooled(rows: list[dict], score_name: str) -> dict:
    """Fisher-z weighted mean of per-sparsity rhos (weights n-3), with interval and p."""
    usable = [r for r in rows if math.isfinite(r["rho"]) and r["n"] > 3]
    out = dict(scope="pooled", sparsity=NAN, score_name=score_name,
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


def score_predictiveness(trials: pd.DataFrame, method: str = SEARCH_METHOD,
                         metric: str = "final_test_acc") -> pd.DataFrame:
    """Spearman rho between ``init_score`` and ``metric`` per sparsity, and pooled.

    Returns :data:`COLUMNS`: ``scope`` ('sparsity' or 'pooled'), ``sparsity`` (NaN
    when pooled), ``score_name``, n candidates, rho, 95% Fisher z CI, p, and
    ``rho_useful`` (rho with the sign flipped for loss scores). One row per
    sparsity that has any scored-and-trained candidate, plus one pooled row per
    score name; an empty frame when no probe candidate was trained (no ``--probe`` run).
    """
    points = scored_candidates(trials, method, metric)
    if not (points["role"] == "probe").any():
        # The winners alone all have the best score of their pool: nothing to correlate.
        points = points.iloc[0:0]
    if "score_name" not in points.columns:
        points = points.assign(score_name="loss")
    rows = []
    for score_name, of_score in points.groupby("score_name", sort=True):
        per_sparsity = []
        for sparsity, group in of_score.groupby("sparsity", sort=True):
            result = spearman_with_ci(group["init_score"].to_numpy(float), group[metric].to_numpy(float))
            per_sparsity.append(dict(scope="sparsity", sparsity=float(sparsity),
                                     score_name=score_name, **result))
        rows += per_sparsity + [_pooled(per_sparsity, score_name)]
    table = pd.DataFrame(rows, columns=COLUMNS[:-1])
    # Lower loss should mean higher accuracy, so a useful loss score has a negative rho.
    sign = np.where(table["score_name"] == "loss", -1.0, 1.0)
    table["rho_useful"] = table["rho"] * sign
    return table
