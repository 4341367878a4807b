"""The summary a run ends with: per sparsity and method, test accuracy over seeds and the
verdict, then a warning for each method whose networks learned nothing (diverged, or at
chance level). Also what an unfinished experiment still lacks, for the report's notice.

>>> from sparsebench.analysis import synthetic_results
>>> trials, _ = synthetic_results(seeds=3, sparsities=(0.9,), epochs=2, diverged=[("random", 0.9, s) for s in range(3)])
>>> print(format_summary(trials).splitlines()[0])
sparsity   weights  method                   test acc % (mean ± sd)    n  verdict vs random (±1 pp)
>>> print(format_summary(trials.assign(flop_reduction=0.5)).splitlines()[0])
sparsity   weights     FLOPs  method                   test acc % (mean ± sd)    n  verdict vs random (±1 pp)
>>> failure_warnings(trials)
['random at sparsity 0.9: 3 of its 3 trials diverged.']
"""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from .analysis import summary_table
from .analysis.chance import chance_level_flags
from .analysis.divergence import divergence_counts
from .analysis.paired import MIN_SEEDS
from .analysis.trials import DENSE, method_order, selected_trials
from .config import DesignSection
from .errors import invalid
from .plan import plan, planned_trial_count

#: A network is "at chance level" when its final test accuracy is at most this far (2 pp)
#: above the chance accuracy: what a network that always gives one answer scores at most.
CHANCE_TOLERANCE = 0.02
#: A method is warned about at a sparsity when at least this share of its trials there failed.
FAILED_SHARE = 0.5

ACC_HEADER = "test acc % (mean ± sd)"


def format_summary(trials: pd.DataFrame, margin: float = 0.01, chance_acc: float | None = None) -> str:
    """A plain-text table: test accuracy mean ± sd (in %) over seeds, n, and the verdict vs
    random; below it one ``warning:`` line per method whose networks diverged or sit at
    chance level (see :func:`failure_warnings`).

    ``trials`` holds one experiment's trials; ``chance_acc`` is the accuracy of always
    the best test accuracy of a constant prediction (the store's data statistics), or None
    when unknown (older stores): then only divergence is checked.
    """
    table = summary_table(trials, margin=margin)
    removed = removed_fractions(trials)
    flops = removed["flop_reduction"] if removed["flop_reduction"].notna().any() else None
    lines = format_table(table, removed["weight_sparsity"], margin, flops)
    legend = "weights: fraction of the parent's weights removed"
    if flops is not None:
        legend += "; FLOPs: fraction of its FLOPs per example removed"
        if len(flops) and flops.isna().any():
            legend += f" ({NOT_RECORDED}: not recorded, trials stored before schema 5)"
    lines.append(f"{legend}. Verdicts: paired t test and TOST, Holm over every method × sparsity vs random, "
                 f"none below {MIN_SEEDS} paired seeds; see `sparsebench report`.")
    lines += [f"warning: {text}" for text in failure_warnings(trials, chance_acc)]
    return "\n".join(lines)


#: What the summary shows for a fraction that was not recorded (FLOPs of trials stored before schema 5).
NOT_RECORDED = "—"


def removed_fractions(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (sparsity, method) of the selected trials, the mean fraction of the dense parent's
    weights (``weight_sparsity``) and of its FLOPs per example (``flop_reduction``) removed.

    A fraction is NaN where no trial recorded it (``flop_reduction`` in stores written
    before schema 5), or when the table has no such column. For convolutional parents the
    two differ a lot: a convolution applies each weight at every position of its input.

    >>> import pandas as pd
    >>> trials = pd.DataFrame({"method": ["dense", "random"], "role": "selected", "sparsity": [0.0, 0.5],
    ...     "weight_sparsity": [0.0, 0.6], "flop_reduction": [0.0, 0.7]})
    >>> removed_fractions(trials).loc[(0.5, "random")].to_dict()
    {'weight_sparsity': 0.6, 'flop_reduction': 0.7}
    """
    columns = ["weight_sparsity", "flop_reduction"]
    selected = trials[trials["role"] == "selected"]
    selected = selected.assign(**{c: float("nan") for c in columns if c not in selected.columns})
    return selected.groupby(["sparsity", "method"])[columns].mean()


def format_table(table: pd.DataFrame, weights: Mapping, margin: float, flops: Mapping | None = None) -> list[str]:
    """The lines of the summary table for :func:`~sparsebench.analysis.summary_table` rows.

    ``weights`` and ``flops`` map (sparsity, method) to the fraction of the parent's
    weights and FLOPs removed; without ``flops`` the FLOPs column is left out, and a
    sparsity and method missing from it shows :data:`NOT_RECORDED`.
    The verdict comes last, so a long one ("identical (not tested)", "n/a (no random)")
    never pushes another column out of line.
    """
    width = max([24, *(len(m) for m in table["method"])])
    flops_header = "" if flops is None else f"  {'FLOPs':>8}"
    lines = [f"{'sparsity':>8}  {'weights':>8}{flops_header}  {'method':<{width}} {ACC_HEADER:>{len(ACC_HEADER)}}  "
             f"{'n':>3}  verdict vs random (±{100 * margin:g} pp)"]
    for r in table.itertuples():
        # One finished trial has no sd: pad so that its mean still lines up with the others'.
        acc = (f"{100 * r.mean_test_acc:6.2f} ± {100 * r.sd_test_acc:5.2f}" if r.n > 1
               else f"{100 * r.mean_test_acc:6.2f}{'':8}" if r.n else f"{'n/a':>6}{'':8}")
        verdict = "  ".join(part for part in (r.verdict, f"({r.n_diverged} diverged)" if r.n_diverged else "") if part)
        ws = weights.get((r.sparsity, r.method), float("nan"))
        lines.append(f"{r.sparsity:>8g}  {percent_removed(ws):>7}%{_flops_cell(flops, (r.sparsity, r.method))}  "
                     f"{r.method:<{width}} {acc:>{len(ACC_HEADER)}}  {r.n:>3}  {verdict}".rstrip())
    return lines


def _flops_cell(flops: Mapping | None, key: tuple) -> str:
    """The FLOPs column's cell, with the two spaces before it; nothing without the column."""
    if flops is None:
        return ""
    fraction = flops.get(key, float("nan"))
    if fraction is None or fraction != fraction:
        return f"  {NOT_RECORDED:>8}"
    return f"  {percent_removed(fraction):>7}%"


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


def _check_chance(chance_acc: float | None) -> float | None:
    if chance_acc is None:
        return None
    if not isinstance(chance_acc, (int, float)) or not 0 <= chance_acc <= 1:
        raise invalid("chance_acc", chance_acc, "an accuracy in [0, 1] or None")
    return float(chance_acc)


def network_failures(trials: pd.DataFrame, chance_acc: float | None = None,
                     tolerance: float = CHANCE_TOLERANCE) -> pd.DataFrame:
    """Per (sparsity, method) of the selected trials: ``n_trials``, ``n_diverged``, ``n_chance``
    (finished trials whose final test accuracy is at most ``chance_acc + tolerance``; 0 when
    ``chance_acc`` is None) and ``flagged``: at least :data:`FAILED_SHARE` of the trials
    diverged or sit at chance level.

    A network at chance level learned nothing usable: comparing such networks says
    nothing about the method, however the tests come out.

    >>> import pandas as pd
    >>> trials = pd.DataFrame({"method": "random", "role": "selected", "sparsity": 0.9,
    ...     "seed": [0, 1, 2], "status": ["done", "diverged", "done"], "final_test_acc": [0.11, None, 0.6]})
    >>> network_failures(trials, chance_acc=0.1).to_dict("records")
    [{'sparsity': 0.9, 'method': 'random', 'n_trials': 3, 'n_diverged': 1, 'n_chance': 1, 'flagged': True}]
    """
    chance_acc = _check_chance(chance_acc)
    table = divergence_counts(trials)[["sparsity", "method", "n_trials", "n_diverged"]]
    chosen = selected_trials(trials)
    if chance_acc is None or chosen.empty:
        table = table.assign(n_chance=0)
    else:
        counts = chance_level_flags(trials, chance_acc, tolerance)[["sparsity", "method", "n_at_chance"]]
        table = table.merge(counts.rename(columns={"n_at_chance": "n_chance"}), on=["sparsity", "method"], how="left")
        table["n_chance"] = table["n_chance"].fillna(0).astype(int)
    failed = table["n_diverged"] + table["n_chance"]
    table["flagged"] = (failed > 0) & (failed >= FAILED_SHARE * table["n_trials"])
    return table.reset_index(drop=True)


def _which(method: str, sparsity: float) -> str:
    return "the dense parent" if method == DENSE else f"{method} at sparsity {sparsity:g}"


def _failure_counts(row) -> str:
    """``3 of its 3 trials diverged`` / ``... are at chance level`` / ``... failed: 1 diverged and 2 are at chance level``."""
    failed = f"{row.n_diverged + row.n_chance} of its {row.n_trials} trials"
    chance = f"{'is' if row.n_chance == 1 else 'are'} at chance level"
    if row.n_diverged and row.n_chance:
        return f"{failed} failed: {row.n_diverged} diverged and {row.n_chance} {chance}"
    return f"{failed} {'diverged' if row.n_diverged else chance}"


def failure_warnings(trials: pd.DataFrame, chance_acc: float | None = None,
                     tolerance: float = CHANCE_TOLERANCE) -> list[str]:
    """One sentence per method and sparsity flagged by :func:`network_failures`, methods in
    report order, with the chance accuracy said once at the end of the first chance warning.

    >>> import pandas as pd
    >>> trials = pd.DataFrame({"method": "random", "role": "selected", "sparsity": 0.9,
    ...     "seed": [0, 1], "status": "done", "final_test_acc": [0.10, 0.11]})
    >>> failure_warnings(trials, chance_acc=0.1)
    ['random at sparsity 0.9: 2 of its 2 trials are at chance level (test accuracy at most 12.0%; a constant prediction scores at most 10.0%).']
    """
    table = network_failures(trials, chance_acc, tolerance)
    flagged = table[table["flagged"]]
    order = {m: i for i, m in enumerate(method_order(table["method"]))}
    flagged = flagged.assign(rank=flagged["method"].map(order)).sort_values(["rank", "sparsity"])
    warnings, explained = [], False
    for row in flagged.itertuples():
        text = f"{_which(row.method, row.sparsity)}: {_failure_counts(row)}"
        if row.n_chance and not explained:
            text += (f" (test accuracy at most {100 * min(1.0, chance_acc + tolerance):.1f}%; a constant prediction "
                     f"scores at most {100 * chance_acc:.1f}%)")
            explained = True
        warnings.append(text + ".")
    return warnings


def pending_work(config: Mapping[str, Any], trials: pd.DataFrame) -> pd.DataFrame:
    """What a stored experiment still lacks: per planned (sparsity, method), the trials planned
    and stored, for those with fewer stored than planned. The dense parent has sparsity 0.

    ``config`` is the stored config as plain values (seeds, sparsities, methods, probe);
    ``trials`` the experiment's stored trials, every role.

    >>> import pandas as pd
    >>> config = {"seeds": [0, 1], "sparsities": [0.5, 0.9], "methods": ["dense", "random"], "probe": 0}
    >>> stored = pd.DataFrame({"method": ["dense", "dense"], "sparsity": [0.0, 0.0]})
    >>> pending_work(config, stored).to_dict("records")
    [{'sparsity': 0.5, 'method': 'random', 'planned': 2, 'stored': 0}, {'sparsity': 0.9, 'method': 'random', 'planned': 2, 'stored': 0}]
    """
    planned: dict[tuple[float, str], int] = {}
    for group in plan(DesignSection.from_stored(config)):
        for method in group.methods:
            per_seed = 1 + group.probes_for(method)
            key = (0.0 if group.sparsity is None else float(group.sparsity), method)
            planned[key] = per_seed * len(group.seeds)
    stored = trials.groupby([trials["sparsity"].astype(float), "method"]).size().to_dict() if len(trials) else {}
    rows = [{"sparsity": s, "method": m, "planned": n, "stored": int(stored.get((s, m), 0))}
            for (s, m), n in planned.items() if stored.get((s, m), 0) < n]
    return pd.DataFrame(rows, columns=["sparsity", "method", "planned", "stored"])


def incomplete_notice(config: Mapping[str, Any], trials: pd.DataFrame) -> str:
    """The paragraph that opens the report of an unfinished experiment: how many planned
    trials are stored, and which sparsities and methods are still pending.

    >>> import pandas as pd
    >>> config = {"seeds": [0, 1, 2], "sparsities": [0.5, 0.9], "methods": ["dense", "random", "random-search"], "probe": 0}
    >>> stored = pd.DataFrame({"method": ["dense"] * 3, "sparsity": [0.0] * 3})
    >>> print(incomplete_notice(config, stored))
    Incomplete experiment: 3/15 planned trials are stored. Pending: sparsity 0.5 (random, random-search: 6 trials missing); sparsity 0.9 (random, random-search: 6 trials missing). Results for them are missing below; resume the run (`sparsebench run` with the same settings and store) to complete it.
    """
    pending = pending_work(config, trials)
    planned_total = planned_trial_count(config)
    parts = []
    for s, group in pending.groupby("sparsity", sort=True):
        methods = method_order(group["method"])
        missing = int((group["planned"] - group["stored"]).sum())
        where = "the dense parent" if methods == [DENSE] else f"sparsity {s:g}"
        trials_word = "trial" if missing == 1 else "trials"
        if methods == [DENSE]:
            parts.append(f"{where} ({missing} {trials_word} missing)")
        else:
            parts.append(f"{where} ({', '.join(methods)}: {missing} {trials_word} missing)")
    pending_text = f" Pending: {'; '.join(parts)}." if parts else ""
    return (f"Incomplete experiment: {len(trials)}/{planned_total} planned trials are stored.{pending_text} "
            "Results for them are missing below; resume the run (`sparsebench run` with the same settings and "
            "store) to complete it.")
