"""Tiny hand-made trials tables for the analysis tests."""

from __future__ import annotations

import math

import pandas as pd


def trials_from(values: dict, metric: str = "final_test_acc", **columns) -> pd.DataFrame:
    """One selected trial per value: ``{(method, sparsity): [value for seed 0, 1, ...]}``.

    A value of None makes that trial diverged (status 'diverged', NaN metric).
    """
    rows = []
    for (method, sparsity), per_seed in values.items():
        for seed, value in enumerate(per_seed):
            diverged = value is None
            rows.append(dict(
                trial_id=len(rows) + 1, experiment_id=1, method=method, role="selected",
                candidate=-1, sparsity=float(sparsity), seed=seed,
                status="diverged" if diverged else "done",
                diverged_epoch=3.0 if diverged else math.nan,
                **{metric: math.nan if diverged else float(value)}, **columns))
    return pd.DataFrame(rows)
