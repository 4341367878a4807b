"""Write the report: ``report.html`` (self-contained) and ``report.md`` with PNG figures,
and every figure also as PDF and SVG beside its PNG (vector files for a paper).

>>> import tempfile
>>> from sparsebench.analysis import synthetic_results
>>> trials, curves = synthetic_results(seeds=3, sparsities=(0.5, 0.9), epochs=4)
>>> with tempfile.TemporaryDirectory() as out:
...     paths = write_report(trials, curves, {"dataset": "synthetic"}, out)
...     sorted(k for k in paths if ":" not in k), sorted(p.name for p in paths["figures"].iterdir())[:3]
(['figures', 'html', 'markdown'], ['accuracy_vs_sparsity.pdf', 'accuracy_vs_sparsity.png', 'accuracy_vs_sparsity.svg'])
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from sparsebench.analysis.convergence import DEFAULT_FRACTION
from sparsebench.analysis.paired import ALPHA, DEFAULT_MARGIN
from sparsebench.report.content import FIGURE_NAMES, build_report
from sparsebench.report.figures import VECTOR_FORMATS, has_vectors
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
    chance_acc: float | None = None,
) -> dict[str, Path]:
    """Analyse one experiment and write ``out_dir/report.html``, ``out_dir/report.md`` and
    ``out_dir/figures/<name>.png``, with ``<name>.pdf`` and ``<name>.svg`` beside each PNG.

    ``trials`` and ``curves`` are the store's tables for one experiment, ``config`` its
    configuration as plain values, ``margin`` the equivalence margin in accuracy
    (0.01 = 1 pp), ``alpha`` the level of every test, ``fraction`` the convergence
    threshold as a fraction of the dense parent's final validation accuracy, ``notice``
    an optional paragraph that opens the report (e.g. that the experiment is incomplete),
    ``chance_acc`` the best test accuracy of a constant prediction
    (from the store's data statistics; None when unknown), used to warn about networks
    that learned nothing.
    Returns the paths: ``html``, ``markdown``, ``figures`` (the folder), and per figure
    ``figure:<name>`` (the PNG), ``pdf:<name>`` and ``svg:<name>``. Existing files of the
    same names are overwritten, and figure files an earlier report left in
    ``out_dir/figures`` that this one did not write are removed -- only names a report can
    produce (:data:`~sparsebench.report.content.FIGURE_NAMES` with .png, .pdf or .svg), so
    other files in the folder are never touched.
    """
    out = Path(out_dir)
    (out / FIGURE_DIR).mkdir(parents=True, exist_ok=True)
    report = build_report(trials, curves, config, margin, alpha, fraction, notice, chance_acc=chance_acc)
    paths: dict[str, Path] = {"figures": out / FIGURE_DIR}
    written = set()
    for figure in report.figures():
        path = out / FIGURE_DIR / f"{figure.name}.png"
        path.write_bytes(figure.png)
        paths[f"figure:{figure.name}"] = path
        written.add(path.name)
        if has_vectors(figure.png):
            for fmt in VECTOR_FORMATS:
                path = out / FIGURE_DIR / f"{figure.name}.{fmt}"
                path.write_bytes(figure.png.vector(fmt))
                paths[f"{fmt}:{figure.name}"] = path
                written.add(path.name)
    for name in FIGURE_NAMES:  # e.g. score_vs_accuracy.png from an earlier run with probes
        for fmt in ("png", *VECTOR_FORMATS):
            stale = out / FIGURE_DIR / f"{name}.{fmt}"
            if stale.name not in written and (stale.is_file() or stale.is_symlink()):
                stale.unlink()
    paths["html"] = out / "report.html"
    paths["html"].write_text(render_html(report, FIGURE_DIR), encoding="utf-8")
    paths["markdown"] = out / "report.md"
    paths["markdown"].write_text(render_markdown(report, FIGURE_DIR), encoding="utf-8")
    return paths
