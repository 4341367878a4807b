"""Config values that used to be accepted but meant something else: issue 11, items 6 and 11."""

import pytest

from sparsebench import ExperimentConfig
from sparsebench.config import DEFAULT_LR
from sparsebench.errors import ConfigError

# The quick preset of round 1, spelled out; its hash as round 1 computed it.
ROUND_1_QUICK = dict(
    dataset="mnist1d", hidden=(256, 256, 256), activation="relu", seeds=(0, 1, 2), sparsities=(0.5, 0.9, 0.98),
    methods=("dense", "random", "random-search"), candidates=100, score="loss", probe=0, epochs=30, batch_size=128,
    optimizer="adam", lr=1e-3, momentum=0.9, weight_decay=0.0, val_fraction=0.2, data_seed=0, engine="stacked",
    device="cpu",
)
ROUND_1_QUICK_HASH = "30bd2a39ab6c3eda"
# The tests' tiny config (digits, whose default standardization is per feature, as in round 1).
ROUND_1_TINY_HASH = "8e2c3393c5f68bdf"


def test_a_round_1_config_with_the_legacy_values_of_the_new_fields_keeps_its_hash():
    legacy = dict(patience=0, monitor_fraction=0.0, standardize="feature")
    assert ExperimentConfig(**ROUND_1_QUICK, **legacy).config_hash() == ROUND_1_QUICK_HASH
    tiny = dict(dataset="digits", hidden=(24, 24), seeds=(0, 1), sparsities=(0.5, 0.9), candidates=6, epochs=2, batch_size=64)
    # digits is standardized per feature by default, as in round 1; the other defaults changed.
    assert ExperimentConfig(**tiny, val_fraction=0.2, patience=0, monitor_fraction=0).config_hash() == ROUND_1_TINY_HASH


def test_new_fields_away_from_their_legacy_values_make_a_new_experiment():
    base = ExperimentConfig(**ROUND_1_QUICK, standardize="feature", patience=0, monitor_fraction=0)
    for change in (dict(patience=5), dict(monitor_fraction=0.5), dict(standardize="none")):
        changed = {**ROUND_1_QUICK, "standardize": "feature", "patience": 0, "monitor_fraction": 0, **change}
        assert ExperimentConfig(**changed).config_hash() != base.config_hash()


def test_mnist1d_is_not_standardized_again_by_default_and_digits_is():
    # The MNIST-1D generator standardizes the whole set already; a second, per-feature
    # standardization cost the dense parent 1-2 pp in the audit (issue 12).
    assert ExperimentConfig(dataset="mnist1d").standardize == "none"
    assert ExperimentConfig(dataset="digits").standardize == "feature"


FAST = ["--dataset", "digits", "--hidden", "16,16", "--seeds", "1", "--candidates", "2", "--epochs", "1", "--no-progress"]


# -- the learning rate: each optimizer's own default, resolved before hashing ----------------------
def test_existing_configs_hash_exactly_as_before_lr_had_a_per_optimizer_default():
    # Recorded from the code before `lr` defaulted to None: stores written then must still resume.
    # Round 1's quick and paper presets, spelled out with the legacy values of the fields added since.
    quick = dict(ROUND_1_QUICK, patience=0, monitor_fraction=0, standardize="feature")
    paper = dict(quick, seeds=tuple(range(10)), sparsities=(0.5, 0.7, 0.8, 0.9, 0.95, 0.98), candidates=128, epochs=100, probe=8)
    without_lr = {k: v for k, v in quick.items() if k != "lr"}
    assert ExperimentConfig(**without_lr).config_hash() == "30bd2a39ab6c3eda"
    assert ExperimentConfig(**dict(quick, lr=0.01)).config_hash() == "9a5a3c21a42c07e8"
    assert ExperimentConfig(**paper).config_hash() == "a08629613064987e"
    assert ExperimentConfig(**dict(quick, optimizer="sgd", lr=0.01)).config_hash() == "1596b45960ce2194"


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
    code, _, err = cli("run", *FAST, "--sparsities", "0.5", "--batch-size", "1259", "--store", str(db))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "batch_size: got 1259; allowed: at most the 1258 rows of the training split ('digits' after holding out" in err
    assert not db.exists()
    assert cli("run", *FAST, "--sparsities", "0.5", "--batch-size", "1258", "--store", str(db))[0] == 0
