"""Config values that used to be accepted but meant something else: issue 11, items 6 and 11."""

import pytest

from sparsebench import ExperimentConfig
from sparsebench.config import DEFAULT_LR
from sparsebench.errors import ConfigError

FAST = ["--dataset", "digits", "--hidden", "16,16", "--seeds", "1", "--candidates", "2", "--epochs", "1", "--no-progress"]


# -- the learning rate: each optimizer's own default, resolved before hashing ----------------------
def test_existing_configs_hash_exactly_as_before_lr_had_a_per_optimizer_default():
    # Recorded from the code before `lr` defaulted to None: stores written then must still resume.
    assert ExperimentConfig().config_hash() == "30bd2a39ab6c3eda"
    assert ExperimentConfig(lr=0.01).config_hash() == "9a5a3c21a42c07e8"
    assert ExperimentConfig.from_sources(preset="paper").config_hash() == "a08629613064987e"
    assert ExperimentConfig(optimizer="sgd", lr=0.01).config_hash() == "1596b45960ce2194"


def test_each_optimizer_has_its_own_default_lr_recorded_as_a_number():
    assert ExperimentConfig().lr == DEFAULT_LR["adam"] == 1e-3
    sgd = ExperimentConfig(optimizer="sgd")
    assert sgd.lr == DEFAULT_LR["sgd"] == 0.1 and sgd.to_dict()["lr"] == 0.1
    assert ExperimentConfig(optimizer="sgd", lr=0.02).lr == 0.02  # a given lr is kept
    assert ExperimentConfig.from_dict(sgd.to_dict()).config_hash() == sgd.config_hash()  # a stored config rebuilds


# -- -0.0 is 0 ------------------------------------------------------------------------------------
def test_negative_zero_is_the_same_experiment_as_zero():
    assert ExperimentConfig(sparsities=(-0.0, 0.5)).config_hash() == ExperimentConfig(sparsities=(0.0, 0.5)).config_hash()
    assert ExperimentConfig(weight_decay=-0.0).config_hash() == ExperimentConfig(weight_decay=0.0).config_hash()
    assert ExperimentConfig(momentum=-0.0).to_dict()["momentum"] == 0.0


def test_negative_zero_on_the_command_line_resumes_the_zero_experiment(tmp_path, cli):
    db = str(tmp_path / "z.db")
    assert cli("run", *FAST, "--sparsities=-0,0.5", "--store", db)[0] == 0
    code, _, err = cli("run", *FAST, "--sparsities", "0,0.5", "--store", db)
    assert code == 0, err
    code, out, _ = cli("list", "--store", db)
    assert len(out.strip().splitlines()) == 2  # a header and one experiment


# -- sparsities: shown as they are, and realizable by the parent ---------------------------------
def test_a_sparsity_that_would_read_as_1_is_refused():
    with pytest.raises(ConfigError, match=r"^sparsity: got 0.9999999999999999; allowed: a number in \[0, 0.9999995\)"):
        ExperimentConfig(sparsities=(0.9999999999999999,))
    assert ExperimentConfig(hidden=(256,), sparsities=(0.999999,)).sparsities == (0.999999,)  # shown as 0.999999


@pytest.mark.parametrize("hidden, sparsities, words", [
    ((1,), (0.5, 0.9, 0.98), "sparsity: got 0.5; allowed: hidden widths >= 2 (with hidden [1], 0.5 keeps all [1] nodes"),
    ((10,), (0.01, 0.5), "sparsity: got 0.01; allowed: for hidden [10], sparsities above 0.05, which remove a node"),
    ((10, 10), (0.9, 0.95), "sparsities: got [0.9, 0.95]; allowed: sparsities that keep different node counts for hidden "
                            "[10, 10]; 0.9 and 0.95 both keep [1, 1] nodes per layer"),
    ((4,), (0.0, 0.1), "sparsity: got 0.1; allowed: for hidden [4], sparsities above 0.125"),
    ((10, 10), (0.9, 0.95, 0.97), "0.9 and 0.95 and 0.97 all keep [1, 1] nodes"),
])
def test_sparsities_the_parent_cannot_tell_apart_are_refused_naming_the_kept_counts(hidden, sparsities, words):
    with pytest.raises(ConfigError) as info:
        ExperimentConfig(hidden=hidden, sparsities=sparsities)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_sparsities_that_differ_in_one_layer_only_are_accepted():
    # 0.9 and 0.95 keep [1, 10] and [1, 5] nodes of hidden [10, 100]: different networks.
    assert ExperimentConfig(hidden=(10, 100), sparsities=(0.9, 0.95)).sparsities == (0.9, 0.95)
    assert ExperimentConfig(hidden=(1, 4), sparsities=(0.5,)).sparsities == (0.5,)  # the second layer loses nodes


@pytest.mark.parametrize("args, words", [
    (["--hidden", "1"], "hidden widths >= 2"),
    (["--hidden", "10,10", "--sparsities", "0.9,0.95"], "both keep [1, 1] nodes per layer"),
    (["--sparsities", "0.9999999999999999"], "would read as 1"),
])
def test_unrealizable_sparsities_exit_2_and_store_nothing(tmp_path, cli, args, words):
    db = tmp_path / "u.db"
    code, _, err = cli("run", *FAST, "--sparsities", "0.5", *args, "--store", str(db))
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not db.exists()


# -- the command line echoes what was typed ------------------------------------------------------
@pytest.mark.parametrize("args, words", [
    (["run", "--lr", "1e400"], "lr: got '1e400'; allowed: a number > 0"),
    (["run", "--lr", "nan"], "lr: got 'nan'"),
    (["run", "--lr=-inf"], "lr: got '-inf'"),
    (["run", "--sparsities", "0.5,1e999"], "sparsities: got '0.5,1e999'"),
    (["report", "--out", "r", "--margin", "1e400"], "margin: got '1e400'"),
    (["report", "--out", "r", "--threshold", "inf"], "threshold: got 'inf'"),
])
def test_non_finite_numbers_are_echoed_as_typed(tmp_path, cli, args, words):
    code, _, err = cli(*args, "--store", str(tmp_path / "n.db"))
    assert code == 2 and words in err and "got inf" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "n.db").exists()


@pytest.mark.parametrize("margin", ["1e9", "50.5", "0", "-1"])
def test_report_margin_is_bounded(tmp_path, cli, margin):
    db = str(tmp_path / "m.db")
    assert cli("run", *FAST, "--sparsities", "0.5", "--store", db)[0] == 0
    code, _, err = cli("report", "--store", db, "--out", str(tmp_path / "rep"), "--margin", margin)
    assert code == 2 and f"margin: got {float(margin)!r}; allowed: a number of percentage points in (0, 50]" in err, err
    assert not (tmp_path / "rep").exists()


# -- a minibatch larger than the training split ---------------------------------------------------
def test_a_batch_larger_than_the_training_split_is_refused_before_the_store_is_written(tmp_path, cli):
    db = tmp_path / "b.db"
    code, _, err = cli("run", *FAST, "--sparsities", "0.5", "--batch-size", "1151", "--store", str(db))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "batch_size: got 1151; allowed: at most the 1150 rows of the training split ('digits' after holding out" in err
    assert not db.exists()
    assert cli("run", *FAST, "--sparsities", "0.5", "--batch-size", "1150", "--store", str(db))[0] == 0
