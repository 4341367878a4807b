"""The data's identity (issue 11, item 3): a fingerprint of the loaded arrays, recorded and checked."""

import hashlib
import json
import sqlite3
import textwrap

import numpy as np
import pytest

import sparsebench
from sparsebench.data.fingerprint import data_stats, fingerprint
from sparsebench.data.registry import load_dataset
from sparsebench.errors import ConfigError, SparsebenchWarning
from sparsebench.store import Store

X, Y = np.arange(12, dtype=np.float32).reshape(4, 3), np.array([0, 1, 0, 1])


@pytest.mark.parametrize("change", [
    lambda a: [a[0] + 1e-6, *a[1:]],                                  # one value
    lambda a: [a[0].astype(np.float64), *a[1:]],                      # the dtype
    lambda a: [a[0].reshape(3, 4), *a[1:]],                           # the shape, same bytes
    lambda a: [a[2], a[1], a[0], a[3]],                               # which split holds what
    lambda a: [a[0].astype(np.float32).view(np.int32), *a[1:]],       # same bytes, another dtype
])
def test_the_fingerprint_changes_with_any_value_dtype_shape_or_split(change):
    arrays = [X, Y, X * 2, Y]
    assert fingerprint(arrays) == fingerprint([a.copy() for a in arrays])
    assert fingerprint(change(arrays)) != fingerprint(arrays)


def test_the_fingerprint_hashes_values_not_memory_layout():
    assert fingerprint([X.T.copy().T, Y, X, Y]) == fingerprint([X, Y, X, Y])  # Fortran order, same values
    assert fingerprint([X[:, ::-1][:, ::-1], Y, X, Y]) == fingerprint([X, Y, X, Y])  # a strided view
    assert fingerprint([np.zeros((0, 3)), np.zeros(0, int), X, Y])  # empty arrays hash too


def test_built_in_datasets_carry_a_stable_fingerprint_of_their_raw_arrays():
    a = load_dataset("digits", 0, 0.2)
    b = load_dataset("digits", 0, 0.3)  # another validation split: the same raw data
    assert len(a.fingerprint) == 64 and a.fingerprint == b.fingerprint
    assert load_dataset("digits", 0, 0.2).to("cpu").fingerprint == a.fingerprint


def test_data_stats_give_split_sizes_and_the_majority_class_chance_level():
    stats = data_stats(np.array([2, 2, 1, 0]), np.array([0, 1]), np.array([2, 0, 0, 2, 1]), 3)
    assert stats == {"n_train": 4, "n_val": 2, "n_monitor": 0, "n_test": 5, "n_classes": 3, "chance_acc": 0.4}


LOADER = textwrap.dedent(
    """
    import numpy as np

    def load(data_seed):
        d = np.load(PATH)
        return d["x_train"], d["y_train"], d["x_test"], d["y_test"]
    """
)


@pytest.fixture
def file_dataset(tmp_path, monkeypatch):
    """A plugin loader that reads ``data.npz``, and a function that (re)writes the file."""
    import sys

    path = tmp_path / "data.npz"
    (tmp_path / "filedata_mod.py").write_text(LOADER.replace("PATH", repr(str(path))))
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(shift: float = 0.0) -> None:
        rng = np.random.default_rng(0)
        y = np.arange(200) % 3
        x = rng.normal(size=(200, 5)) + y[:, None] + shift
        np.savez(path, x_train=x[:150], y_train=y[:150], x_test=x[150:], y_test=y[150:])

    write()
    yield write
    sys.modules.pop("filedata_mod", None)


RUN = ["--dataset", "filedata_mod:load", "--hidden", "8", "--seeds", "1", "--sparsities", "0.5", "--candidates", "2",
       "--epochs", "1", "--batch-size", "32", "--no-progress"]


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_run_on_changed_data_is_refused_naming_both_fingerprints_and_nothing_changes(file_dataset, tmp_path, cli):
    db = tmp_path / "f.db"
    code, _, err = cli("run", *RUN, "--store", str(db))
    assert code == 0, err
    with Store(db) as st:
        recorded, stats = st.data_identity(1)
    assert stats == {"n_train": 131, "n_val": 9, "n_monitor": 10, "n_test": 50, "n_classes": 3, "chance_acc": pytest.approx(17 / 50)}  # classes 0 and 1 each fill 17 of 50 test rows
    assert cli("run", *RUN, "--store", str(db))[0] == 0  # the same data: resumed (complete) as before
    before = sha256(db)

    file_dataset(shift=1e-3)
    code, out, err = cli("run", *RUN, "--store", str(db))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    changed = load_dataset("filedata_mod:load", 0, 0.2).fingerprint
    assert f"fingerprint {changed[:12]}" in err and f"({recorded[:12]})" in err and "experiment 1" in err
    assert "allowed: restore the data it was run on, or run the changed data into a new store (--store)" in err
    assert sha256(db) == before

    file_dataset()  # restored: the experiment is found again
    assert cli("run", *RUN, "--store", str(db))[0] == 0
    assert sha256(db) == before


def test_an_experiment_from_before_fingerprints_adopts_the_current_one_with_a_warning(tmp_path, tiny_config):
    db = tmp_path / "old.db"
    sparsebench.run(tiny_config, store=db, progress=False)
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE experiments SET data_fingerprint = NULL, data_stats = NULL")  # as a schema-3 store migrated
    con.close()
    with pytest.warns(SparsebenchWarning, match="experiment 1 was stored before data fingerprints were recorded; it now "
                                                "records the fingerprint [0-9a-f]{12} of the 'digits' data"):
        sparsebench.run(tiny_config, store=db, progress=False)
    with Store(db) as st:
        recorded, stats = st.data_identity(1)
    assert recorded == load_dataset("digits", 0, 0.2).fingerprint
    assert stats["n_train"] == 1258 and stats["n_classes"] == 10 and 0.05 < stats["chance_acc"] < 0.2


def test_a_new_experiment_records_its_fingerprint_and_stats(tmp_path, tiny_config):
    db = tmp_path / "n.db"
    sparsebench.run(tiny_config, store=db, progress=False)
    con = sqlite3.connect(db)
    fp, stats = con.execute("SELECT data_fingerprint, data_stats FROM experiments").fetchone()
    con.close()
    data = load_dataset("digits", 0, 0.125, 0.5)  # the default split: 1/8 held out, half of it for monitoring
    assert fp == data.fingerprint
    assert json.loads(stats) == {"n_train": 1258, "n_val": 90, "n_monitor": 90, "n_test": 359, "n_classes": 10,
                                 "chance_acc": pytest.approx(float(np.bincount(data.y_test.numpy()).max() / len(data.y_test)))}


def test_a_fingerprint_mismatch_is_refused_through_the_python_api(tmp_path, tiny_config):
    db = tmp_path / "a.db"
    sparsebench.run(tiny_config, store=db, progress=False)
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE experiments SET data_fingerprint = 'abcdef0123456789'")
    con.close()
    with pytest.raises(ConfigError, match=r"differs from the data experiment 1 in .* was run on \(abcdef012345\)"):
        sparsebench.run(tiny_config, store=db, progress=False)


def test_a_second_run_in_the_same_process_sees_a_changed_file(file_dataset, tmp_path):
    # The Python API in a notebook: the loader is called again, so the change is seen.
    db = tmp_path / "nb.db"
    config = {"dataset": "filedata_mod:load", "hidden": [8], "seeds": 1, "sparsities": [0.5], "epochs": 1,
              "candidates": 2, "batch_size": 32}
    sparsebench.run(config, store=db, progress=False)
    file_dataset(shift=1e-3)
    with pytest.raises(ConfigError, match="differs from the data experiment 1"):
        sparsebench.run(config, store=db, progress=False)
