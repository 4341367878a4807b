"""Figures for a paper: vector files beside the PNGs, tick labels that never run into each
other, every learning-curve panel with its epochs, and no figure of only censored marks."""

import itertools
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from sparsebench.analysis import convergence_metrics, synthetic_results
from sparsebench.report import build_report, figures, write_report
from sparsebench.report.content import FIGURE_NAMES

SVG = "{http://www.w3.org/2000/svg}svg"


def check_pdf(data: bytes) -> None:
    """A PDF whose trailer points at its cross-reference table and which has a page."""
    assert data.startswith(b"%PDF-1.") and data.rstrip().endswith(b"%%EOF")
    offset = int(re.findall(rb"startxref\s+(\d+)", data)[-1])
    assert data[offset:offset + 4] == b"xref"
    assert re.search(rb"/Type\s*/Page\b", data)
    assert b"/FontFile2" in data and b"/Subtype /Type3" not in data  # TrueType, not Type 3


def check_svg(data: bytes) -> None:
    root = ET.fromstring(data)
    assert root.tag == SVG and float(root.get("width").rstrip("pt")) > 100
    assert len(list(root.iter())) > 50  # it drew something


def test_report_writes_every_figure_as_pdf_and_svg_beside_the_png(report_paths):
    pngs = [p for k, p in report_paths.items() if k.startswith("figure:")]
    assert len(pngs) == len(FIGURE_NAMES)
    for png in pngs:
        check_pdf(png.with_suffix(".pdf").read_bytes())
        check_svg(png.with_suffix(".svg").read_bytes())
        assert report_paths[f"pdf:{png.stem}"] == png.with_suffix(".pdf")
        assert report_paths[f"svg:{png.stem}"] == png.with_suffix(".svg")


def test_markdown_links_the_vector_files_and_the_html_names_them(report_paths):
    markdown = report_paths["markdown"].read_text(encoding="utf-8")
    html = report_paths["html"].read_text(encoding="utf-8")
    for name in FIGURE_NAMES:
        assert f"![" in markdown and f"](figures/{name}.png)" in markdown
        assert f"[PDF](figures/{name}.pdf)" in markdown and f"[SVG](figures/{name}.svg)" in markdown
        assert f"figures/{name}.pdf" in html and f"figures/{name}.svg" in html


def test_vector_files_are_the_same_bytes_for_the_same_data(results):
    trials, _ = results
    first, second = (figures.png_bytes(figures.accuracy_vs_sparsity(trials)) for _ in range(2))
    assert first == second
    for fmt in figures.VECTOR_FORMATS:
        assert first.vector(fmt) == second.vector(fmt)  # no creation date, fixed ids


def test_save_figure_writes_the_three_formats(results, tmp_path):
    trials, _ = results
    paths = figures.save_figure(figures.accuracy_vs_sparsity(trials), tmp_path / "sub" / "acc")
    assert [p.name for p in paths] == ["acc.png", "acc.pdf", "acc.svg"]
    check_pdf(paths[1].read_bytes())
    check_svg(paths[2].read_bytes())
    with pytest.raises(ValueError, match="allowed: png, pdf or svg"):
        figures.figure_bytes(figures.accuracy_vs_sparsity(trials), "eps")


def test_a_rewritten_report_removes_stale_vector_files_too(tmp_path):
    trials, curves = synthetic_results(seeds=3, sparsities=(0.5,), epochs=3, probes=3)
    write_report(trials, curves, {}, tmp_path)
    assert (tmp_path / "figures" / "score_vs_accuracy.svg").is_file()
    trials, curves = synthetic_results(seeds=3, sparsities=(0.5,), epochs=3)
    write_report(trials, curves, {}, tmp_path)
    assert not any((tmp_path / "figures").glob("score_vs_accuracy.*"))


# -- tick labels ----------------------------------------------------------------

def drawn_tick_labels(axis):
    """The tick labels the renderer actually shows on an axis, with their extents."""
    return [(t.get_text(), t.get_window_extent()) for t in axis.get_ticklabels()
            if t.get_visible() and t.get_text()]


def drawn_axis_texts(axis):
    """Tick labels, the axis label and the offset text (e.g. ``×10⁻⁴``) as drawn."""
    extra = [t for t in (axis.label, axis.get_offset_text()) if t.get_visible() and t.get_text()]
    return drawn_tick_labels(axis) + [(t.get_text(), t.get_window_extent()) for t in extra]


def overlapping_tick_labels(figure):
    """Pairs of texts of one axis (tick labels, axis label, offset) whose drawn boxes intersect."""
    FigureCanvasAgg(figure).draw()
    clashes = []
    for ax in figure.axes:
        if not ax.get_visible():
            continue
        for axis in (ax.xaxis, ax.yaxis):
            for (a, box_a), (b, box_b) in itertools.combinations(drawn_axis_texts(axis), 2):
                if box_a.overlaps(box_b):
                    clashes.append((ax.get_title(), a, b))
    return clashes


def with_scores(trials, low, high):
    """The same trials with the probes' and winners' initial scores spread over [low, high]."""
    trials = trials.copy()
    scored = trials["init_score"].notna()
    trials.loc[scored, "init_score"] = np.linspace(low, high, int(scored.sum()))
    return trials


@pytest.mark.parametrize("low, high", [(2.302510, 2.302630), (2.3, 2.3 + 3e-7), (0.0, 1e-6),
                                       (1.2e4, 1.2e4 + 0.37), (0.5, 750.0)])
def test_probe_figure_tick_labels_do_not_run_together(results, low, high):
    trials, _ = results
    figure = figures.score_vs_accuracy(with_scores(trials, low, high))
    assert overlapping_tick_labels(figure) == []
    for ax in figure.axes:
        if ax.get_visible():
            assert len(drawn_tick_labels(ax.xaxis)) >= 2


@pytest.mark.parametrize("epochs", [2, 3, 8, 13, 30, 47, 100])
def test_epochs_to_threshold_keeps_E_and_beyond_E_apart(epochs):
    trials, curves = synthetic_results(seeds=4, sparsities=(0.5, 0.9, 0.98), epochs=epochs)
    figure = figures.epochs_to_threshold(convergence_metrics(trials, curves))
    assert figure is not None
    assert overlapping_tick_labels(figure) == []
    labels = [text for text, _ in drawn_tick_labels(figure.axes[0].yaxis)]
    assert labels[-2:] == [str(epochs), f"> {epochs}"]
    boxes = dict(drawn_tick_labels(figure.axes[0].yaxis))
    gap = boxes[f"> {epochs}"].y0 - boxes[str(epochs)].y1
    assert gap >= boxes[str(epochs)].height  # a free line between them, not just not touching


@pytest.mark.parametrize("n_sparsities", [1, 2, 3, 4, 5])
def test_every_learning_curve_panel_has_epoch_tick_labels(n_sparsities):
    sparsities = (0.5, 0.8, 0.9, 0.95, 0.98)[:n_sparsities]
    trials, curves = synthetic_results(seeds=2, sparsities=sparsities, epochs=6)
    figure = figures.learning_curves(trials, curves)
    assert overlapping_tick_labels(figure) == []
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == [f"sparsity {s:g}" for s in sparsities]
    for ax in panels:
        assert [text for text, _ in drawn_tick_labels(ax.xaxis)], ax.get_title()
        assert ax.get_xlabel() == "epoch"


def test_the_session_figures_have_no_overlapping_tick_labels(results):
    trials, curves = results
    metrics = convergence_metrics(trials, curves)
    from sparsebench.analysis import paired_comparison
    for figure in (figures.accuracy_vs_sparsity(trials), figures.learning_curves(trials, curves),
                   figures.paired_differences(paired_comparison(trials)), figures.convergence_auc(metrics),
                   figures.epochs_to_threshold(metrics), figures.score_vs_accuracy(trials)):
        assert overlapping_tick_labels(figure) == []


# -- all censored -------------------------------------------------------------

def never_reached(trials, curves):
    """Curves where no sparse network gets near the dense parent: nothing reaches 95% of it."""
    curves = curves.copy()
    sparse = curves["trial_id"].isin(trials.loc[trials["method"] != "dense", "trial_id"])
    curves.loc[sparse, "val_acc"] = curves.loc[sparse, "val_acc"] * 0.5
    return curves


def test_all_censored_epochs_to_threshold_is_one_sentence_and_no_figure(tmp_path):
    trials, curves = synthetic_results(seeds=3, sparsities=(0.5, 0.9), epochs=5)
    curves = never_reached(trials, curves)
    metrics = convergence_metrics(trials, curves)
    assert not metrics.loc[metrics["method"] != "dense", "reached"].any()
    assert figures.epochs_to_threshold(metrics) is None

    paths = write_report(trials, curves, {}, tmp_path)
    assert "figure:epochs_to_threshold" not in paths
    assert not any((tmp_path / "figures").glob("epochs_to_threshold.*"))
    report = build_report(trials, curves, {})
    convergence = next(s for s in report.sections if s.heading == "Convergence")
    said = [b.text for b in convergence.blocks if type(b).__name__ == "Paragraph"]
    assert said[0].startswith("The convergence metrics")  # which split they use
    assert said[1:] == ["No sub-network reached 95% of the dense parent's final validation accuracy within "
                        "the 5 epochs, so there is no figure of epochs to threshold: every time is "
                        "censored at E = 5."]
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert said[1] in markdown

