"""Convolutional parents end to end: the CLI, a dataset plugin of images, plugin methods, sub-network export."""

import json
import textwrap

import pytest
import torch

import sparsebench
from sparsebench.data.registry import load_dataset
from sparsebench.engine.conv import masked_module
from sparsebench.engine.families import engine_for
from sparsebench.models.registry import family_for

SMALL_CNN1D = ["--parent", "cnn1d", "--hidden", "8,8,8", "--seeds", "2", "--sparsities", "0.5,0.9", "--candidates", "4",
               "--epochs", "2", "--patience", "0"]

IMAGES = textwrap.dedent(
    """
    import numpy as np

    def tiny_images(data_seed):
        # Three classes of 3x8x8 images: a bright row, column or diagonal, plus noise.
        rng = np.random.default_rng(data_seed)
        def draw(n):
            y = rng.integers(0, 3, n)
            x = rng.normal(scale=0.3, size=(n, 3, 8, 8)).astype(np.float32)
            for i, c in enumerate(y):
                if c == 0: x[i, :, 3, :] += 1
                elif c == 1: x[i, :, :, 3] += 1
                else: x[i, :, range(8), range(8)] += 1
            return x, y
        x_train, y_train = draw(240)
        x_test, y_test = draw(90)
        return x_train, y_train, x_test, y_test
    """
)

USER_METHOD = textwrap.dedent(
    """
    from sparsebench.methods import Method, Selection
    from sparsebench.models import NodeMask

    class LargestIncomingNorm(Method):
        def select(self, ctx):
            keep = [w.norm(dim=1).topk(k).indices.tolist()
                    for w, k in zip(ctx.parent.incoming_weights(), ctx.node_space.kept(ctx.sparsity))]
            return Selection(NodeMask.from_indices(keep, ctx.node_space.widths))
    """
)


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    (tmp_path / "user_images.py").write_text(IMAGES)
    (tmp_path / "user_norms.py").write_text(USER_METHOD)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_cnn1d_runs_on_mnist1d_from_the_command_line(tmp_path, cli, plugins):
    db = tmp_path / "c.db"
    code, out, err = cli("run", *SMALL_CNN1D, "--methods", "dense,random,random-search,user_norms:LargestIncomingNorm",
                         "--store", str(db))
    assert code == 0, err
    trials = sparsebench.load_results(db)
    assert len(trials) == 2 * (1 + 2 * 3)
    assert trials["final_test_acc"].notna().all()
    sparse = trials[trials["sparsity"] == 0.9]
    assert (sparse["weight_sparsity"] > 0.9).all()  # a removed channel takes its filter and the next layer's input slice
    # The method written against the family-agnostic context kept the channels with the largest filters.
    family = family_for({"parent": "cnn1d", "hidden": [8, 8, 8]}, (40,), 10)
    chosen = trials[(trials["method"] == "user_norms:LargestIncomingNorm") & (trials["sparsity"] == 0.5)].iloc[0]
    mask = sparsebench.load_mask(db, int(chosen["trial_id"]))
    norms = family.incoming_weights(family.init(int(chosen["seed"])))[0].norm(dim=1)
    assert set(mask.kept[0]) == set(norms.topk(4).indices.tolist())


def test_the_reference_engine_trains_cnn1d_to_the_stacked_engines_numbers(tmp_path, cli):
    fast, slow = tmp_path / "fast.db", tmp_path / "slow.db"
    assert cli("run", *SMALL_CNN1D, "--store", str(fast))[0] == 0
    assert cli("run", *SMALL_CNN1D, "--engine", "reference", "--store", str(slow))[0] == 0
    a, b = (sparsebench.load_results(p).sort_values(["method", "sparsity", "seed"]) for p in (fast, slow))
    assert list(a["final_test_loss"]) == pytest.approx(list(b["final_test_loss"]), rel=1e-4)


def test_a_2d_cnn_trains_on_small_images_from_a_dataset_plugin(tmp_path, cli, plugins):
    db = tmp_path / "i.db"
    code, _, err = cli("run", "--dataset", "user_images:tiny_images", "--parent", "cnn", "--hidden", "6,6,8",
                       "--fc", "12", "--batchnorm", "--seeds", "2", "--sparsities", "0.5", "--candidates", "3",
                       "--epochs", "3", "--patience", "0", "--batch-size", "32", "--store", str(db))
    assert code == 0, err
    trials = sparsebench.load_results(db)
    assert len(trials) == 2 * 3 and trials["final_test_acc"].notna().all()
    dense = trials[trials["method"] == "dense"]
    assert dense["final_test_acc"].mean() > 0.6  # three easy classes: well above chance (1/3)
    assert json.loads(trials[trials["method"] == "random"]["kept_nodes"].iloc[0]) == [3, 3, 4, 6]  # conv channels, then FC
    net = sparsebench.load_subnetwork(db, int(trials[trials["method"] == "random"]["trial_id"].iloc[0]))
    assert isinstance(net[0], torch.nn.Conv2d) and net[0].out_channels == 3 and isinstance(net[1], torch.nn.BatchNorm2d)


def test_a_cnn_on_tabular_data_is_refused_in_one_line_before_a_store_exists(tmp_path, cli):
    db = tmp_path / "x.db"
    code, _, err = cli("run", "--parent", "cnn", "--seeds", "1", "--epochs", "1", "--store", str(db))
    assert code == 2 and err.strip().splitlines() == [
        "sparsebench: error: parent 'cnn': got data of shape (N, 40), tabular (N, F); allowed: images (N, C, H, W)"]
    assert not db.exists()


def test_a_found_subnetworks_module_computes_what_the_stored_trial_trained(tmp_path, cli):
    """``load_subnetwork`` (``to_module`` of the stored mask) = the masked full-width network the trial started from."""
    db = tmp_path / "s.db"
    assert cli("run", *SMALL_CNN1D, "--batchnorm", "--store", str(db))[0] == 0
    trials = sparsebench.load_results(db)
    row = trials[(trials["method"] == "random-search") & (trials["sparsity"] == 0.9)].iloc[0]
    module = sparsebench.load_subnetwork(db, int(row["trial_id"]))
    mask = sparsebench.load_mask(db, int(row["trial_id"]))
    data = load_dataset("mnist1d", 0, 0.125)
    family = family_for({"parent": "cnn1d", "hidden": [8, 8, 8], "batchnorm": True}, (40,), 10)
    x = engine_for(family).prepare(data).x_test[:64]
    reference = masked_module(family, family.init(int(row["seed"])), mask).eval()
    module.eval()
    torch.testing.assert_close(module(x), reference(x), rtol=1e-5, atol=1e-6)
    # The stored initial score is this network's validation loss.
    assert sum(p.numel() for p in module.parameters()) == row["n_params"]


def test_fc_empty_on_the_command_line_means_no_hidden_fc_layer(tmp_path, cli, plugins):
    db = tmp_path / "nofc.db"
    code, _, err = cli("run", "--dataset", "user_images:tiny_images", "--parent", "cnn", "--hidden", "4,4", "--fc", "",
                       "--seeds", "1", "--sparsities", "0.5", "--candidates", "2", "--epochs", "1", "--batch-size", "32",
                       "--store", str(db))
    assert code == 0, err
    assert json.loads(sparsebench.load_results(db).query("method == 'random'")["kept_nodes"].iloc[0]) == [2, 2]


def test_a_last_minibatch_batchnorm_cannot_normalize_is_refused_in_one_line(tmp_path, cli):
    """Six stride-2 convolutions take MNIST-1D's 40 positions to 1; 3500 training rows in batches of 3499 leave one over."""
    db = tmp_path / "bn.db"
    code, _, err = cli("run", "--parent", "cnn1d", "--hidden", "4,4,4,4,4,4", "--batchnorm", "--batch-size", "3499",
                       "--seeds", "1", "--sparsities", "0.5", "--epochs", "1", "--store", str(db))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "leave a last minibatch of one example" in err, err
    assert not db.exists()
