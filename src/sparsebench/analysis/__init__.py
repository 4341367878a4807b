"""Statistics over the store's results: pure functions of the trials and curves DataFrames.

Each function takes the ``trials`` table (one row per trial) and, for convergence,
the ``curves`` table (one row per trial and epoch), and returns a DataFrame. No
training, no store access, no randomness.

- :func:`paired_comparison` -- each method vs ``random`` per sparsity, paired by
  seed: mean difference, 95% t CI, paired t / Wilcoxon / TOST with Holm, verdict.
- :func:`dense_gap` -- each method's gap to the dense parent of the same seed.
- :func:`convergence_metrics`, :func:`compare_convergence` -- epochs to a threshold
  (censored at E) and area under the accuracy curve of the monitoring split (else
  the validation split), vs ``random``.
- :func:`within_seed_predictiveness`, :func:`winner_vs_probes` -- is a search's
  initial score predictive of trained accuracy within a seed (primary);
  :func:`score_predictiveness` -- the same pooled over seeds (secondary, confounded).
- :func:`divergence_counts` -- diverged trials per sparsity and method.
- :func:`chance_level_flags` -- finished trials at chance level per sparsity and method.
- :func:`summary_table` -- the run summary with the verdict column.
- :func:`leaderboard`, :func:`selection_cost`, :func:`gain_vs_cost` -- methods ranked by
  mean gain over ``random``; what each spent to choose its masks; the two side by side.

>>> from sparsebench.analysis import synthetic_results, summary_table
>>> trials, curves = synthetic_results(seeds=3, sparsities=(0.5, 0.9))
>>> list(summary_table(trials)["method"][:3])
['dense', 'random', 'random-search']
"""

from sparsebench.analysis.chance import chance_level_flags
from sparsebench.analysis.convergence import compare_convergence, convergence_metrics, convergence_split
from sparsebench.analysis.dense_gap import dense_gap
from sparsebench.analysis.divergence import divergence_counts
from sparsebench.analysis.leaderboard import gain_vs_cost, leaderboard, selection_cost
from sparsebench.analysis.paired import (
    MIN_SEEDS,
    compare_family,
    difference_statistics,
    holm,
    paired_comparison,
)
from sparsebench.analysis.predictive import score_predictiveness, winner_vs_probes, within_seed_predictiveness
from sparsebench.analysis.summary import summary_table
from sparsebench.analysis.synthetic import synthetic_results
from sparsebench.analysis.trials import AnalysisInputError

__all__ = [
    "AnalysisInputError",
    "MIN_SEEDS",
    "chance_level_flags",
    "compare_convergence",
    "compare_family",
    "convergence_metrics",
    "convergence_split",
    "dense_gap",
    "difference_statistics",
    "divergence_counts",
    "gain_vs_cost",
    "holm",
    "leaderboard",
    "paired_comparison",
    "score_predictiveness",
    "selection_cost",
    "summary_table",
    "synthetic_results",
    "winner_vs_probes",
    "within_seed_predictiveness",
]
