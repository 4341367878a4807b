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

from sparsebench.analysis.convergence import DEFAULT_FRACTION, compare_convergence, convergence_metrics
from sparsebench.analysis.dense_gap import dense_gap
from sparsebench.analysis.divergence import divergence_counts
from sparsebench.analysis.paired import ALPHA, DEFAULT_MARGIN, min_wilcoxon_p, paired_comparison
from sparsebench.analysis.predictive import score_predictiveness
from sparsebench.analysis.summary import summary_table
from sparsebench.analysis.trials import (
    BASELINE,
    DENSE,
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
    predictive_sentence,
    verdict_sentence,
)
from sparsebench.summary import failure_warnings

# Every figure name (file stem, ``figures/<name>.png``) a report can contain. A report
# writes a subset; ``write_report`` removes the others' files left by an earlier report.
FIGURE_NAMES = ("paired_differences", "accuracy_vs_sparsity", "learning_curves", "convergence_auc",
                "epochs_to_threshold", "score_vs_accuracy")


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
    ``chance_acc``: the accuracy of always predicting the most frequent training class
    (None when unknown); a method whose networks sit at it, or diverged, is warned about.
    """
    require_single_experiment(trials)
    accuracy = paired_comparison(trials, "final_test_acc", margin, alpha)
    loss = paired_comparison(trials, "final_test_loss", None, alpha)
    gaps = dense_gap(trials)
    has_curves = curves is not None and not curves.empty
    metrics = convergence_metrics(trials, curves, fraction) if has_curves else None
    convergence = compare_convergence(trials, curves, fraction, margin, None, alpha, metrics=metrics) if has_curves else None
    predictive = score_predictiveness(trials)
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
        _dense_section(trials, gaps),
        _loss_section(loss),
    ]
    if has_curves:
        sections.append(_convergence_section(trials, curves, metrics, convergence, fraction, thresholds))
    sections += [_predictive_section(trials, predictive), _divergence_section(diverged),
                 _notes(margin, alpha, fraction, has_curves, thresholds)]
    warnings = _warnings_section(trials, chance_acc)
    if warnings is not None:
        sections.insert(0, warnings)
    if notice:
        sections.insert(0, Section("Status", [Paragraph(notice)]))
    return Report(f"sparsebench report: {dataset}" if dataset else "sparsebench report", sections)


def _summary(trials, accuracy, gaps, convergence, diverged, margin, alpha) -> Section:
    blocks = []
    methods = [m for m in method_order(trials["method"].unique()) if m not in (BASELINE, DENSE)]
    dense_run = DENSE in set(trials["method"])
    for method in methods:
        rows = accuracy[accuracy["method"] == method]
        family = int(rows["p_t_holm"].notna().sum())  # Holm's family: the sparsities with a p-value
        sentences = [verdict_sentence(row, family) for row in rows.to_dict("records")]
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
    rows = [[sparsity(r.sparsity), r.method, str(r.n), _mean_sd(r.mean_test_acc, r.sd_test_acc, r.n),
             str(r.n_diverged), r.verdict or "—"] for r in summary.itertuples()]
    blocks.append(Table(["sparsity", "method", "n finished", "test accuracy % (mean ± sd)", "diverged",
                         "verdict vs random"], rows,
                        f"Selected trials per sparsity and method. Verdict: see the next sections "
                        f"(margin ±{margin * 100:g} pp, alpha {alpha:g}, Holm across sparsities)."))
    return Section("Summary", blocks)


def _mean_sd(mean: float, sd: float, n: int) -> str:
    return f"{percent(mean)} ± {percent(sd)}" if n > 1 else percent(mean)


def _config_rows(config: Mapping, trials: pd.DataFrame) -> list[list[str]]:
    rows = [[str(key), _plain(value)] for key, value in config.items()]
    known = {str(k) for k in config}
    for column in ("experiment_id", "config_hash"):
        if column not in known and column in trials.columns and len(trials):
            rows.append([column, str(trials[column].iloc[0])])
    return rows


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
                          f"Final test accuracy, method − random, paired by seed; differences in "
                          f"percentage points; equivalence margin ±{margin * 100:g} pp; alpha {alpha:g}.")]
    if not accuracy.empty:
        blocks.append(FigureBlock("paired_differences", (
            "Mean paired difference to random per sparsity with its 95% paired t interval; the shaded "
            "band is the equivalence margin. Verdicts use Holm-adjusted p-values and TOST (a 90% "
            "interval), so an interval touching the margin can still be 'equivalent'."),
            figures.png_bytes(figures.paired_differences(accuracy, margin))))
    else:
        blocks.append(Paragraph("No method could be paired with random (was random run?)."))
    return Section("Test accuracy: each method vs random", blocks)


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
    rows = [[r.metric, sparsity(r.sparsity), r.method, str(r.n),
             (pp(r.mean_diff) if r.metric == "auc" else signed(r.mean_diff, 2)),
             (ci_pp(r.ci_low, r.ci_high) if r.metric == "auc" else ci_plain(r.ci_low, r.ci_high)),
             pvalue(r.p_t_holm), pvalue(r.p_wilcoxon_holm),
             (f"{r.n_censored_method} / {r.n_censored_baseline}" if r.metric != "auc" else "—"),
             r.verdict, r.reason]
            for r in convergence.itertuples()]
    blocks: list[Block] = [
        FigureBlock("learning_curves", "Validation accuracy per epoch, mean over seeds, per sparsity.",
                    figures.png_bytes(figures.learning_curves(trials, curves))),
        FigureBlock("convergence_auc", (
            "Area under the validation-accuracy curve divided by the number of epochs (the mean "
            "validation accuracy over training), mean and 95% t band over seeds."),
            figures.png_bytes(figures.convergence_auc(metrics))),
    ]
    caption = "auc in percentage points (higher is better, margin as for accuracy)"
    if thresholds:
        threshold_figure = figures.epochs_to_threshold(metrics, fraction)  # None: every trial censored
        blocks.append(Paragraph(_all_censored(metrics, fraction)) if threshold_figure is None else FigureBlock(
            "epochs_to_threshold", (
                f"Epochs until validation accuracy first reaches {fraction:.0%} of the dense parent's final "
                "validation accuracy (same seed). Trials that never reach it are censored at E."),
            figures.png_bytes(threshold_figure)))
        caption += ("; epochs to threshold in epochs (lower is better; censored trials count as E, so "
                    "differences involving them are understated; no equivalence margin)")
    else:
        blocks.append(Paragraph(_dense_missing(trials, "Epochs to threshold")))
    blocks.append(Table(["measure", "sparsity", "method", "n pairs", "mean diff", "95% CI", "p t (Holm)",
                         "p Wilcoxon (Holm)", "censored (method / random)", "verdict", "reason"], rows,
                        caption + "."))
    return Section("Convergence", blocks)


def _all_censored(metrics: pd.DataFrame, fraction: float) -> str:
    """Why there is no epochs-to-threshold figure although the dense parent finished."""
    last = int(metrics["epochs"].max())
    return (f"No sub-network reached {fraction:.0%} of the dense parent's final validation accuracy within the "
            f"{last} epochs, so there is no figure of epochs to threshold: every time is censored at E = {last}.")


def _predictive_section(trials: pd.DataFrame, predictive: pd.DataFrame) -> Section:
    blocks: list = [Paragraph(predictive_sentence(predictive))]
    if not predictive.empty:
        rows = [[("pooled" if r.scope == "pooled" else sparsity(r.sparsity)), str(r.n),
                 fixed(r.rho, 2), ci_plain(r.ci_low, r.ci_high), pvalue(r.p)]
                for r in predictive.itertuples()]
        blocks.append(Table(["sparsity", "n candidates", "Spearman rho", "95% CI (Fisher z)", "p"], rows,
                            "Initial score vs final test accuracy over random search's probe "
                            "candidates and its selected winner. Pooled: per-sparsity rhos combined on "
                            "the Fisher z scale (weights n − 3)."))
        figure = figures.score_vs_accuracy(trials)
        if figure is not None:
            blocks.append(FigureBlock("score_vs_accuracy",
                                      "Each scored-and-trained candidate; the star is the one random "
                                      "search selected (best initial score).", figures.png_bytes(figure)))
    return Section("Is the search score predictive?", blocks)


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
           thresholds: bool = True) -> Section:
    if thresholds:
        convergence = (f"Convergence uses the same rules on the area under the validation curve, and on "
                       f"the epochs needed to reach {fraction:.0%} of the dense parent's final validation "
                       "accuracy (censored at E when never reached). ")
    elif has_curves:
        convergence = "Convergence uses the same rules on the area under the validation curve. "
    else:
        convergence = ""
    return Section("How the verdicts are made", [Paragraph(
        "Each method is paired with random by seed (same parent initialization and data order); only "
        "seeds where both trials finished count. On the per-seed differences we report the mean with a "
        "95% paired Student-t interval, the paired t test (primary) and the Wilcoxon signed-rank test "
        "(beside it, without a normality assumption), and a TOST equivalence test with margin "
        f"±{margin * 100:g} pp. All p-values are Holm-adjusted across the sparsities of one method. "
        f"Verdict: 'equivalent' if TOST p < {alpha:g}; else 'better' or 'worse' if the t test "
        f"p < {alpha:g}, by the sign of the difference; else 'inconclusive', with the reason (for example too few seeds for "
        "the margin at the observed spread); results identical in every seed (every difference exactly 0) "
        "are 'equivalent' without a test. With few seeds the Wilcoxon test cannot reach small "
        f"p-values (its minimum two-sided p is {min_wilcoxon_p(3):g} with 3 seeds and "
        f"{min_wilcoxon_p(5):g} with 5), which is why the t test decides. {convergence}"
        "Diverged trials are counted, never averaged.")])
