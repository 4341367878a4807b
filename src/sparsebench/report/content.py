"""What the report says: runs every analysis once and arranges text, tables and figures.

>>> from sparsebench.analysis import synthetic_results
>>> trials, curves = synthetic_results(seeds=3, sparsities=(0.5, 0.9), epochs=4)
>>> report = build_report(trials, curves, {"dataset": "synthetic", "seeds": 3})
>>> [section.heading for section in report.sections][:3]
['Summary', 'Setup', 'Test accuracy: each method vs random']
"""

from __future__ import annotations

import json
from typing import Mapping

import pandas as pd

from sparsebench.analysis.convergence import (
    DEFAULT_FRACTION,
    SPLIT_DESCRIPTIONS,
    compare_convergence,
    convergence_metrics,
)
from sparsebench.analysis.dense_gap import dense_gap
from sparsebench.analysis.divergence import divergence_counts
from sparsebench.analysis.leaderboard import COST_COLUMNS, gain_vs_cost, leaderboard
from sparsebench.analysis.paired import ALPHA, DEFAULT_MARGIN, MIN_SEEDS, min_wilcoxon_p, paired_comparison
from sparsebench.analysis.predictive import score_predictiveness, winner_vs_probes, within_seed_predictiveness
from sparsebench.analysis.summary import summary_table
from sparsebench.analysis.trials import (
    BASELINE,
    DENSE,
    RANDOM_SEARCH,
    comparable_trials,
    method_order,
    require_single_experiment,
)
from sparsebench.report import figures
from sparsebench.report.blocks import Block, FigureBlock, Paragraph, Report, Section, Table
from sparsebench.report.formatting import (
    ci_plain,
    ci_pp,
    fixed,
    number,
    percent,
    pp,
    pvalue,
    signed,
    sparsity,
)
from sparsebench.report.sentences import (
    convergence_sentence,
    dense_gap_sentence,
    divergence_sentence,
    pooled_predictive_sentence,
    predictive_comparison_sentence,
    predictive_sentence,
    score_words,
    verdict_sentence,
)
from sparsebench.summary import failure_warnings, percent_removed, removed_fractions

# Every figure name (file stem, ``figures/<name>.png``) a report can contain. A report
# writes a subset; ``write_report`` removes the others' files left by an earlier report.
FIGURE_NAMES = ("leaderboard", "paired_differences", "gain_vs_cost", "accuracy_vs_sparsity", "learning_curves",
                "convergence_auc", "epochs_to_threshold", "score_vs_accuracy")
#: The summary's words for the primary metric's Holm family (see ``analysis.paired``).
HOLM_ACROSS = "method × sparsity comparisons"


def _dense_missing(trials: pd.DataFrame, needed_for: str) -> str:
    """One sentence saying why ``needed_for`` cannot be shown: no finished dense parent."""
    if DENSE not in set(trials["method"]):
        return f"{needed_for} need the dense parent (method `{DENSE}`), which this experiment did not run."
    return (f"{needed_for} need a finished dense parent (method `{DENSE}`); none of this "
            "experiment's dense trials finished.")


def build_report(
    trials: pd.DataFrame,
    curves: pd.DataFrame,
    config: Mapping,
    margin: float = DEFAULT_MARGIN,
    alpha: float = ALPHA,
    fraction: float = DEFAULT_FRACTION,
    notice: str | None = None,
    chance_acc: float | None = None,
) -> Report:
    """The whole report for one experiment as a :class:`~sparsebench.report.blocks.Report`.

    ``notice``, when given, opens the report (e.g. that the experiment is incomplete).
    ``chance_acc``: the best test accuracy of a constant prediction
    (None when unknown); a method whose networks sit at it, or diverged, is warned about.
    """
    require_single_experiment(trials)
    if len(trials) and (trials["status"] == "diverged").all():
        return _all_diverged_report(trials, config, notice)
    accuracy = paired_comparison(trials, "final_test_acc", margin, alpha)
    loss = paired_comparison(trials, "final_test_loss", None, alpha)
    gaps = dense_gap(trials)
    has_curves = curves is not None and not curves.empty
    metrics = convergence_metrics(trials, curves, fraction) if has_curves else None
    convergence = compare_convergence(trials, curves, fraction, margin, None, alpha, metrics=metrics) if has_curves else None
    diverged = divergence_counts(trials)
    # Convergence thresholds are relative to the dense parent's final validation accuracy.
    thresholds = metrics is not None and bool(metrics["threshold"].notna().any())
    if convergence is not None and not thresholds:
        convergence = convergence[convergence["metric"] != "epochs_to_threshold"].reset_index(drop=True)
    dataset = config.get("dataset")
    if not dataset and "dataset" in trials.columns and len(trials):
        dataset = trials["dataset"].iloc[0]
    sections = [
        _summary(trials, accuracy, gaps, convergence, diverged, margin, alpha),
        Section("Setup", [Table(["setting", "value"], _config_rows(config, trials),
                                "The experiment's configuration.")]),
        _accuracy_section(accuracy, margin, alpha),
        _cost_section(trials, accuracy),
        _dense_section(trials, gaps),
        _loss_section(loss),
    ]
    if has_curves:
        sections.append(_convergence_section(trials, curves, metrics, convergence, fraction, thresholds))
    split = metrics.attrs.get("split", "validation") if metrics is not None else "validation"
    sections += [_predictive_section(trials), _divergence_section(diverged),
                 _notes(margin, alpha, fraction, has_curves, thresholds, split)]
    if accuracy["method"].nunique() > 1:  # a leaderboard of one method says nothing the summary does not
        sections.insert(0, _leaderboard_section(accuracy, margin, alpha, gaps, trials))
    warnings = _warnings_section(trials, chance_acc)
    if warnings is not None:
        sections.insert(0, warnings)
    if notice:
        sections.insert(0, Section("Status", [Paragraph(notice)]))
    return Report(f"sparsebench report: {dataset}" if dataset else "sparsebench report", sections)


def _all_diverged_report(trials: pd.DataFrame, config: Mapping, notice: str | None) -> Report:
    """An experiment without a single finished trial: say so once, list the divergences, nothing else."""
    diverged = divergence_counts(trials)
    sentence = (f"Every one of this experiment's {len(trials)} stored trials diverged (the training loss "
                "became non-finite), so there is nothing to compare; a smaller learning rate usually helps.")
    sections = [Section("Summary", [Paragraph(sentence)]),
                Section("Setup", [Table(["setting", "value"], _config_rows(config, trials),
                                        "The experiment's configuration.")]),
                _divergence_section(diverged)]
    if notice:
        sections.insert(0, Section("Status", [Paragraph(notice)]))
    dataset = config.get("dataset") or (trials["dataset"].iloc[0] if "dataset" in trials.columns else None)
    return Report(f"sparsebench report: {dataset}" if dataset else "sparsebench report", sections)


def _summary(trials, accuracy, gaps, convergence, diverged, margin, alpha) -> Section:
    blocks = []
    methods = [m for m in method_order(trials["method"].unique()) if m not in (BASELINE, DENSE)]
    dense_run = DENSE in set(trials["method"])
    for method in methods:
        rows = accuracy[accuracy["method"] == method]
        # Holm's family: every method x sparsity with a p-value (analysis.paired, the primary metric).
        sentences = [verdict_sentence(row, int(row["holm_family_size"]), HOLM_ACROSS) for row in rows.to_dict("records")]
        if dense_run:  # without it, the dense section says once why there is no gap
            sentences.append(dense_gap_sentence(gaps[gaps["method"] == method]))
        if convergence is not None:
            sentences.append(convergence_sentence(convergence[convergence["method"] == method]))
        sentences.append(divergence_sentence(diverged[diverged["method"] == method]))
        blocks.append(Paragraph(" ".join(s for s in sentences if s)))
    if not methods:
        blocks.append(Paragraph("No method besides the baselines (dense, random) has stored trials, so there is "
                                "no method to compare with random."))
    summary = summary_table(trials, margin, alpha, comparison=accuracy)
    removed, removed_headers, removed_caption = _removed_columns(trials)
    rows = [[sparsity(r.sparsity), *removed(r.sparsity, r.method), r.method, str(r.n),
             _mean_sd(r.mean_test_acc, r.sd_test_acc, r.n), str(r.n_diverged), r.verdict or "—"]
            for r in summary.itertuples()]
    blocks.append(Table(["sparsity", *removed_headers, "method", "n finished", "test accuracy % (mean ± sd)",
                         "diverged", "verdict vs random"], rows,
                        f"Selected trials per sparsity and method.{removed_caption} Verdict: see the next "
                        f"sections (final test accuracy, paired t test, margin ±{margin * 100:g} pp, alpha "
                        f"{alpha:g}, Holm over every method × sparsity compared with random; no verdict below {MIN_SEEDS} "
                        f"paired seeds)."))
    return Section("Summary", blocks)


#: The cell of a fraction removed that the trials did not record (FLOPs before schema 5).
NOT_RECORDED = "not recorded"

_REMOVED_HEADERS = {"weight_sparsity": "weights removed %", "flop_reduction": "FLOPs removed %"}

_REMOVED_CAPTIONS = {
    ("weight_sparsity",): (" Weights removed: the fraction of the parent's weights and biases that the "
                           "sub-networks remove (mean over seeds)."),
    ("weight_sparsity", "flop_reduction"): (
        " Weights and FLOPs removed: the fractions of the parent's weights and biases, and of its "
        "FLOPs per example (one forward pass), that the sub-networks remove (mean over seeds). They differ "
        "where a weight is used more than once per example: a convolution applies its weights at every "
        "position."),
    ("flop_reduction",): (" FLOPs removed: the fraction of the parent's FLOPs per example (one forward "
                          "pass) that the sub-networks remove (mean over seeds)."),
    (): "",
}


def _removed_columns(trials: pd.DataFrame):
    """The summary table's columns of the fractions of the parent's weights and FLOPs
    removed: a function giving the cells of one (sparsity, method), the headers, and the
    caption's sentences about them.

    A column no trial recorded is left out: FLOPs removed in a store written before
    schema 5 (the caption says so), either one in a table without the column. Where only
    some (sparsity, method) recorded it, the others say ``not recorded``.
    """
    means = removed_fractions(trials)
    shown = tuple(c for c in _REMOVED_HEADERS if c in trials.columns and means[c].notna().any())

    def cells(s: float, method: str) -> list[str]:
        values = means.loc[(s, method)] if (s, method) in means.index else None
        return [NOT_RECORDED if values is None or pd.isna(values[c]) else percent_removed(values[c]) for c in shown]

    caption = _REMOVED_CAPTIONS[shown]
    if "flop_reduction" in trials.columns and "flop_reduction" not in shown and len(trials):
        caption += (" FLOPs removed are not shown: these trials did not record them (they were stored before "
                    "schema 5).")
    return cells, [_REMOVED_HEADERS[c] for c in shown], caption


def _mean_sd(mean: float, sd: float, n: int) -> str:
    return f"{percent(mean)} ± {percent(sd)}" if n > 1 else percent(mean)


def _config_rows(config: Mapping, trials: pd.DataFrame) -> list[list[str]]:
    rows = [[str(key), _method_specs(value) if key == "method_specs" else _plain(value)] for key, value in config.items()
            if not (key == "method_specs" and not value)]  # a config of plain names has none: as before labels
    known = {str(k) for k in config}
    for column in ("experiment_id", "config_hash"):
        if column not in known and column in trials.columns and len(trials):
            rows.append([column, str(trials[column].iloc[0])])
    return rows


def _method_specs(specs) -> str:
    """The labelled methods as ``label = name {params}``, one after another."""
    return "; ".join(f"{label} = {name} {params}" for label, name, params in specs)


def _plain(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _verdict_rows(table: pd.DataFrame, in_pp: bool) -> list[list[str]]:
    diff = pp if in_pp else (lambda v: signed(v, 3))
    interval = ci_pp if in_pp else (lambda lo, hi: ci_plain(lo, hi, 3))
    return [[sparsity(r.sparsity), r.method, str(r.n), diff(r.mean_diff), interval(r.ci_low, r.ci_high),
             pvalue(r.p_t_holm), pvalue(r.p_wilcoxon_holm), pvalue(r.p_tost_holm), r.verdict, r.reason]
            for r in table.itertuples()]


_VERDICT_COLUMNS = ["sparsity", "method", "n pairs", "mean diff", "95% CI (paired t)", "p t (Holm)",
                    "p Wilcoxon (Holm)", "p TOST (Holm)", "verdict", "reason"]


def _accuracy_section(accuracy: pd.DataFrame, margin: float, alpha: float) -> Section:
    blocks: list = [Table(_VERDICT_COLUMNS, _verdict_rows(accuracy, True),
                          f"Final test accuracy, method − random, paired by seed: the primary metric, "
                          f"and the paired t test is the primary test. Differences in percentage "
                          f"points; equivalence margin ±{margin * 100:g} pp; alpha {alpha:g}; p-values "
                          f"Holm-adjusted over one family: every method × sparsity compared with random.")]
    if not accuracy.empty:
        blocks.append(FigureBlock("paired_differences", (
            "Mean paired difference to random per sparsity with its 95% paired t interval; the shaded "
            "band is the equivalence margin. Verdicts use Holm-adjusted p-values and TOST (a 90% "
            "interval), so an interval touching the margin can still be 'equivalent'."),
            figures.png_bytes(figures.paired_differences(accuracy, margin))))
    else:
        blocks.append(Paragraph("No method could be paired with random (was random run?)."))
    return Section("Test accuracy: each method vs random", blocks)


def _leaderboard_section(accuracy: pd.DataFrame, margin: float, alpha: float, gaps: pd.DataFrame | None = None,
                         trials: pd.DataFrame | None = None) -> Section:
    """Methods × sparsities, each cell the paired difference to random with its CI and verdict,
    methods by mean gain, then the two references unranked (random itself, and the dense parent's
    difference to it); the same as a figure; and the Holm family said out loud."""
    board = leaderboard(accuracy)
    sparsities = sorted(accuracy["sparsity"].unique())
    cells = {(r.method, r.sparsity): r for r in accuracy.itertuples()}
    rows = []
    for r in board.itertuples():
        row = [str(r.rank), r.method, pp(r.mean_gain)]
        for s in sparsities:
            cell = cells.get((r.method, s))
            row.append("—" if cell is None else _leaderboard_cell(cell))
        rows.append(row)
    rows += _reference_rows(trials, gaps, sparsities)
    table = Table(["rank", "method", "mean gain", *(f"sparsity {sparsity(s)}" for s in sparsities)], rows,
                  f"Final test accuracy, method − random, paired by seed: mean difference in percentage points, "
                  f"its 95% paired t interval, and the verdict (margin ±{margin * 100:g} pp, alpha {alpha:g}, "
                  f"no verdict below {MIN_SEEDS} paired seeds). Mean gain: the mean of a method's differences "
                  "over its sparsities; methods are ranked by it, best first. Unranked below them, the references: "
                  f"{BASELINE} itself (its mean test accuracy) and the dense parent (dense − {BASELINE}, paired by "
                  "seed; no verdict, and outside the Holm family, which holds the sparse methods only).")
    family = int(accuracy["p_t"].notna().sum())
    methods, levels = accuracy["method"].nunique(), len(sparsities)
    holm = Paragraph(
        f"Multiple comparisons: the p-values behind these verdicts are Holm-adjusted over one family, every "
        f"method × sparsity compared with random on the primary metric (final test accuracy, paired t test; "
        f"TOST and Wilcoxon likewise): here {methods} methods × {levels} "
        f"{'sparsity' if levels == 1 else 'sparsities'}, {family} comparison{'s' if family != 1 else ''} with a "
        "p-value. Adding a method to an experiment therefore changes the adjustment of the others: their "
        "adjusted p-values grow with the family, and a verdict near the threshold can change. The 95% intervals "
        "are not adjusted.")
    order = board["method"].tolist()
    figure = FigureBlock("leaderboard", (
        "The leaderboard as a forest plot, one panel per sparsity: mean paired difference to random with its "
        "95% paired t interval, methods ranked by mean gain (best on top), the equivalence margin shaded, "
        "the verdict above each point."),
        figures.png_bytes(figures.leaderboard_forest(accuracy, order, margin)))
    return Section("Leaderboard", [table, figure, holm])


def _reference_rows(trials: pd.DataFrame | None, gaps: pd.DataFrame | None, sparsities: list[float]) -> list[list[str]]:
    """The leaderboard's unranked rows: the baseline's mean accuracy per sparsity (over its finished trials) and
    the dense parent's paired difference to it (the negated gap of the baseline to dense, with its interval)."""
    if trials is None:
        return []
    finished = comparable_trials(trials)
    baseline = finished[finished["method"] == BASELINE].groupby("sparsity")["final_test_acc"].mean()
    rows = [["—", f"{BASELINE} (baseline)", "0 by definition"]
            + [f"{percent(baseline[s])}% (the baseline)" if s in baseline.index else "—" for s in sparsities]]
    if gaps is None or gaps.empty:
        return rows
    of_baseline = gaps[gaps["method"] == BASELINE].set_index("sparsity")
    if of_baseline.empty:
        return rows
    cells, diffs = [], []
    for s in sparsities:
        if s not in of_baseline.index:
            cells.append("—")
            continue
        g = of_baseline.loc[s]
        diffs.append(-float(g["gap_mean"]))
        interval = ci_pp(-g["ci_high"], -g["ci_low"])
        cells.append(" ".join(part for part in (pp(-g["gap_mean"]), "" if interval == "n/a" else interval,
                                                "(reference)") if part))
    mean = sum(diffs) / len(diffs) if diffs else float("nan")
    return rows + [["—", f"{DENSE} (parent)", pp(mean), *cells]]


def _leaderboard_cell(row) -> str:
    """``+1.2 pp [−0.3, +2.7] inconclusive``: a leaderboard cell."""
    interval = ci_pp(row.ci_low, row.ci_high)
    return " ".join(part for part in (pp(row.mean_diff), "" if interval == "n/a" else interval, row.verdict) if part)


#: How the report names the cost columns, and how it prints their means.
_COST_HEADERS = {"candidate_evaluations": "sub-networks scored", "search_epochs": "epochs on search",
                 "selection_seconds": "seconds of selection"}


def _cost_cell(column: str, value: float, recorded: int) -> str:
    if not recorded:
        return NOT_RECORDED
    if column == "selection_seconds":
        return f"{value:.3g}" if value == value else "n/a"
    return number(value, 6)


def _cost_section(trials: pd.DataFrame, accuracy: pd.DataFrame) -> Section:
    """Gain over random against what each method spent to choose its masks."""
    table = gain_vs_cost(accuracy, trials)
    heading = "Gain over random vs cost of search"
    if table.empty:
        return Section(heading, [Paragraph("No method could be paired with random, so there is no gain to "
                                           "set against a cost.")])
    rows = [[r.method, sparsity(r.sparsity), ("0 (reference)" if r.method == BASELINE else pp(r.mean_diff)),
             ("—" if r.method == BASELINE else ci_pp(r.ci_low, r.ci_high)), r.verdict or "—",
             *(_cost_cell(c, getattr(r, c), r.n_recorded) for c in COST_COLUMNS)]
            for r in table.itertuples()]
    blocks: list[Block] = [Table(
        ["method", "sparsity", "gain over random", "95% CI", "verdict", *_COST_HEADERS.values()], rows,
        "What a search buys for what it spends. Gain: final test accuracy − random, paired by seed (as in "
        "the leaderboard). Cost, per trial's selection and mean over seeds: the sub-networks the method "
        "scored to choose its mask (random search: its K candidates), the training epochs it spent on "
        "search, and the wall-clock seconds of its select() (machine and load dependent, so they are left "
        "out of the default export).")]
    if (table["n_recorded"] == 0).any():
        blocks.append(Paragraph(f"{NOT_RECORDED.capitalize()}: these trials were stored before schema 6, "
                                "which did not record the cost of a selection."))
    drawn = table[(table["method"] != BASELINE) & (table["n_recorded"] > 0)]
    if not drawn.empty and drawn["mean_diff"].notna().any():
        blocks.append(FigureBlock("gain_vs_cost", (
            "Mean gain over random (95% paired t interval) against the sub-networks each method scored to "
            "choose a mask, one panel per sparsity; the cost axis is linear up to 1 and logarithmic above "
            "(random and any method that scores nothing sit at 0)."),
            figures.png_bytes(figures.gain_vs_cost(table))))
        # A search that trains its candidates (trained-search) scores few of them at a high price: its
        # training epochs are the cost to set the gain against.
        if (drawn["search_epochs"].astype(float) > 0).any():
            blocks.append(FigureBlock("gain_vs_search_epochs", (
                "Mean gain over random (95% paired t interval) against the training epochs each method spent "
                "on search per trial (summed over the candidates it trained), one panel per sparsity; the axis "
                "is linear up to 1 and logarithmic above (methods that train nothing to choose sit at 0)."),
                figures.png_bytes(figures.gain_vs_cost(table, cost="search_epochs"))))
    return Section(heading, blocks)


def _dense_section(trials: pd.DataFrame, gaps: pd.DataFrame) -> Section:
    # The figure draws the dense parent only when one of its trials finished.
    dense_drawn = DENSE in set(comparable_trials(trials)["method"])
    figure = FigureBlock("accuracy_vs_sparsity", (
        "Final test accuracy per method (mean over seeds, band: 95% t interval)"
        + ("; dashed: the dense parent with its interval" if dense_drawn else "")
        + ". Diverged trials are not included."),
        figures.png_bytes(figures.accuracy_vs_sparsity(trials)))
    if not dense_drawn:
        return Section("Test accuracy vs sparsity", [
            figure, Paragraph(_dense_missing(trials, "Gaps to the unpruned network"))])
    if gaps.empty:
        gap: Block = Paragraph("No method trial shares a seed with a finished dense parent, so there is "
                               "no gap to report.")
    else:
        rows = [[sparsity(r.sparsity), r.method, str(r.n), percent(r.mean_method), percent(r.mean_dense),
                 pp(r.gap_mean), ci_pp(r.ci_low, r.ci_high)] for r in gaps.itertuples()]
        gap = Table(["sparsity", "method", "n pairs", "method %", "dense %", "gap", "95% CI"], rows,
                    "Gap = method − dense parent of the same seed, in percentage points.")
    return Section("Test accuracy vs sparsity, and the gap to the dense parent", [figure, gap])


def _loss_section(loss: pd.DataFrame) -> Section:
    return Section("Test loss: each method vs random", [Table(
        _VERDICT_COLUMNS, _verdict_rows(loss, False),
        "Final test loss (lower is better), method − random. No equivalence margin is set for a "
        "loss, so the verdict is better, worse or inconclusive.")])


def _convergence_section(trials, curves, metrics, convergence, fraction, thresholds) -> Section:
    split = metrics.attrs.get("split", "validation")
    on = "monitoring-split" if split == "monitor" else "validation"
    rows = [[r.metric, sparsity(r.sparsity), r.method, str(r.n),
             (pp(r.mean_diff) if r.metric == "auc" else signed(r.mean_diff, 2)),
             (ci_pp(r.ci_low, r.ci_high) if r.metric == "auc" else ci_plain(r.ci_low, r.ci_high)),
             pvalue(r.p_t_holm), pvalue(r.p_wilcoxon_holm),
             (f"{r.n_censored_method} / {r.n_censored_baseline}" if r.metric != "auc" else "—"),
             r.verdict, r.reason]
            for r in convergence.itertuples()]
    blocks: list[Block] = [
        Paragraph(_split_statement(split, metrics, thresholds)),
        FigureBlock("learning_curves", (f"{on.capitalize()} accuracy per epoch, mean over seeds, per sparsity "
                                        "(a stopped network held at its last value)."),
                    figures.png_bytes(figures.learning_curves(trials, curves, split))),
        FigureBlock("convergence_auc", (
            f"Area under the {on} accuracy curve divided by the number of epochs (the mean "
            f"{on} accuracy over training), mean and 95% t band over seeds."),
            figures.png_bytes(figures.convergence_auc(metrics))),
    ]
    caption = "auc in percentage points (higher is better, margin as for accuracy)"
    if thresholds:
        threshold_figure = figures.epochs_to_threshold(metrics, fraction)  # None: every trial censored
        blocks.append(Paragraph(_all_censored(metrics, fraction, on)) if threshold_figure is None else FigureBlock(
            "epochs_to_threshold", (
                f"Epochs until {on} accuracy first reaches {fraction:.0%} of the dense parent's final "
                f"{on} accuracy (same seed). Trials that never reach it are censored at E."),
            figures.png_bytes(threshold_figure)))
        caption += ("; epochs to threshold in epochs (lower is better; censored trials count as E, so "
                    "differences involving them are understated; no equivalence margin)")
    else:
        blocks.append(Paragraph(_dense_missing(trials, "Epochs to threshold")))
    blocks.append(Table(["measure", "sparsity", "method", "n pairs", "mean diff", "95% CI", "p t (Holm)",
                         "p Wilcoxon (Holm)", "censored (method / random)", "verdict", "reason"], rows,
                        caption + "."))
    return Section("Convergence", blocks)


def _all_censored(metrics: pd.DataFrame, fraction: float, on: str) -> str:
    """Why there is no epochs-to-threshold figure although the dense parent finished."""
    last = int(metrics["epochs"].max())
    return (f"No sub-network reached {fraction:.0%} of the dense parent's final {on} accuracy within the "
            f"{last} epochs, so there is no figure of epochs to threshold: every time is censored at E = {last}.")


def _split_statement(split: str, metrics: pd.DataFrame, thresholds: bool) -> str:
    """Which split the convergence metrics use, said plainly, and how early-stopped curves count."""
    measures = "area under the curve, epochs to threshold" if thresholds else "area under the curve"
    text = f"The convergence metrics ({measures}) use {SPLIT_DESCRIPTIONS[split]}"
    if thresholds:
        text += ", and so does the threshold taken from the dense parent"
    text += "."
    if split != "monitor":
        text += (" A method that selects on this split is measured on its own selection data, which "
                 "can favour it.")
    stopped = int(metrics["stop_epoch"].notna().sum()) if "stop_epoch" in metrics.columns else 0
    if stopped:
        text += (f" {stopped} of the {len(metrics)} finished trials were stopped early by the stopping "
                 "rule; a stopped network is frozen, so its curve continues at its last value up to the "
                 "configured epochs for the area")
        text += (", and it counts as censored for epochs to threshold unless it had reached the "
                 "threshold by its stop epoch." if thresholds else ".")
    return text


def _predictive_section(trials: pd.DataFrame) -> Section:
    """Per search label with trained probes (``random-search`` by loss, ``rs-naswot`` by NASWOT, ...): the
    within-seed analysis, the winner against its probes and the pooled figure; with two labels or more, which
    score predicts trained accuracy best first."""
    within = within_seed_predictiveness(trials)
    winner = winner_vs_probes(trials)
    pooled = score_predictiveness(trials)
    labels = sorted(set(within["method"]) | set(winner["method"]))
    blocks: list = []
    comparison = predictive_comparison_sentence(within)
    if comparison:
        blocks.append(Paragraph(comparison))
    if not labels:
        blocks.append(Paragraph(predictive_sentence(within, winner)))
    for label in labels:
        blocks += _predictive_blocks(label, within[within["method"] == label], winner[winner["method"] == label],
                                     pooled[pooled["method"] == label], named=len(labels) > 1)
    if not pooled.empty:
        # One figure: random search's own label if it has probes, else the first label that does.
        shown = RANDOM_SEARCH if RANDOM_SEARCH in labels else labels[0]
        figure = figures.score_vs_accuracy(trials, shown)
        if figure is not None:
            blocks.append(FigureBlock("score_vs_accuracy",
                                      f"Each scored-and-trained candidate of {shown}, all seeds together (so "
                                      "differences between seeds' parents show too); the star is the one the "
                                      "search selected (best score).", figures.png_bytes(figure)))
    return Section("Is the search score predictive?", blocks)


def _predictive_blocks(label: str, within: pd.DataFrame, winner: pd.DataFrame, pooled: pd.DataFrame,
                       named: bool) -> list:
    """One label's paragraphs and tables (``named``: each begins with the label, when there are several)."""
    lead = f"{label}: " if named else ""
    blocks: list = [Paragraph(lead + predictive_sentence(within, winner))]
    if not within.empty:
        rows = [[("all (seed means)" if r.scope == "overall" else sparsity(r.sparsity)), str(r.n_groups),
                 str(r.n_seeds), str(r.n_candidates), fixed(r.mean_rho, 2), ci_plain(r.ci_low, r.ci_high),
                 pvalue(r.p)] for r in within.itertuples()]
        blocks.append(Table(["sparsity", "groups", "seeds", "candidates", "mean within-group rho",
                             "95% CI (t over seeds)", "p"], rows,
                            f"Primary{' (' + label + ')' if named else ''}: Spearman rho of the "
                            f"{score_words(str(within['score_name'].iloc[0]))} vs final test accuracy within "
                            "each (seed, sparsity) group of the search's probe candidates and its winner, "
                            "averaged; the interval and t test treat seeds as the independent units "
                            "(overall, each seed's groups are averaged first)."))
    if not winner.empty:
        rows = [[("all (seed means)" if r.scope == "overall" else sparsity(r.sparsity)), str(r.n_groups),
                 str(r.n_seeds), percent(r.mean_winner), percent(r.mean_probes), pp(r.mean_diff, 2),
                 ci_pp(r.ci_low, r.ci_high, 2), pvalue(r.p)] for r in winner.itertuples()]
        blocks.append(Table(["sparsity", "groups", "seeds", "winner %", "probes %", "winner − probes",
                             "95% CI (t over seeds)", "p"], rows,
                            f"{label + ': the' if named else 'The'} selected winner vs the mean of the probes "
                            "of its own seed and sparsity, in percentage points of final test accuracy."))
    secondary = pooled_predictive_sentence(pooled)
    if secondary:
        blocks.append(Paragraph(lead + secondary))
        rows = [[("combined" if r.scope == "pooled" else sparsity(r.sparsity)), str(r.n),
                 fixed(r.rho, 2), ci_plain(r.ci_low, r.ci_high), pvalue(r.p)]
                for r in pooled.itertuples()]
        blocks.append(Table(["sparsity", "n candidates", "Spearman rho", "95% CI (Fisher z)", "p"], rows,
                            f"Secondary{' (' + label + ')' if named else ''}, confounded by parent (seed) "
                            "effects: all seeds' candidates pooled per sparsity; combined: per-sparsity rhos "
                            "on the Fisher z scale (weights n − 3)."))
    return blocks


def _divergence_section(diverged: pd.DataFrame) -> Section:
    if not int(diverged["n_diverged"].sum()):
        return Section("Diverged trials", [Paragraph("No trial diverged.")])
    rows = [[sparsity(r.sparsity), r.method, str(r.n_trials), str(r.n_diverged),
             number(r.first_diverged_epoch)] for r in diverged.itertuples() if r.n_diverged]
    return Section("Diverged trials", [Table(
        ["sparsity", "method", "trials", "diverged", "first diverged at epoch"], rows,
        "Diverged trials are excluded from every comparison; their seed's pair is dropped.")])


def _warnings_section(trials: pd.DataFrame, chance_acc: float | None) -> Section | None:
    """A section of warnings when a method's networks diverged or sit at chance level at
    some sparsity (half of its trials there or more); None when there is nothing to warn of."""
    lines = failure_warnings(trials, chance_acc)
    if not lines:
        return None
    blocks: list[Block] = [Paragraph(line) for line in lines]
    blocks.append(Paragraph(
        "Networks that diverged or sit at chance level learned nothing usable, so verdicts about them "
        "(even 'equivalent') say nothing about their method; diverged trials are excluded from every "
        "comparison. Usual causes: a learning rate too high for the optimizer, too few epochs, or a "
        "sparsity that leaves too few nodes."
        + ("" if chance_acc is not None else
           " Whether networks sit at chance level is not checked: this store does not record the "
           "class balance of its data (it was written before data statistics were stored).")))
    return Section("Warnings", blocks)


def _notes(margin: float, alpha: float, fraction: float, has_curves: bool = True,
           thresholds: bool = True, split: str = "validation") -> Section:
    curve = "monitoring-split" if split == "monitor" else "validation"
    if thresholds:
        convergence = (f"Convergence uses the same rules on the area under the {curve} accuracy curve, and "
                       f"on the epochs needed to reach {fraction:.0%} of the dense parent's final {curve} "
                       f"accuracy (censored at E when never reached); the curves are those of "
                       f"{SPLIT_DESCRIPTIONS[split]}. ")
    elif has_curves:
        convergence = (f"Convergence uses the same rules on the area under the {curve} accuracy curve "
                       f"({SPLIT_DESCRIPTIONS[split]}). ")
    else:
        convergence = ""
    return Section("How the verdicts are made", [Paragraph(
        "The primary metric is final test accuracy and the primary test is the paired t test; test loss "
        "and convergence are secondary. "
        "Each method is paired with random by seed (same parent initialization and data order); only "
        "seeds where both trials finished count. On the per-seed differences we report the mean with a "
        "95% paired Student-t interval, the paired t test (primary) and the Wilcoxon signed-rank test "
        "(beside it, without a normality assumption), and a TOST equivalence test with margin "
        f"±{margin * 100:g} pp. Multiplicity: on the primary metric the p-values are Holm-adjusted over "
        "one family, every method × sparsity compared with random, so adding a method to an experiment "
        "changes the adjustment of the others; each secondary metric (test loss, convergence) has one "
        "family per method, that method vs random at each of the sparsities tested; there is no "
        "correction across metrics. The 95% intervals are not adjusted. "
        f"Minimum evidence: with fewer than {MIN_SEEDS} paired seeds the verdict is 'too few seeds' (the "
        f"estimate and interval are still shown). {MIN_SEEDS} is the smallest number of seeds at which the "
        f"paired t test at alpha {ALPHA:g} has 80% power to detect a true shift of one standard deviation "
        "of the per-seed differences; with 3 seeds that power is 18%. "
        f"Verdict: 'identical (not tested)' if every paired difference is exactly 0 (the two arms gave "
        f"the same number in every seed; nothing to test); else 'equivalent' if TOST p < {alpha:g}; "
        f"else 'better' or 'worse' if the t test p < {alpha:g}, by the sign of the difference; else "
        "'inconclusive', with the reason (for example more seeds needed for the margin at the observed "
        "spread). With few seeds the Wilcoxon test cannot reach small "
        f"p-values (its minimum two-sided p is {min_wilcoxon_p(3):g} with 3 seeds and "
        f"{min_wilcoxon_p(5):g} with 5), which is why the t test decides. {convergence}"
        "Diverged trials are counted, never averaged.")])
