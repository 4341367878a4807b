"""Problems a user walkthrough found: stale figures, a store without a dense parent,
and summary sentences whose Holm-adjusted p-values seemed to contradict their CI."""

import re

import sparsebench
from sparsebench.analysis import synthetic_results
from sparsebench.api import load_curves, load_results
from sparsebench.report import build_report, write_report
from sparsebench.report.blocks import FigureBlock, Paragraph, Table

NO_DENSE = "Epochs to threshold need the dense parent (method `dense`), which this experiment did not run."


def figure_files(out):
    return {p.name for p in (out / "figures").iterdir()}


def test_every_figure_a_report_writes_has_a_known_name(report_paths):
    from sparsebench.report.content import FIGURE_NAMES  # the names write_report may clean up

    written = {k.split(":", 1)[1] for k in report_paths if k.startswith("figure:")}
    assert written == set(FIGURE_NAMES)  # the session report has probes, curves and a dense parent


def test_rewriting_a_report_removes_its_stale_figures_but_no_user_file(tmp_path):
    trials, curves = synthetic_results(seeds=3, sparsities=(0.5, 0.9), epochs=3, probes=3)
    first = write_report(trials, curves, {"dataset": "first"}, tmp_path)
    assert "figure:score_vs_accuracy" in first and "figure:epochs_to_threshold" in first
    (tmp_path / "figures" / "my_plot.png").write_bytes(b"mine")
    (tmp_path / "figures" / "notes.txt").write_text("mine")
    (tmp_path / "figures" / "score_vs_accuracy.png.bak").write_bytes(b"mine")

    trials, curves = synthetic_results(seeds=2, sparsities=(0.9,), epochs=3)  # no probes, no curves
    second = write_report(trials, curves.iloc[0:0], {"dataset": "second"}, tmp_path)
    written = {p.name for k, p in second.items() if k.startswith("figure:")}
    assert written == {"paired_differences.png", "gain_vs_cost.png", "accuracy_vs_sparsity.png"}
    vectors = {name.replace(".png", f".{fmt}") for name in written for fmt in ("pdf", "svg")}
    assert figure_files(tmp_path) == written | vectors | {"my_plot.png", "notes.txt", "score_vs_accuracy.png.bak"}
    assert (tmp_path / "figures" / "my_plot.png").read_bytes() == b"mine"
    links = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", second["markdown"].read_text(encoding="utf-8"))
    assert sorted(links) == sorted(f"figures/{name}" for name in written)


def texts(report):
    """Every paragraph and caption of a report, with where it is."""
    for section in report.sections:
        yield section.heading, section.heading
        for block in section.blocks:
            if isinstance(block, Paragraph):
                yield section.heading, block.text
            elif isinstance(block, (Table, FigureBlock)):
                yield section.heading, block.caption


def test_store_without_dense_parent_omits_what_needs_it(tmp_path, tiny_dict, cli):
    store = tmp_path / "s.db"
    sparsebench.run({**tiny_dict, "methods": ["random", "random-search"]}, store=str(store), progress=False)
    code, _, err = cli("report", "--store", str(store), "--out", str(tmp_path / "rep"))
    assert code == 0, err
    assert "epochs_to_threshold.png" not in figure_files(tmp_path / "rep")
    html = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    assert NO_DENSE in html
    assert 'id="epochs_to_threshold"' not in html

    report = build_report(load_results(str(store)), load_curves(str(store)), {})
    for heading, text in texts(report):
        if "dense" in text.lower():  # only to say why something is missing
            assert text in (NO_DENSE, "Gaps to the unpruned network need the dense parent (method `dense`), "
                                      "which this experiment did not run."), (heading, text)
    tables = [b for s in report.sections for b in s.blocks if isinstance(b, Table)]
    assert all(table.rows for table in tables)  # no table that is only a header
    convergence = next(s for s in report.sections if s.heading == "Convergence")
    table = next(b for b in convergence.blocks if isinstance(b, Table))
    assert {row[0] for row in table.rows} == {"auc"}
    assert NO_DENSE in [b.text for b in convergence.blocks if isinstance(b, Paragraph)]


def test_dense_parent_that_never_finished_is_said_so(tmp_path):
    trials, curves = synthetic_results(seeds=3, sparsities=(0.5, 0.9), epochs=4,
                                       diverged=[("dense", 0.0, seed) for seed in range(3)])
    report = build_report(trials, curves, {})
    said = [text for _, text in texts(report) if "dense" in text.lower()]
    assert "Epochs to threshold need a finished dense parent (method `dense`); none of this " \
           "experiment's dense trials finished." in said
    assert not any("dashed" in text or "95% of the dense parent" in text for text in said), said
    assert "epochs_to_threshold" not in {f.name for f in report.figures()}


def test_report_with_dense_parent_keeps_threshold_figure_and_gap_table(report_paths):
    markdown = report_paths["markdown"].read_text(encoding="utf-8")
    assert "figure:epochs_to_threshold" in report_paths
    assert "dashed: the dense parent" in markdown and "Gap = method − dense parent" in markdown
    assert "95% of the dense parent's final validation accuracy" in markdown


def test_summary_sentences_say_the_p_values_are_holm_adjusted(report_paths):
    markdown = report_paths["markdown"].read_text(encoding="utf-8")
    summary = markdown.split("## Summary", 1)[1].split("\n|", 1)[0]
    # One family on the primary metric: 2 methods x 3 sparsities.
    assert summary.count("Holm-adjusted across 6 method × sparsity comparisons") >= 6
