"""The run's closing summary and the report's warnings: the spread is labelled (sd), long
verdicts keep the columns in line, networks that diverged or sit at chance level are
warned about, and an unfinished experiment's report names what is still pending."""

import sqlite3

import pandas as pd
import pytest

import sparsebench
from sparsebench.analysis import synthetic_results
from sparsebench.errors import SparsebenchError
from sparsebench.report import build_report, write_report
from sparsebench.summary import (
    failure_warnings,
    format_summary,
    format_table,
    incomplete_notice,
    network_failures,
    pending_work,
)


def test_the_spread_is_labelled_sd():
    trials, _ = synthetic_results(seeds=3, sparsities=(0.5,), epochs=2)
    header = format_summary(trials).splitlines()[0]
    assert "test acc % (mean ± sd)" in header


@pytest.mark.parametrize("verdict", ["identical (not tested)", "too few seeds", "n/a (no random)", "equivalent", ""])
def test_long_verdicts_keep_every_column_in_line(verdict):
    table = pd.DataFrame({
        "sparsity": [0.0, 0.9, 0.9, 0.98], "method": ["dense", "random", "a-much-longer-method-name-here", "x"],
        "n": [3, 1, 3, 0], "mean_test_acc": [0.9, 0.5, 0.1, float("nan")],
        "sd_test_acc": [0.01, float("nan"), 0.0, float("nan")],
        "n_diverged": [0, 2, 0, 3], "verdict": ["", "", verdict, verdict]})
    header, *rows = format_table(table, {}, 0.01)
    n_end = header.index("  n  ") + 3  # one past the header's "n"
    acc_end = header.index("test acc % (mean ± sd)") + len("test acc % (mean ± sd)")
    verdict_start = header.index("verdict vs random")
    for row in rows:
        assert row[n_end - 1].isdigit() and row[n_end:n_end + 2] in ("  ", ""), row  # n right-aligned under "n"
        assert row[acc_end:acc_end + 2] == "  ", row
    for row in rows[:3]:  # the mean's decimal point in one column, with or without an sd
        assert row[acc_end - 11] == ".", row
    assert rows[2][verdict_start:] == verdict
    assert rows[3][acc_end - 14:acc_end].strip() == "n/a" and rows[3][verdict_start:] == (
        f"{verdict}  (3 diverged)" if verdict else "(3 diverged)")


def test_identical_results_are_not_coloured_as_equivalent():
    from sparsebench.report.blocks import Report, Section, Table
    from sparsebench.report.html import render_html

    page = render_html(Report("t", [Section("s", [Table(["verdict"], [["identical (not tested)"], ["equivalent"]])])]))
    assert '<td class="verdict-identical">identical (not tested)</td>' in page
    assert '<td class="verdict-equivalent">equivalent</td>' in page


def test_summary_warns_when_a_method_diverged_in_many_trials():
    trials, _ = synthetic_results(seeds=4, sparsities=(0.5, 0.9), epochs=2,
                                  diverged=[("random-search", 0.9, s) for s in range(3)] + [("random", 0.5, 0)])
    text = format_summary(trials)
    warnings = [line for line in text.splitlines() if line.startswith("warning:")]
    # 1 of 4 random trials diverging is reported in its row, not warned about.
    assert warnings == ["warning: random-search at sparsity 0.9: 3 of its 4 trials diverged."]


def at_chance(trials, method, sparsity, accuracy):
    trials = trials.copy()
    rows = (trials["method"] == method) & (trials["sparsity"] == sparsity) & (trials["status"] == "done")
    trials.loc[rows, "final_test_acc"] = accuracy
    return trials


def test_chance_level_is_warned_only_when_the_chance_accuracy_is_known():
    trials, _ = synthetic_results(seeds=3, sparsities=(0.5, 0.9), epochs=2)
    trials = at_chance(trials, "random-search", 0.9, 0.105)
    trials = at_chance(trials, "random", 0.9, 0.09)  # below chance: a constant minority-class guess
    assert failure_warnings(trials, chance_acc=None) == []
    warnings = failure_warnings(trials, chance_acc=0.1)
    assert warnings == [
        "random at sparsity 0.9: 3 of its 3 trials are at chance level (test accuracy at most 12.0%; a "
        "constant prediction scores at most 10.0%).",
        "random-search at sparsity 0.9: 3 of its 3 trials are at chance level."]
    table = network_failures(trials, chance_acc=0.1)
    assert table.loc[table["flagged"], "sparsity"].tolist() == [0.9, 0.9]
    assert "warning: random at sparsity 0.9" in format_summary(trials, chance_acc=0.1)


def test_a_single_class_dataset_is_all_at_chance():
    trials, _ = synthetic_results(seeds=2, sparsities=(0.9,), epochs=2)
    trials["final_test_acc"] = 1.0
    warnings = failure_warnings(trials, chance_acc=1.0)
    assert [w.split(":")[0] for w in warnings] == ["the dense parent", "random at sparsity 0.9",
                                                  "random-search at sparsity 0.9"]
    assert "at most 100.0%" in warnings[0]


def test_mixed_failures_are_counted_together():
    trials, _ = synthetic_results(seeds=4, sparsities=(0.9,), epochs=2, diverged=[("random", 0.9, 0)])
    trials = trials.copy()
    trials.loc[(trials["method"] == "random") & (trials["seed"] == 1), "final_test_acc"] = 0.1
    assert failure_warnings(trials, chance_acc=0.1) == [
        "random at sparsity 0.9: 2 of its 4 trials failed: 1 diverged and 1 is at chance level "
        "(test accuracy at most 12.0%; a constant prediction scores at most 10.0%)."]


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.1"])
def test_a_chance_accuracy_outside_0_1_is_refused(bad):
    trials, _ = synthetic_results(seeds=2, sparsities=(0.9,), epochs=2)
    with pytest.raises(SparsebenchError, match="chance_acc"):
        failure_warnings(trials, chance_acc=bad)


def test_the_report_has_a_warnings_section_only_when_there_is_something_to_warn(tmp_path):
    trials, curves = synthetic_results(seeds=3, sparsities=(0.5, 0.9), epochs=3)
    assert "Warnings" not in [s.heading for s in build_report(trials, curves, {}, chance_acc=0.1).sections]
    trials = at_chance(trials, "random-search", 0.9, 0.1)
    report = build_report(trials, curves, {}, chance_acc=0.1, notice="Incomplete experiment: ...")
    assert [s.heading for s in report.sections][:3] == ["Status", "Warnings", "Summary"]
    paths = write_report(trials, curves, {}, tmp_path, chance_acc=0.1)
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "random-search at sparsity 0.9: 3 of its 3 trials are at chance level" in markdown
    assert "say nothing about their method" in markdown
    html = paths["html"].read_text(encoding="utf-8")
    assert "<h2>Warnings</h2>" in html


def test_without_a_chance_accuracy_the_report_says_chance_was_not_checked():
    trials, curves = synthetic_results(seeds=2, sparsities=(0.9,), epochs=3,
                                       diverged=[("random", 0.9, s) for s in range(2)])
    report = build_report(trials, curves, {})
    warnings = next(s for s in report.sections if s.heading == "Warnings")
    texts = [b.text for b in warnings.blocks]
    assert texts[0] == "random at sparsity 0.9: 2 of its 2 trials diverged."
    assert "Whether networks sit at chance level is not checked" in texts[-1]


# -- what an unfinished experiment lacks ---------------------------------------

CONFIG = {"seeds": [0, 1, 2], "sparsities": [0.5, 0.9, 0.98], "methods": ["dense", "random", "random-search"],
          "probe": 2}


def stored(*keys):
    return pd.DataFrame([{"method": m, "sparsity": s} for m, s, n in keys for _ in range(n)],
                        columns=["method", "sparsity"])


def test_pending_work_counts_probes_and_partial_groups():
    trials = stored(("dense", 0.0, 3), ("random", 0.5, 3), ("random-search", 0.5, 9), ("random", 0.9, 1))
    pending = pending_work(CONFIG, trials)
    assert pending.to_dict("records") == [
        {"sparsity": 0.9, "method": "random", "planned": 3, "stored": 1},
        {"sparsity": 0.9, "method": "random-search", "planned": 9, "stored": 0},
        {"sparsity": 0.98, "method": "random", "planned": 3, "stored": 0},
        {"sparsity": 0.98, "method": "random-search", "planned": 9, "stored": 0}]
    assert incomplete_notice(CONFIG, trials).startswith(
        "Incomplete experiment: 16/39 planned trials are stored. Pending: sparsity 0.9 (random, random-search: "
        "11 trials missing); sparsity 0.98 (random, random-search: 12 trials missing).")


def test_a_missing_dense_parent_is_named_as_such():
    trials = stored(("random", 0.5, 3), ("random-search", 0.5, 9), ("random", 0.9, 3), ("random-search", 0.9, 9),
                    ("random", 0.98, 3), ("random-search", 0.98, 9))
    notice = incomplete_notice(CONFIG, trials)
    assert "Pending: the dense parent (3 trials missing)." in notice
    assert "only the baselines" not in notice.lower()


def test_report_of_an_incomplete_run_names_the_pending_sparsities(tmp_path, cli):
    db = tmp_path / "s.db"
    args = ["--dataset", "digits", "--hidden", "16,16", "--seeds", "2", "--sparsities", "0.5,0.9",
            "--candidates", "3", "--epochs", "2", "--no-progress", "--store", str(db)]
    assert cli("run", *args)[0] == 0
    con = sqlite3.connect(db)
    con.execute("DELETE FROM curves WHERE trial_id IN (SELECT id FROM trials WHERE method != 'dense')")
    con.execute("DELETE FROM candidates")
    con.execute("DELETE FROM trials WHERE method != 'dense'")
    con.commit()
    con.close()
    code, _, err = cli("report", "--store", str(db), "--out", str(tmp_path / "r"))
    assert code == 0, err
    markdown = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert ("Incomplete experiment: 2/10 planned trials are stored. Pending: sparsity 0.5 (random, "
            "random-search: 4 trials missing); sparsity 0.9 (random, random-search: 4 trials missing).") in markdown
    assert "Only the baselines were run" not in markdown


def test_the_run_summary_prints_sd_and_no_warning_for_a_healthy_run(tmp_path, tiny_dict):
    trials = sparsebench.run(tiny_dict, store=str(tmp_path / "s.db"), progress=False)
    text = format_summary(trials)
    assert "(mean ± sd)" in text and "warning:" not in text


def test_run_warns_after_its_summary_when_every_network_diverged(tmp_path, cli):
    code, out, err = cli("run", "--dataset", "digits", "--hidden", "16,16", "--seeds", "2", "--epochs", "2",
                         "--sparsities", "0.9", "--candidates", "3", "--lr", "1e30", "--no-progress",
                         "--store", str(tmp_path / "s.db"))
    assert code == 0, err
    assert out.splitlines()[-3:-1] == ["warning: the dense parent: 2 of its 2 trials diverged.",
                                       "warning: random at sparsity 0.9: 2 of its 2 trials diverged."]
    # One of these networks ends with finite but constant outputs: at chance level, said as such.
    assert out.splitlines()[-1].startswith("warning: random-search at sparsity 0.9: ")
