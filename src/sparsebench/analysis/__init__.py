"""Statistics over the store's results: pure functions of the trials and curves DataFrames.

Each function takes the ``trials`` table (one row per trial) and, for convergence,
the ``curves`` table (one row per trial and epoch), and returns a DataFrame. No
training, no store access, no randomness.

- :func:`paired_comparison` -- each method vs ``random`` per sparsity, paired by
  seed: mean difference, 95% t CI, paired t / Wilcoxon / TOST with Holm, verdict.
- :func:`dense_gap` -- each method's gap to the dense parent of the same seed.
- :func:`convergence_metrics`, :func:`compare_convergence` -- epochs to a threshold
  (censored at E) and area under the validation curve, vs ``random``.
- :func:`score_predictiveness` -- Spearman rho of random search's initial score vs
  trained accuracy over probe candidates.
- :func:`divergence_counts` -- diverged trials per sparsity and method.
- :func:`summary_table` -- the run summary with the verdict column.

>>> from sparsebench.analysis import synthetic_results, summary_table
>>> trials, curves = synthetic_results(seeds=3, sparsities=(0.5, 0.9))
>>> list(summary_table(trials)["method"][:3])
['dense', 'random', 'random-search']
"""

from sparsebench.analysis.convergence import compare_convergence, convergence_metrics
from sparsebench.analysis.dense_gap import dense_gap
from sparsebench.analysis.divergence import divergence_counts
from sparsebench.analysis.paired import (
    compare_family,
    difference_statistics,
    holm,
    paired_comparison,
)
from sparsebench.analysis.predictive import score_predictiveness
from sparsebench.analysis.summary import summary_table
from sparsebench.analysis.synthetic import synthetic_results
from sparsebench.analysis.trials import AnalysisInputError

__all__ = [
    "AnalysisInputError",
    "compare_convergence",
    "compare_family",
    "convergence_metrics",
    "dense_gap",
    "difference_statistics",
    "divergence_counts",
    "holm",
    "paired_comparison",
    "score_predictiveness",
    "summary_table",
    "synthetic_results",
]
