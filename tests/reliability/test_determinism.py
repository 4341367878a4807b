"""Issue 6.8: two runs of the same config on fresh stores export identical numbers."""

from sparsebench.cli import main

from .helpers import export_csv, without_columns

SMALL = ["run", "--dataset", "digits", "--hidden", "16,8", "--seeds", "2", "--sparsities", "0.5,0.9", "--candidates", "4",
         "--probe", "2", "--epochs", "2", "--no-progress"]


def test_two_fresh_runs_export_identical_numbers(tmp_path, capsys):
    exports = []
    for name in ("a", "b"):
        db = tmp_path / f"{name}.db"
        assert main([*SMALL, "--store", str(db)]) == 0
        exports.append((export_csv(db, tmp_path / f"{name}.csv"), export_csv(db, tmp_path / f"{name}_c.csv", "--curves")))
    (trials_a, curves_a), (trials_b, curves_b) = exports
    assert trials_a.count("\n") == 2 + 2 * 2 * (2 + 2) + 1  # header, dense, (random, random-search, 2 probes) per seed and sparsity
    assert trials_a == trials_b
    assert curves_a == curves_b


def test_a_separate_process_exports_what_this_one_does(tmp_path, reference):
    """The reference was run as its own process; the same command here gives the same bytes."""
    from .helpers import RUN_ARGS

    db = tmp_path / "here.db"
    assert main([*RUN_ARGS, "--store", str(db)]) == 0
    assert export_csv(db, tmp_path / "here.csv") == reference.export
    assert export_csv(db, tmp_path / "here_c.csv", "--curves") == reference.export_curves


def test_only_the_timing_column_differs_between_runs(tmp_path):
    """The export's volatile columns are exactly those the comparisons leave out."""
    import csv
    import io

    texts = []
    for name in ("a", "b"):
        db = tmp_path / f"{name}.db"
        assert main([*SMALL, "--store", str(db)]) == 0
        assert main(["export", "--store", str(db), "--format", "csv", "--out", str(tmp_path / f"{name}.csv")]) == 0
        texts.append((tmp_path / f"{name}.csv").read_text())
    a, b = (list(csv.DictReader(io.StringIO(t))) for t in texts)
    differing = {k for ra, rb in zip(a, b) for k in ra if ra[k] != rb[k]}
    assert differing <= {"train_seconds"}
    assert without_columns(texts[0], ["train_seconds"]) == without_columns(texts[1], ["train_seconds"])
