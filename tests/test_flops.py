"""Issue 14.6: each trial stores its network's FLOPs per example and the fraction of the dense
parent's FLOPs it removes; the export, the run's summary and the report show that fraction beside
the weight sparsity (for convolutional parents the two differ a lot). Stores written before
schema 5 did not record it: see tests/reliability/test_store_files.py."""

import pandas as pd

import sparsebench
from sparsebench.analysis import synthetic_results
from sparsebench.data.registry import load_dataset
from sparsebench.models.registry import family_for
from sparsebench.report import build_report
from sparsebench.report.blocks import Table
from sparsebench.summary import format_summary, percent_removed, removed_fractions


def test_stored_and_exported_flops_are_the_familys_counts_of_each_trials_mask(tmp_path, tiny_config):
    db = tmp_path / "f.db"
    trials = sparsebench.run(tiny_config, store=db, progress=False)
    data = load_dataset(tiny_config.dataset, tiny_config.data_seed, tiny_config.val_fraction)
    family = family_for(tiny_config.model, tuple(data.x_train.shape[1:]), data.n_classes)
    exported = sparsebench.export_table(db).set_index("trial_id")
    for t in trials.itertuples():
        mask = sparsebench.load_mask(db, t.trial_id)  # None: the dense parent
        assert t.flops == family.flops(mask) and t.flop_reduction == family.flop_reduction(mask)
        assert exported.loc[t.trial_id, "flops"] == t.flops
        assert exported.loc[t.trial_id, "flop_reduction"] == t.flop_reduction
    dense = trials[trials["method"] == "dense"]
    assert (dense["flop_reduction"] == 0.0).all() and (dense["flops"] == family.flops()).all()
    # By hand for the MLP (64 inputs, hidden 24-24, 10 classes): half the nodes kept at sparsity 0.5,
    # a multiply and an add per weight, an add per bias.
    half = trials[trials["sparsity"] == 0.5]
    assert (half["flops"] == (2 * 64 * 12 + 12) + (2 * 12 * 12 + 12) + (2 * 12 * 10 + 10)).all()
    assert str(trials["flops"].dtype) == "Int64"
    columns = list(exported.reset_index().columns)
    assert columns[columns.index("weight_sparsity") + 1] == "flop_reduction"
    curves = sparsebench.export_table(db, curves=True)
    assert curves["flop_reduction"].notna().all()


def with_flops(trials: pd.DataFrame, fraction_of_weights: float = 1.1) -> pd.DataFrame:
    """Synthetic trials with a FLOP reduction beside their weight sparsity (capped below 1)."""
    return trials.assign(flop_reduction=(trials["weight_sparsity"] * fraction_of_weights).clip(upper=0.999))


def summary_table_of(report) -> Table:
    summary = next(s for s in report.sections if s.heading == "Summary")
    return next(b for b in summary.blocks if isinstance(b, Table))


def test_the_run_summary_shows_the_flops_removed_beside_the_weights():
    trials, _ = synthetic_results(seeds=3, sparsities=(0.5, 0.9), epochs=2)
    trials = with_flops(trials)
    header, *lines = format_summary(trials).splitlines()
    assert header.split()[:4] == ["sparsity", "weights", "FLOPs", "method"]
    for (s, method), row in removed_fractions(trials).iterrows():
        line = next(l for l in lines if l.split()[0] == f"{s:g}" and l.split()[3] == method)
        assert line.split()[1:3] == [f"{percent_removed(row.weight_sparsity)}%", f"{percent_removed(row.flop_reduction)}%"]
    assert "FLOPs: fraction of its FLOPs per example removed" in format_summary(trials)
    assert "FLOPs" not in format_summary(trials.drop(columns="flop_reduction"))  # a table without them


def test_the_report_summary_table_shows_weights_and_flops_removed_after_the_sparsity():
    trials, curves = synthetic_results(seeds=3, sparsities=(0.5, 0.9), epochs=2)
    trials = with_flops(trials)
    table = summary_table_of(build_report(trials, curves, {}))
    assert table.columns[:4] == ["sparsity", "weights removed %", "FLOPs removed %", "method"]
    means = removed_fractions(trials)
    for row in table.rows:
        expected = means.loc[(float(row[0]), row[3])]
        assert row[1:3] == [percent_removed(expected.weight_sparsity), percent_removed(expected.flop_reduction)]
    assert "FLOPs per example" in table.caption and "every position" in table.caption


def test_the_report_says_which_flops_were_not_recorded():
    trials, curves = synthetic_results(seeds=3, sparsities=(0.5, 0.9), epochs=2)
    some = with_flops(trials)
    some.loc[some["sparsity"] != 0.9, "flop_reduction"] = float("nan")  # stored before an upgrade to schema 5
    rows = summary_table_of(build_report(some, curves, {})).rows
    assert {r[2] for r in rows if r[0] != "0.9"} == {"not recorded"}
    assert "not recorded" not in {r[2] for r in rows if r[0] == "0.9"}
    none = trials.assign(flop_reduction=float("nan"))  # a store written before schema 5
    table = summary_table_of(build_report(none, curves, {}))
    assert "FLOPs removed %" not in table.columns and "weights removed %" in table.columns
    assert "FLOPs removed are not shown: these trials did not record them" in table.caption
