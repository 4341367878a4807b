"""Networks at chance level, counted per sparsity and method (for the summary's warnings).

A network that trained to chance level -- no better than always giving one answer --
has not learned anything: a collapsed optimizer, a learning
rate that is too high, a sub-network with too few nodes. Its accuracy is a
number, not a failure, so the paired comparison uses it like any other; a method
whose networks are all at chance can then look "identical" to a random baseline
that is also at chance. This table lets the summary and report warn about it.

A finished trial is **at chance** when ``final_test_acc <= chance_acc + tolerance``,
where ``chance_acc`` is the best test accuracy of a constant prediction
(``experiments.data_stats`` records it for every run) and
``tolerance`` (default 0.02, i.e. 2 pp) absorbs the few test rows a collapsed
network gets right by its bias. Diverged trials are counted apart (``n_diverged``),
never as at chance.

>>> import pandas as pd
>>> trials = pd.DataFrame({"method": "random", "role": "selected", "sparsity": 0.98,
...     "seed": [0, 1, 2], "status": ["done", "done", "diverged"],
...     "final_test_acc": [0.10, 0.115, float("nan")]})
>>> chance_level_flags(trials, chance_acc=0.1)[["method", "n_finished", "n_at_chance", "all_at_chance"]]
   method  n_finished  n_at_chance  all_at_chance
0  random           2            2           True
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sparsebench.analysis.trials import AnalysisInputError, method_order, require_columns, selected_trials

DEFAULT_TOLERANCE = 0.02
#: Keeps an accuracy of exactly chance + tolerance (e.g. 0.1 + 0.02) at chance despite float rounding.
ROUNDING = 1e-12

COLUMNS = ["sparsity", "method", "n_trials", "n_diverged", "n_finished", "n_at_chance",
           "at_chance_fraction", "all_at_chance", "mean_test_acc", "chance_acc", "tolerance"]


def _check_fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value) or not 0 <= value <= 1:
        raise AnalysisInputError(f"{name}: got {value!r}; allowed: a number in [0, 1]")
    return float(value)


def chance_level_flags(trials: pd.DataFrame, chance_acc: float, tolerance: float = DEFAULT_TOLERANCE,
                       metric: str = "final_test_acc") -> pd.DataFrame:
    """Per (sparsity, method) of the selected trials: how many finished at chance level.

    Returns :data:`COLUMNS`: ``n_trials``, ``n_diverged``, ``n_finished`` (status done),
    ``n_at_chance`` (finished with ``metric <= chance_acc + tolerance``), their fraction
    of the finished ones (NaN when none finished), ``all_at_chance`` (at least one
    finished and every finished one at chance: the case to warn about), the mean
    ``metric`` of the finished ones, and the ``chance_acc`` and ``tolerance`` used. Rows
    are sorted by sparsity, then in the usual method order.
    """
    chance_acc = _check_fraction("chance_acc", chance_acc)
    tolerance = _check_fraction("tolerance", tolerance)
    require_columns(trials, [metric])
    chosen = selected_trials(trials)
    done = chosen["status"] == "done"
    value = pd.to_numeric(chosen[metric], errors="coerce").astype(float)
    chosen = chosen.assign(diverged=chosen["status"] == "diverged", finished=done,
                           at_chance=done & (value <= chance_acc + tolerance + ROUNDING), value=value.where(done))
    table = chosen.groupby(["sparsity", "method"], sort=True).agg(
        n_trials=("finished", "size"), n_diverged=("diverged", "sum"), n_finished=("finished", "sum"),
        n_at_chance=("at_chance", "sum"), mean_test_acc=("value", "mean")).reset_index()
    for column in ("n_diverged", "n_finished", "n_at_chance"):
        table[column] = table[column].astype(int)
    finished = table["n_finished"].where(table["n_finished"] > 0)
    table["at_chance_fraction"] = table["n_at_chance"] / finished
    table["all_at_chance"] = (table["n_finished"] > 0) & (table["n_at_chance"] == table["n_finished"])
    table = table.assign(sparsity=table["sparsity"].astype(float), chance_acc=chance_acc, tolerance=tolerance)
    order = {m: i for i, m in enumerate(method_order(table["method"]))}
    table = table.sort_values(["sparsity", "method"],
                              key=lambda c: c.map(order) if c.name == "method" else c)
    return table[COLUMNS].reset_index(drop=True)
