"""The report's figures, as matplotlib Figures built without pyplot.

Figures are made with ``matplotlib.figure.Figure`` and rendered by the Agg canvas,
so nothing here touches pyplot's global state or the user's backend (safe in a
notebook, a server or a test run). Sizes are for print: 6.4 in wide, 150 dpi,
10 pt text. Accuracies are shown in percent; differences in percentage points.
Every method keeps one colour across all figures (dense black, random grey).

Every figure can also be had as PDF and SVG (:func:`figure_bytes`), for papers: the
PDF embeds its fonts as TrueType (Type 42; many venues refuse Type 3 fonts), and
neither file records the time it was made, so the same data give the same bytes.

>>> from sparsebench.analysis import synthetic_results
>>> trials, curves = synthetic_results(seeds=3, sparsities=(0.5, 0.9), epochs=5)
>>> png = png_bytes(accuracy_vs_sparsity(trials))
>>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
>>> png.vector("pdf")[:5], png.vector("svg")[:5]
(b'%PDF-', b'<?xml')
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from sparsebench.analysis.convergence import SPLIT_COLUMNS, convergence_split, held_after_stop
from sparsebench.analysis.intervals import mean_ci
from sparsebench.analysis.predictive import scored_candidates
from sparsebench.analysis.trials import BASELINE, DENSE, comparable_trials, method_order
from sparsebench.names import RANDOM_SEARCH, SCORES

WIDTH = 6.4  # inches: one column of a two-column page scaled, or a full slide
HEIGHT = 4.0
DPI = 150
STYLE = {
    "font.size": 10, "axes.titlesize": 10.5, "axes.labelsize": 10, "legend.fontsize": 8.5,
    "xtick.labelsize": 9, "ytick.labelsize": 9, "axes.grid": True, "grid.alpha": 0.3,
    "axes.spines.top": False, "axes.spines.right": False, "lines.linewidth": 1.6,
}
_FIXED_COLOURS = {DENSE: "#000000", BASELINE: "#7f7f7f", RANDOM_SEARCH: "#1f77b4"}
# tab10 without the blue and grey already taken, so user methods never look like a baseline.
_OTHER_COLOURS = ["#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]


def method_colours(methods: Sequence[str]) -> dict[str, str]:
    """A stable colour per method: fixed for the built-ins, then by name order.

    >>> method_colours(["random", "mine"])
    {'random': '#7f7f7f', 'mine': '#d62728'}
    """
    others = [m for m in method_order(methods) if m not in _FIXED_COLOURS]
    colours = {m: _OTHER_COLOURS[i % len(_OTHER_COLOURS)] for i, m in enumerate(others)}
    return {m: _FIXED_COLOURS.get(m, colours.get(m)) for m in methods}


#: The vector formats written beside every PNG of a report.
VECTOR_FORMATS = ("pdf", "svg")
# Settings that only matter when a figure is saved: TrueType fonts in the PDF, text as paths
# in the SVG (it looks the same without our fonts), and a fixed salt for the SVG's element ids.
_SAVE_STYLE = {"pdf.fonttype": 42, "svg.fonttype": "path", "svg.hashsalt": "sparsebench"}
# No creation date in the files, so that rendering the same figure twice gives the same bytes.
_NO_DATE = {"pdf": {"CreationDate": None}, "svg": {"Date": None}, "png": None}


def figure_bytes(figure: Figure, fmt: str = "png") -> bytes:
    """The figure rendered as ``png`` (at :data:`DPI`), ``pdf`` or ``svg`` bytes.

    >>> figure_bytes(Figure(), "svg")[:5]
    b'<?xml'
    """
    if fmt not in _NO_DATE:
        raise ValueError(f"fmt: got {fmt!r}; allowed: png, pdf or svg")
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)  # attach an Agg canvas; no pyplot, no global backend change
    with matplotlib.rc_context(_SAVE_STYLE):
        figure.savefig(buffer, format=fmt, dpi=DPI, bbox_inches="tight", metadata=_NO_DATE[fmt])
    return buffer.getvalue()


class FigureImage(bytes):
    """A figure's PNG bytes that can also give the same figure as vector files.

    It is the PNG wherever bytes are expected (embedded in the HTML, written as
    ``<name>.png``); :meth:`vector` renders the PDF or SVG from the figure it keeps,
    only when asked, so a report can write vector files beside each PNG.
    """

    figure: Figure

    def __new__(cls, png: bytes, figure: Figure) -> "FigureImage":
        image = super().__new__(cls, png)
        image.figure = figure
        return image

    def vector(self, fmt: str) -> bytes:
        """The figure as ``pdf`` or ``svg`` bytes."""
        if fmt not in VECTOR_FORMATS:
            raise ValueError(f"fmt: got {fmt!r}; allowed: {' or '.join(VECTOR_FORMATS)}")
        return figure_bytes(self.figure, fmt)


def has_vectors(png: bytes) -> bool:
    """Whether ``png`` (a figure block's image) can give PDF and SVG versions."""
    return isinstance(png, FigureImage)


def png_bytes(figure: Figure) -> FigureImage:
    """The figure rendered as PNG bytes at :data:`DPI` (a :class:`FigureImage`, which also
    gives the PDF and SVG)."""
    return FigureImage(figure_bytes(figure, "png"), figure)


def save_png(figure: Figure, path: str | Path) -> Path:
    """Write the figure as a PNG file and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(figure_bytes(figure, "png"))
    return path


def save_figure(figure: Figure, stem: str | Path, formats: Sequence[str] = ("png", *VECTOR_FORMATS)) -> list[Path]:
    """Write the figure as ``<stem>.png``, ``<stem>.pdf`` and ``<stem>.svg`` (or ``formats``);
    return the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        path.write_bytes(figure_bytes(figure, fmt))
        paths.append(path)
    return paths


def _new_figure(rows: int = 1, cols: int = 1, height: float = HEIGHT, **kwargs):
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
        axes = figure.subplots(rows, cols, squeeze=False, **kwargs)
    return figure, axes


def _compact_number_axis(ax, label: str) -> None:
    """Few x ticks with short labels for arbitrary numbers, e.g. initial losses; call it after
    the data are drawn.

    Scores of candidates often differ only in the 4th or 5th digit (2.30251 ... 2.30263):
    written out in full, 6-8 such labels run into each other in a half-width panel. Four
    ticks at most, with the shared part as an offset or power of ten, keep each label to a
    few characters; that offset (``×10⁻⁴ + 2.3025``) goes into the axis label, where
    matplotlib's own corner text would collide with the label.
    """
    formatter = ScalarFormatter(useOffset=True, useMathText=True)
    formatter.set_powerlimits((-3, 4))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))  # a fixed count: the ticks depend on the data alone
    ax.xaxis.set_major_formatter(formatter)
    formatter.set_locs(ax.get_xticks())  # the ticks that will be drawn, so the offset is the one shown
    offset = formatter.get_offset()
    ax.xaxis.get_offset_text().set_visible(False)
    ax.set_xlabel(f"{label}, {offset}" if offset else label)


def _sparsity_axis(ax, sparsities: Sequence[float]) -> None:
    # Sparsities like 0.5, 0.9, 0.98 crowd at the right of a linear axis; equal spacing reads better.
    ax.set_xticks(range(len(sparsities)), [f"{s:g}" for s in sparsities])
    ax.set_xlabel("sparsity (fraction of nodes removed per layer)")
    ax.set_xlim(-0.3, len(sparsities) - 0.7)


def _sparse_levels(frame: pd.DataFrame) -> list[float]:
    return sorted(float(s) for s in frame.loc[frame["method"] != DENSE, "sparsity"].unique())


def _band_by_sparsity(ax, frame, value, sparsities, colours, scale=100.0, dense_label="dense parent"):
    """Mean and 95% t band per method across seeds; the dense parent as a line with its band.

    ``value`` is a fraction (accuracy or AUC), so bands are clipped to [0, scale]: a t
    interval over few seeds can reach past what an accuracy can be.
    """
    methods = method_order(frame["method"].unique())
    for method in methods:
        of_method = frame[frame["method"] == method]
        if method == DENSE:
            mean, low, high = (v * scale for v in mean_ci(of_method[value]))
            low, high = max(low, 0.0), min(high, scale)
            ax.axhline(mean, color=colours[method], linestyle="--",
                       label=f"{dense_label} (n={len(of_method)})")
            if np.isfinite(low):
                ax.axhspan(low, high, color=colours[method], alpha=0.08, linewidth=0)
            continue
        stats = [mean_ci(of_method.loc[of_method["sparsity"] == s, value]) for s in sparsities]
        x = np.arange(len(sparsities))
        mean, low, high = (np.array([row[i] for row in stats]) * scale for i in range(3))
        low, high = np.clip(low, 0.0, scale), np.clip(high, 0.0, scale)
        ax.plot(x, mean, marker="o", color=colours[method], label=method)
        ax.fill_between(x, low, high, color=colours[method], alpha=0.18, linewidth=0)


def accuracy_vs_sparsity(trials: pd.DataFrame, metric: str = "final_test_acc") -> Figure:
    """Test accuracy (%) vs sparsity: each method's mean with a 95% t band over seeds,
    the dense parent as a dashed line with its band. Diverged trials are left out."""
    done = comparable_trials(trials)
    sparsities = _sparse_levels(done)
    figure, axes = _new_figure()
    ax = axes[0, 0]
    with matplotlib.rc_context(STYLE):
        _band_by_sparsity(ax, done, metric, sparsities, method_colours(done["method"].unique()))
        _sparsity_axis(ax, sparsities)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title("Test accuracy after training (mean and 95% CI over seeds)")
        ax.legend(loc="best", frameon=False)
    return figure


#: How a figure names the accuracy of each split.
SPLIT_LABELS = {"monitor": "monitoring-split accuracy", "validation": "validation accuracy"}


def split_label(metrics: pd.DataFrame) -> str:
    """The accuracy that convergence ``metrics`` were measured on, as figures name it."""
    return SPLIT_LABELS[metrics.attrs.get("split", "validation")]


def learning_curves(trials: pd.DataFrame, curves: pd.DataFrame, split: str | None = None) -> Figure:
    """Accuracy (%) vs epoch on the convergence split (the monitoring split when the
    experiment has one, else validation), one panel per sparsity, mean over seeds per
    method; the dense parent's mean curve is drawn dashed in every panel. Diverged
    trials are left out; stopped ones are held at their last value."""
    split = split or convergence_split(trials, curves)
    column = SPLIT_COLUMNS[split]
    done = comparable_trials(trials)[["trial_id", "method", "sparsity"]]
    points = curves.drop(columns=[c for c in ("method", "sparsity") if c in curves.columns])
    points = points.merge(done, on="trial_id")
    points = points[np.isfinite(points[column].astype(float))]
    points = held_after_stop(points, trials)
    sparsities = _sparse_levels(done)
    cols = min(2, max(1, len(sparsities)))
    rows = int(np.ceil(len(sparsities) / cols)) if sparsities else 1
    figure, axes = _new_figure(rows, cols, height=max(HEIGHT, 2.4 * rows + 0.8), sharex=True)
    colours = method_colours(done["method"].unique())
    mean_curves = points.groupby(["method", "sparsity", "epoch"])[column].mean().reset_index()
    dense = mean_curves[mean_curves["method"] == DENSE]
    with matplotlib.rc_context(STYLE):
        for i, ax in enumerate(axes.flat):
            if i >= len(sparsities):
                ax.set_visible(False)
                continue
            s = sparsities[i]
            if not dense.empty:
                ax.plot(dense["epoch"], dense[column] * 100, color=colours[DENSE], linestyle="--",
                        label="dense parent")
            here = mean_curves[mean_curves["sparsity"] == s]
            for method in method_order(here["method"].unique()):
                line = here[here["method"] == method]
                ax.plot(line["epoch"], line[column] * 100, color=colours[method], label=method)
            ax.set_title(f"sparsity {s:g}")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
            if i % cols == 0:
                ax.set_ylabel(f"{SPLIT_LABELS[split]} (%)")
            # Every panel gets its epoch ticks: sharex would hide them above another panel,
            # and a panel read (or cropped) on its own must still say where its epochs are.
            ax.set_xlabel("epoch")
            ax.xaxis.set_tick_params(labelbottom=True)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), frameon=False)
        figure.suptitle("Learning curves (mean over seeds)", fontsize=10.5)
    return figure


def paired_differences(comparison: pd.DataFrame, margin: float | None = 0.01,
                       baseline: str = BASELINE) -> Figure:
    """Forest plot of ``paired_comparison`` rows: mean difference to ``baseline`` in pp with
    its 95% paired t CI, per sparsity and method; the equivalence margin as a shaded
    band with dashed edges, and each row's verdict at the right."""
    figure, axes = _new_figure(height=max(HEIGHT, 1.0 + 0.42 * len(comparison)))
    ax = axes[0, 0]
    methods = method_order(comparison["method"].unique())
    colours = method_colours(methods)
    sparsities = sorted(comparison["sparsity"].unique())
    with matplotlib.rc_context(STYLE):
        if margin:
            ax.axvspan(-margin * 100, margin * 100, color="#2ca02c", alpha=0.10, linewidth=0,
                       label=f"equivalence margin ±{margin * 100:g} pp")
            for edge in (-margin * 100, margin * 100):
                ax.axvline(edge, color="#2ca02c", linestyle="--", linewidth=1)
        ax.axvline(0, color="black", linewidth=0.8)
        ticks, labels, y = [], [], 0.0
        for s in sparsities:
            top = y
            for method in methods:
                row = comparison[(comparison["sparsity"] == s) & (comparison["method"] == method)]
                if row.empty:
                    continue
                row = row.iloc[0]
                mean, low, high = row["mean_diff"] * 100, row["ci_low"] * 100, row["ci_high"] * 100
                error = None if not np.isfinite(low) else [[mean - low], [high - mean]]
                ax.errorbar([mean], [y], xerr=error, fmt="o", color=colours[method], capsize=3,
                            label=method if method not in ax.get_legend_handles_labels()[1] else None)
                ax.annotate(f"{row['verdict']} (n={row['n']})", xy=(1.01, y),
                            xycoords=("axes fraction", "data"), va="center", fontsize=8.5)
                y -= 1.0
            if y < top:
                ticks.append((top + y + 1.0) / 2)  # one label per sparsity, at its rows' centre
                labels.append(f"s = {s:g}")
            y -= 0.6  # a gap between sparsities
        ax.set_yticks(ticks, labels)
        ax.set_ylim(y + 0.2, 0.6)
        ax.tick_params(axis="y", length=0)
        ax.grid(False, axis="y")
        ax.set_ylabel("sparsity")
        ax.set_xlabel(f"difference to {baseline}: test accuracy (percentage points)")
        ax.set_title(f"Paired differences to {baseline} (mean and 95% CI over seeds)")
        figure.legend(*ax.get_legend_handles_labels(), loc="outside lower center",
                      ncols=4, frameon=False, fontsize=8.5)
    return figure


def convergence_auc(metrics: pd.DataFrame) -> Figure:
    """Mean accuracy over training (AUC, %) on the convergence split vs sparsity, per method with a 95% band.

    ``metrics`` is :func:`sparsebench.analysis.convergence_metrics` output."""
    chosen = metrics[metrics["role"] == "selected"]
    sparsities = _sparse_levels(chosen)
    figure, axes = _new_figure()
    ax = axes[0, 0]
    with matplotlib.rc_context(STYLE):
        _band_by_sparsity(ax, chosen, "auc", sparsities, method_colours(chosen["method"].unique()))
        _sparsity_axis(ax, sparsities)
        ax.set_ylabel(f"area under {split_label(metrics)} curve (%)")
        ax.set_title(f"Convergence: mean {split_label(metrics)} over all epochs (95% CI)")
        ax.legend(loc="best", frameon=False)
    return figure


def epochs_to_threshold(metrics: pd.DataFrame, fraction: float = 0.95) -> Figure | None:
    """Epochs to reach ``fraction`` of the dense parent's final validation accuracy: every
    trial as a dot (hollow triangle at E when censored, i.e. never reached), the
    median of each method as a bar. A mean with a t interval would mislead here,
    because censored times are only known to exceed E. None when no trial reached the
    threshold: a figure of nothing but censored marks says less than one sentence."""
    chosen = metrics[(metrics["role"] == "selected") & metrics["threshold"].notna()]
    chosen = chosen[chosen["method"] != DENSE]
    if not chosen["reached"].astype(bool).any():
        return None
    sparsities = _sparse_levels(chosen)
    colours = method_colours(chosen["method"].unique())
    methods = method_order(chosen["method"].unique())
    figure, axes = _new_figure()
    ax = axes[0, 0]
    rng = np.random.default_rng(0)  # fixed jitter, so the same data give the same picture
    width = 0.6 / max(1, len(methods))
    last = int(chosen["epochs"].max())
    ticks, step = _epoch_ticks(last)
    # Censored times are only known to be > E: draw them in a row of their own one tick step
    # above E, so its "> E" label is as far from the E tick as any two ticks are apart.
    above = last + step
    with matplotlib.rc_context(STYLE):
        for k, method in enumerate(methods):
            of_method = chosen[chosen["method"] == method]
            for i, s in enumerate(sparsities):
                here = of_method[of_method["sparsity"] == s]
                if here.empty:
                    continue
                x = i + (k - (len(methods) - 1) / 2) * width  # methods side by side
                jitter = rng.uniform(-0.35, 0.35, len(here)) * width
                reached = here["reached"].to_numpy(bool)
                values = np.where(reached, here["epochs_to_threshold"].to_numpy(float), above)
                ax.scatter(x + jitter[reached], values[reached], s=14, color=colours[method], alpha=0.7,
                           zorder=3)
                ax.scatter(x + jitter[~reached], values[~reached], s=22, marker="^",
                           facecolors="none", edgecolors=colours[method], zorder=3)
                # The median is well defined under censoring as long as fewer than half are censored.
                ax.plot([x - 0.45 * width, x + 0.45 * width], [np.median(values)] * 2,
                        color=colours[method], linewidth=2.5, alpha=0.6,
                        label=method if i == 0 else None)
        ax.axhline((last + above) / 2, color="black", linestyle=":", linewidth=1)
        ax.scatter([], [], s=22, marker="^", facecolors="none", edgecolors="black",
                   label=f"not reached in E = {last} epochs (censored)")
        ax.set_ylim(0, above + step / 2)
        ax.set_yticks(ticks + [above], [f"{t}" for t in ticks] + [f"> {last}"])
        _sparsity_axis(ax, sparsities)
        ax.set_ylabel("epochs to threshold")
        ax.set_title(f"Epochs to reach {fraction:.0%} of the dense parent's final {split_label(metrics)}\n"
                     "(dots: trials; bars: median per method)")
        figure.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2,
                      frameon=False)
    return figure


def _epoch_ticks(last: int) -> tuple[list[int], int]:
    """Whole-epoch ticks from 1 to ``last`` that always include ``last`` (E), and their step.

    A tick that would sit closer than half a step below E is dropped, so no two labels crowd.

    >>> _epoch_ticks(3), _epoch_ticks(8), _epoch_ticks(30), _epoch_ticks(47)
    (([1, 2, 3], 1), ([2, 4, 6, 8], 2), ([5, 10, 15, 20, 25, 30], 5), ([10, 20, 30, 40, 47], 10))
    """
    values = [int(t) for t in MaxNLocator(nbins=6, integer=True, steps=[1, 2, 5, 10], min_n_ticks=1).tick_values(1, last)]
    step = max(1, values[1] - values[0]) if len(values) > 1 else 1
    ticks = [t for t in values if 0 < t <= last - step / 2 - 1e-9] + [last]
    return ticks, step


def score_vs_accuracy(trials: pd.DataFrame, method: str = RANDOM_SEARCH) -> Figure | None:
    """The search's score (initial, or trained-search's after brief training) vs trained test accuracy (%) of
    a search's scored-and-trained candidates, one panel per sparsity, the selected winner marked; None without
    probes."""
    points = scored_candidates(trials, method)
    if points.empty or not (points["role"] == "probe").any():
        return None
    sparsities = sorted(points["sparsity"].unique())
    cols = min(2, len(sparsities))
    rows = int(np.ceil(len(sparsities) / cols))
    figure, axes = _new_figure(rows, cols, height=max(HEIGHT, 2.4 * rows + 0.8))
    score_name = str(points["score_name"].iloc[0]) if "score_name" in points.columns else "loss"
    with matplotlib.rc_context(STYLE):
        for i, ax in enumerate(axes.flat):
            if i >= len(sparsities):
                ax.set_visible(False)
                continue
            here = points[points["sparsity"] == sparsities[i]]
            probe, winner = here[here["role"] == "probe"], here[here["role"] == "selected"]
            ax.scatter(probe["ranking_score"], probe["final_test_acc"] * 100, s=16, color="#1f77b4",
                       alpha=0.7, label="trained probe candidate")
            ax.scatter(winner["ranking_score"], winner["final_test_acc"] * 100, s=60, marker="*",
                       color="#d62728", label="selected (best score)")
            ax.set_title(f"sparsity {sparsities[i]:g}")
            at_init = score_name in SCORES
            _compact_number_axis(ax, f"initial score ({score_name} at init.)" if at_init else f"search score ({score_name})")
            if i % cols == 0:
                ax.set_ylabel("test accuracy (%)")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
        what = "Initial score" if score_name in SCORES else "Search score"
        figure.suptitle(f"Is the search score predictive? {what} vs trained accuracy", fontsize=10.5)
    return figure


def leaderboard_forest(comparison: pd.DataFrame, order: Sequence[str], margin: float | None = 0.01,
                       baseline: str = BASELINE) -> Figure:
    """The leaderboard as a forest plot, one panel per sparsity: each method's mean paired
    difference to ``baseline`` in pp with its 95% paired t CI, methods top to bottom in
    ``order`` (best mean gain first), the equivalence margin shaded, each verdict beside its point.

    ``comparison`` is a ``paired_comparison`` table on accuracy; ``order`` the methods of
    :func:`sparsebench.analysis.leaderboard`.
    """
    sparsities = sorted(comparison["sparsity"].unique())
    cols = max(1, len(sparsities))
    figure, axes = _new_figure(1, cols, height=max(2.6, 1.3 + 0.45 * len(order)), sharey=True)
    colours = method_colours(list(order))
    finite = comparison[["ci_low", "ci_high", "mean_diff"]].astype(float).to_numpy() * 100
    finite = finite[np.isfinite(finite)]
    reach = max([abs(v) for v in finite] + [(margin or 0) * 100 * 1.5, 0.5])
    with matplotlib.rc_context(STYLE):
        for ax, s in zip(axes.flat, sparsities):
            if margin:
                ax.axvspan(-margin * 100, margin * 100, color="#2ca02c", alpha=0.10, linewidth=0)
            ax.axvline(0, color="black", linewidth=0.8)
            for y, method in enumerate(order):
                row = comparison[(comparison["sparsity"] == s) & (comparison["method"] == method)]
                if row.empty:
                    continue
                row = row.iloc[0]
                mean, low, high = row["mean_diff"] * 100, row["ci_low"] * 100, row["ci_high"] * 100
                if not np.isfinite(mean):
                    continue
                error = None if not np.isfinite(low) else [[mean - low], [high - mean]]
                ax.errorbar([mean], [-y], xerr=error, fmt="o", color=colours[method], capsize=3)
                ax.annotate(row["verdict"], xy=(mean, -y), xytext=(0, 7), textcoords="offset points",
                            ha="center", fontsize=7)
            ax.set_xlim(-reach * 1.15, reach * 1.15)
            ax.set_title(f"sparsity {s:g}")
            ax.grid(False, axis="y")
            ax.set_xlabel("pp vs " + baseline)
        first = axes.flat[0]
        first.set_yticks([-y for y in range(len(order))], list(order))
        first.set_ylim(-len(order) + 0.4, 0.7)
        first.tick_params(axis="y", length=0)
        figure.suptitle(f"Leaderboard: test accuracy − {baseline}, paired by seed (mean, 95% CI; "
                        "best mean gain on top)", fontsize=10)
    return figure


def gain_vs_cost(table: pd.DataFrame, cost: str = "candidate_evaluations", baseline: str = BASELINE) -> Figure:
    """Mean gain over ``baseline`` (pp, 95% CI) against the cost of search, one point per method
    and sparsity, a panel per sparsity; the cost axis is symmetric-log (a cost of 0 stays on it).

    ``table`` is :func:`sparsebench.analysis.gain_vs_cost` output; ``cost`` one of its cost columns.
    """
    shown = table[table["method"] != baseline]
    shown = shown[np.isfinite(shown["mean_diff"].astype(float)) & np.isfinite(shown[cost].astype(float))]
    sparsities = sorted(shown["sparsity"].unique())
    cols = max(1, min(3, len(sparsities)))
    rows = int(np.ceil(len(sparsities) / cols)) if sparsities else 1
    figure, axes = _new_figure(rows, cols, height=max(3.0, 2.6 * rows + 0.6), sharey=True)
    colours = method_colours(method_order(table["method"].unique()))
    labels = {"candidate_evaluations": "sub-networks scored", "search_epochs": "training epochs on search",
              "selection_seconds": "seconds of selection"}
    with matplotlib.rc_context(STYLE):
        for i, ax in enumerate(axes.flat):
            if i >= len(sparsities):
                ax.set_visible(False)
                continue
            s = sparsities[i]
            ax.axhline(0, color=colours.get(baseline, "#7f7f7f"), linewidth=0.8)
            for row in shown[shown["sparsity"] == s].itertuples():
                mean, low, high = row.mean_diff * 100, row.ci_low * 100, row.ci_high * 100
                error = None if not np.isfinite(low) else [[mean - low], [high - mean]]
                ax.errorbar([getattr(row, cost)], [mean], yerr=error, fmt="o", color=colours[row.method], capsize=3,
                            label=row.method)
            ax.set_xscale("symlog", linthresh=1.0)
            ax.set_xlim(-0.5, max(10.0, 3.0 * float(shown[cost].max())))  # room beside the costliest point
            ax.set_title(f"sparsity {s:g}")
            ax.set_xlabel(labels.get(cost, cost))
            if i % cols == 0:
                ax.set_ylabel(f"gain over {baseline} (pp)")
        handles, names = [], []
        for ax in axes.flat:
            for handle, name in zip(*ax.get_legend_handles_labels()):
                if name not in names:
                    handles.append(handle)
                    names.append(name)
        if handles:
            figure.legend(handles, names, loc="outside lower center", ncols=min(4, len(names)), frameon=False)
        figure.suptitle(f"Gain over {baseline} vs cost of search (mean and 95% CI over seeds)", fontsize=10.5)
    return figure
