"""The summary a run ends with: per sparsity and method, test accuracy over seeds."""

from __future__ import annotations

import pandas as pd


def summary_frame(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (sparsity, method): n, mean and std of final test accuracy, diverged count."""
    selected = trials[trials["role"] == "selected"]
    rows = []
    for (sparsity, method), g in selected.groupby(["sparsity", "method"], sort=True):
        done = g[g["status"] == "done"]["final_test_acc"]
        rows.append(
            {
                "sparsity": sparsity,
                "method": method,
                "weight_sparsity": g["weight_sparsity"].mean(),
                "n": int(done.count()),
                "test_acc_mean": done.mean(),
                "test_acc_std": done.std(ddof=1) if done.count() > 1 else float("nan"),
                "diverged": int((g["status"] == "diverged").sum()),
            }
        )
    return pd.DataFrame(rows)


def format_summary(trials: pd.DataFrame) -> str:
    """A plain-text table: test accuracy mean ± std (in %) over seeds, and n."""
    df = summary_frame(trials)
    lines = [f"{'sparsity':>8}  {'weights':>7}  {'method':<24} {'test acc (%)':>15}  {'n':>3}"]
    for r in df.itertuples():
        acc = f"{100 * r.test_acc_mean:6.2f} ± {100 * r.test_acc_std:5.2f}" if r.n else "   n/a"
        extra = f"  ({r.diverged} diverged)" if r.diverged else ""
        lines.append(f"{r.sparsity:>8g}  {100 * r.weight_sparsity:6.1f}%  {r.method:<24} {acc:>15}  {r.n:>3}{extra}")
    return "\n".join(lines)
