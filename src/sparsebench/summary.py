"""The summary a run ends with: per sparsity and method, test accuracy over seeds and the verdict."""

from __future__ import annotations

import pandas as pd

from .analysis import summary_table


def format_summary(trials: pd.DataFrame, margin: float = 0.01) -> str:
    """A plain-text table: test accuracy mean ± std (in %) over seeds, n, and the verdict vs random.

    ``trials`` holds one experiment's trials.
    """
    table = summary_table(trials, margin=margin)
    weights = trials[trials["role"] == "selected"].groupby(["sparsity", "method"])["weight_sparsity"].mean()
    width = max([24, *(len(m) for m in table["method"])])
    lines = [f"{'sparsity':>8}  {'weights':>8}  {'method':<{width}} {'test acc (%)':>15}  {'n':>3}  verdict vs random (±{100 * margin:g} pp)"]
    for r in table.itertuples():
        acc = f"{100 * r.mean_test_acc:6.2f} ± {100 * r.sd_test_acc:5.2f}" if r.n > 1 else (f"{100 * r.mean_test_acc:6.2f}" if r.n else "n/a")
        extra = f"  ({r.n_diverged} diverged)" if r.n_diverged else ""
        ws = weights.get((r.sparsity, r.method), float("nan"))
        lines.append(f"{r.sparsity:>8g}  {percent_removed(ws):>7}%  {r.method:<{width}} {acc:>15}  {r.n:>3}  {r.verdict}{extra}")
    lines.append("weights: fraction of the parent's weights removed. Verdicts: paired t test (Holm) and TOST; see `sparsebench report`.")
    return "\n".join(lines)


def percent_removed(fraction: float) -> str:
    """A percentage with one decimal, or as many as it takes not to print 100.0 for less than all.

    >>> percent_removed(0.726), percent_removed(0.99962), percent_removed(1.0)
    ('72.6', '99.96', '100.0')
    """
    for decimals in range(1, 6):
        text = f"{100 * fraction:.{decimals}f}"
        if fraction >= 1 or float(text) < 100:
            return text
    return text
