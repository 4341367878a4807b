"""Write the report: ``report.html`` (self-contained) and ``report.md`` with PNG figures.

>>> import tempfile
>>> from sparsebench.analysis import synthetic_results
>>> trials, curves = synthetic_results(seeds=3, sparsities=(0.5, 0.9), epochs=4)
>>> with tempfile.TemporaryDirectory() as out:
...     paths = write_report(trials, curves, {"dataset": "synthetic"}, out)
...     sorted(k for k in paths if not k.startswith("figure:"))
['figures', 'html', 'markdown']
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from sparsebench.analysis.convergence import DEFAULT_FRACTION
from sparsebench.analysis.paired import ALPHA, DEFAULT_MARGIN
from sparsebench.report.content import FIGURE_NAMES, build_report
from sparsebench.report.html import render_html
from sparsebench.report.markdown import render_markdown

FIGURE_DIR = "figures"


def write_report(
    trials: pd.DataFrame,
    curves: pd.DataFrame,
    config: Mapping,
    out_dir: str | Path,
    margin: float = DEFAULT_MARGIN,
    alpha: float = ALPHA,
    fraction: float = DEFAULT_FRACTION,
    notice: str | None = None,
) -> dict[str, Path]:
    """Analyse one experiment and write ``out_dir/report.html``, ``out_dir/report.md`` and
    ``out_dir/figures/*.png``.

    ``trials`` and ``curves`` are the store's tables for one experiment, ``config`` its
    configuration as plain values, ``margin`` the equivalence margin in accuracy
    (0.01 = 1 pp), ``alpha`` the level of every test, ``fraction`` the convergence
    threshold as a fraction of the dense parent's final validation accuracy, ``notice``
    an optional paragraph that opens the report (e.g. that the experiment is incomplete).
    Returns the paths: ``html``, ``markdown``, ``figures`` (the folder) and one
    ``figure:<name>`` per PNG. Existing files of the same names are overwritten, and
    figure files an earlier report left in ``out_dir/figures`` that this one did not write
    are removed -- only names a report can produce (:data:`~sparsebench.report.content.FIGURE_NAMES`),
    so other files in the folder are never touched.
    """
    out = Path(out_dir)
    (out / FIGURE_DIR).mkdir(parents=True, exist_ok=True)
    report = build_report(trials, curves, config, margin, alpha, fraction, notice)
    paths: dict[str, Path] = {"figures": out / FIGURE_DIR}
    for figure in report.figures():
        path = out / FIGURE_DIR / f"{figure.name}.png"
        path.write_bytes(figure.png)
        paths[f"figure:{figure.name}"] = path
    for name in FIGURE_NAMES:  # e.g. score_vs_accuracy.png from an earlier run with probes
        stale = out / FIGURE_DIR / f"{name}.png"
        if f"figure:{name}" not in paths and (stale.is_file() or stale.is_symlink()):
            stale.unlink()
    paths["html"] = out / "report.html"
    paths["html"].write_text(render_html(report), encoding="utf-8")
    paths["markdown"] = out / "report.md"
    paths["markdown"].write_text(render_markdown(report, FIGURE_DIR), encoding="utf-8")
    return paths
