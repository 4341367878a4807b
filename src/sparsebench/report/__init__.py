"""Figures and documents from the analysis: ``write_report`` is the entry point.

>>> from sparsebench.report import write_report  # doctest: +SKIP
>>> write_report(trials, curves, config, "rep")  # doctest: +SKIP
{'html': PosixPath('rep/report.html'), 'markdown': PosixPath('rep/report.md'), ...}
"""

from sparsebench.report.content import build_report
from sparsebench.report.documents import write_report
from sparsebench.report.figures import (
    accuracy_vs_sparsity,
    convergence_auc,
    epochs_to_threshold,
    figure_bytes,
    gain_vs_cost,
    leaderboard_forest,
    learning_curves,
    paired_differences,
    png_bytes,
    save_figure,
    save_png,
    score_vs_accuracy,
)
from sparsebench.report.html import render_html
from sparsebench.report.markdown import render_markdown

__all__ = [
    "accuracy_vs_sparsity",
    "build_report",
    "convergence_auc",
    "epochs_to_threshold",
    "figure_bytes",
    "gain_vs_cost",
    "leaderboard_forest",
    "learning_curves",
    "paired_differences",
    "png_bytes",
    "render_html",
    "render_markdown",
    "save_figure",
    "save_png",
    "score_vs_accuracy",
    "write_report",
]
