"""Where the data folder comes from, that it is no part of the experiment's identity, and file datasets
end to end through the command line (issue 16, items 1, 2 and 4)."""

from pathlib import Path

import pytest

from sparsebench import ExperimentConfig
from sparsebench.data.files import default_data_dir, resolve_data_dir

MNIST_RUN = ["--dataset", "mnist", "--parent", "mlp", "--hidden", "8,8", "--seeds", "1", "--sparsities", "0.5",
             "--methods", "dense,random", "--epochs", "1", "--batch-size", "20", "--no-progress"]


def test_the_data_folder_is_the_flag_then_the_environment_then_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir(None) == (tmp_path / "xdg" / "sparsebench" / "data", "the default; set --data-dir or $SPARSEBENCH_DATA")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_data_dir() == Path.home() / ".cache" / "sparsebench" / "data"
    monkeypatch.setenv("SPARSEBENCH_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(None) == (tmp_path / "env", "$SPARSEBENCH_DATA")
    assert resolve_data_dir(str(tmp_path / "flag"))[0] == tmp_path / "flag"


def test_the_data_folder_is_not_part_of_the_config_hash():
    base = ExperimentConfig(dataset="mnist", parent="mlp")
    assert base.data_dir is None
    assert ExperimentConfig(dataset="mnist", parent="mlp", data_dir="/a").config_hash() == base.config_hash()
    assert ExperimentConfig(dataset="mnist", parent="mlp", data_dir="/b").config_hash() == base.config_hash()
    assert ExperimentConfig(dataset="mnist", parent="mlp", data_dir="/a").to_dict()["data_dir"] == "/a"  # stored, not hashed


def test_existing_hashes_do_not_change():
    # Pinned in tests/test_config_inputs.py: round 1's quick preset with the legacy values of later fields.
    quick = dict(dataset="mnist1d", hidden=(256, 256, 256), activation="relu", seeds=(0, 1, 2), sparsities=(0.5, 0.9, 0.98),
                 methods=("dense", "random", "random-search"), candidates=100, score="loss", probe=0, epochs=30,
                 batch_size=128, optimizer="adam", lr=1e-3, momentum=0.9, weight_decay=0.0, val_fraction=0.2, data_seed=0,
                 engine="stacked", device="cpu", patience=0, monitor_fraction=0.0, standardize="feature")
    assert ExperimentConfig(**quick).config_hash() == "30bd2a39ab6c3eda"
    assert ExperimentConfig(**quick, data_dir="/somewhere").config_hash() == "30bd2a39ab6c3eda"


@pytest.mark.parametrize("value", ["", 3, "a\0b"])
def test_a_data_dir_that_is_not_a_path_is_refused(value):
    from sparsebench.errors import ConfigError

    with pytest.raises(ConfigError, match="data_dir: got .*; allowed: a folder path"):
        ExperimentConfig(data_dir=value)


def test_mnist_runs_end_to_end_from_the_flag_the_toml_and_the_environment(tmp_path, formats, cli, monkeypatch):
    formats.mnist(tmp_path / "data" / "MNIST" / "raw", gz=True)
    code, out, err = cli("run", *MNIST_RUN, "--data-dir", str(tmp_path / "data"), "--store", str(tmp_path / "a.db"))
    assert code == 0, err
    (tmp_path / "c.toml").write_text(f"data_dir = {str(tmp_path / 'data')!r}\n")
    code, _, err = cli("run", *MNIST_RUN, "--config", str(tmp_path / "c.toml"), "--store", str(tmp_path / "b.db"))
    assert code == 0, err
    monkeypatch.setenv("SPARSEBENCH_DATA", str(tmp_path / "data"))
    code, out, err = cli("run", *MNIST_RUN, "--store", str(tmp_path / "a.db"))  # the same experiment: nothing to train
    assert code == 0, err


def test_missing_files_exit_2_with_one_line(tmp_path, cli):
    code, _, err = cli("run", *MNIST_RUN, "--data-dir", str(tmp_path), "--store", str(tmp_path / "s.db"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "train-images-idx3-ubyte[.gz]" in err and str(tmp_path / "mnist") in err and not (tmp_path / "s.db").exists()


def test_a_corrupted_file_exits_2_with_one_line(tmp_path, formats, cli):
    formats.mnist(tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-1])
    code, _, err = cli("run", *MNIST_RUN, "--data-dir", str(tmp_path), "--store", str(tmp_path / "s.db"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "truncated" in err


def test_a_changed_data_file_is_never_mixed_with_stored_results(tmp_path, formats, cli):
    formats.mnist(tmp_path / "mnist")
    store = str(tmp_path / "s.db")
    assert cli("run", *MNIST_RUN, "--data-dir", str(tmp_path), "--store", store)[0] == 0
    formats.mnist(tmp_path / "mnist", seed=5)  # the same sizes, other pixels
    code, _, err = cli("run", *MNIST_RUN, "--seeds", "2", "--data-dir", str(tmp_path), "--store", store)
    assert code == 0, err  # more seeds: another experiment, on the data loaded now
    code, _, err = cli("run", *MNIST_RUN, "--data-dir", str(tmp_path), "--store", store)
    assert code == 2 and "differs from the data" in err and len(err.strip().splitlines()) == 1


def test_cifar10_runs_a_cnn_end_to_end(tmp_path, formats, cli):
    formats.cifar10_bin(tmp_path)
    code, out, err = cli("run", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--parent", "cnn", "--hidden", "4,4",
                         "--fc", "8", "--seeds", "1", "--sparsities", "0.5", "--methods", "dense,random", "--epochs", "1",
                         "--batch-size", "20", "--no-progress", "--store", str(tmp_path / "s.db"))
    assert code == 0, err


def test_data_list_shows_each_file_dataset_present_or_missing_with_size_and_folder(tmp_path, formats, cli):
    formats.mnist(tmp_path / "MNIST" / "raw", gz=True)
    formats.cifar10_py(tmp_path)
    code, out, err = cli("data", "list", "--data-dir", str(tmp_path))
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert out.splitlines()[0] == f"data folder: {tmp_path} (from --data-dir/data_dir)"
    assert set(rows) == {"mnist", "fashion-mnist", "cifar10", "cifar100", "cifar100-coarse"}
    assert "present" in rows["mnist"] and str(tmp_path / "MNIST" / "raw") in rows["mnist"] and " MB" in rows["mnist"]
    assert "present" in rows["cifar10"] and rows["cifar10"].rstrip().endswith("cifar-10-batches-py")
    assert "missing" in rows["cifar100"] and "not found: train.bin, test.bin" in rows["cifar100"]
    assert "missing" in rows["fashion-mnist"] and str(tmp_path / "fashion-mnist") in rows["fashion-mnist"]


def test_a_stored_sub_network_of_a_file_dataset_loads_from_the_stored_data_dir(tmp_path, formats, monkeypatch):
    import sparsebench

    formats.mnist(tmp_path / "data" / "mnist")
    cfg = ExperimentConfig(dataset="mnist", parent="mlp", hidden=(8, 8), seeds=(0,), sparsities=(0.5,), methods=("random",),
                           epochs=1, batch_size=20, data_dir=str(tmp_path / "data"))
    trials = sparsebench.run(cfg, store=tmp_path / "s.db", progress=False)
    monkeypatch.chdir(tmp_path)  # the folder comes from the stored config, not from where we are
    net = sparsebench.load_subnetwork(tmp_path / "s.db", int(trials.trial_id.iloc[0]))
    assert net(__import__("torch").zeros(2, 784)).shape == (2, 10)
