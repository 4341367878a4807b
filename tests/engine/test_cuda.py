"""The GPU path: every engine path runs with ``device = "cuda"``, deterministically, and agrees with the reference
and with the CPU to float tolerance.

The tests marked ``cuda`` need a CUDA device and are skipped where none is present (``pytest -m cuda`` runs only
them). The others check, on any machine, how a CUDA run is set up.
"""

import os

import numpy as np
import pytest
import torch

import sparsebench
from sparsebench import runner
from sparsebench.data.registry import DatasetSplits
from sparsebench.engine import kernels
from sparsebench.engine.common import TrainSettings
from sparsebench.engine.families import engine_for
from sparsebench.errors import ConfigError
from sparsebench.models.cnn import CNN
from sparsebench.seeding import generator
from sparsebench.store import Store

#: With ``@pytest.mark.cuda``: skipped, honestly, where there is no GPU.
no_gpu_skip = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

SMALL = dict(dataset="digits", hidden=(16, 16), seeds=(0, 1), sparsities=(0.5, 0.9), candidates=4, epochs=3,
             batch_size=64, patience=0)
NUMBERS = ["final_test_loss", "final_test_acc", "best_test_loss", "best_test_acc", "init_score"]
LOSSES = ["final_test_loss", "best_test_loss", "init_score"]
ACCURACIES = ["final_test_acc", "best_test_acc"]


@pytest.fixture
def deterministic_flags_restored(monkeypatch):
    """``make_cuda_deterministic`` sets process-wide switches: put them back after the test."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[2:]


def _sorted(trials):
    return trials.sort_values(["method", "role", "candidate", "sparsity", "seed"]).reset_index(drop=True)


def _numbers(trials, columns=NUMBERS) -> np.ndarray:
    return _sorted(trials)[columns].to_numpy(dtype=float)


def assert_agree(a, b) -> None:
    """Losses to float tolerance; accuracies within a percentage point (a loss a hair away can flip a prediction)."""
    np.testing.assert_allclose(_numbers(a, LOSSES), _numbers(b, LOSSES), rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(_numbers(a, ACCURACIES), _numbers(b, ACCURACIES), atol=1e-2)


# -- on any machine: how a CUDA run is set up -----------------------------------------------------------------
def test_asking_for_cuda_sets_up_deterministic_computation_before_cuda_starts(monkeypatch, deterministic_flags_restored):
    seen = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: seen.setdefault("env", os.environ.get("CUBLAS_WORKSPACE_CONFIG")) or True)
    assert runner.resolve_device("cuda") == torch.device("cuda")
    assert seen["env"] == ":4096:8"  # set before CUDA was first asked about
    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cudnn.benchmark and not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32


def test_a_cublas_workspace_the_user_chose_is_kept(monkeypatch, deterministic_flags_restored):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    runner.resolve_device("cuda")
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


def test_a_cpu_run_leaves_the_deterministic_switches_alone(deterministic_flags_restored):
    torch.use_deterministic_algorithms(False)
    runner.resolve_device("cpu")
    assert not torch.are_deterministic_algorithms_enabled()
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_device_is_refused_in_one_line_and_leaves_the_process_as_it_was(cli, tmp_path,
                                                                                        deterministic_flags_restored):
    torch.use_deterministic_algorithms(False)
    with pytest.raises(ConfigError, match="no CUDA device is available; allowed: cpu"):
        runner.resolve_device("cuda")
    assert not torch.are_deterministic_algorithms_enabled()  # a refused run changes no process-wide switch
    code, out, err = cli("run", "--dataset", "digits", "--device", "cuda", "--store", str(tmp_path / "s.db"))
    assert code == 2 and err.startswith("sparsebench: error: device:") and not (tmp_path / "s.db").exists()


# -- on a GPU --------------------------------------------------------------------------------------------------
@pytest.mark.cuda
@no_gpu_skip
@pytest.mark.parametrize("engine", ["stacked", "reference"])
@pytest.mark.parametrize("optimizer,activation", [("adam", "relu"), ("sgd", "tanh"), ("adam", "gelu")])
@pytest.mark.usefixtures("deterministic_flags_restored")
def test_an_mlp_experiment_on_the_gpu_agrees_with_the_cpu(engine, optimizer, activation):
    cfg = dict(SMALL, engine=engine, optimizer=optimizer, activation=activation)
    cpu = sparsebench.run(dict(cfg, device="cpu"), store=":memory:", progress=False)
    gpu = sparsebench.run(dict(cfg, device="cuda"), store=":memory:", progress=False)
    assert_agree(gpu, cpu)


@pytest.mark.cuda
@no_gpu_skip
@pytest.mark.parametrize("family", [dict(parent="cnn1d", hidden=(8, 8, 8)),  # few channels: the unfold strategy
                                    dict(parent="cnn1d", hidden=(40, 40, 40), batchnorm=True)])  # the loop strategy
def test_a_cnn1d_experiment_on_the_gpu_trains_the_reference_numbers_and_agrees_with_the_cpu(family, deterministic_flags_restored):
    cfg = dict(SMALL, dataset="mnist1d", hidden=family["hidden"], parent=family["parent"],
               batchnorm=family.get("batchnorm", False), train_limit=600)
    stacked = sparsebench.run(dict(cfg, device="cuda"), store=":memory:", progress=False)
    reference = sparsebench.run(dict(cfg, device="cuda", engine="reference"), store=":memory:", progress=False)
    cpu = sparsebench.run(dict(cfg, device="cpu"), store=":memory:", progress=False)
    assert_agree(stacked, reference)
    assert_agree(stacked, cpu)


def _images(device: torch.device, shape=(2, 6, 6), n_classes=3) -> DatasetSplits:
    """Small separable images (each class a pattern plus noise), as tests/engine/test_conv_engine.py draws them."""
    g = torch.Generator().manual_seed(0)
    patterns = torch.randn(n_classes, *shape, generator=g)

    def draw(n):
        y = torch.randint(0, n_classes, (n,), generator=g)
        return patterns[y] + 0.8 * torch.randn(n, *shape, generator=g), y

    (xt, yt), (xv, yv), (xm, ym), (xs, ys) = draw(96), draw(40), draw(30), draw(50)
    return DatasetSplits("toy", xt, yt, xv, yv, xs, ys, n_classes, x_monitor=xm, y_monitor=ym).to(device)


@pytest.mark.cuda
@no_gpu_skip
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_2d_cnn_trains_and_scores_on_the_gpu_as_the_reference_does(optimizer, deterministic_flags_restored):
    device = runner.resolve_device("cuda")
    data = _images(device)
    family = CNN(2, (6, 6), (6, 6), (8,), 3, batchnorm=True)
    engine = engine_for(family)
    # As tests/engine/test_conv_engine.py holds the CPU: the same family, data, masks and settings.
    settings = TrainSettings(epochs=4, batch_size=32, optimizer=optimizer, lr=0.01 if optimizer == "adam" else 0.05,
                             weight_decay=1e-4)
    parent = engine.to_device(family.init(0), device)
    masks = family.node_space.random_masks(0.5, 2, torch.Generator().manual_seed(1))
    fast = engine.train(engine.stack([(parent, m) for m in masks]), [0, 1], data, settings)
    for mask, seed, result in zip(masks, [0, 1], fast):
        ref = engine.train_reference(parent, mask, seed, data, settings)
        np.testing.assert_allclose(result.val_loss, ref.val_loss, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(result.final_test_loss, ref.final_test_loss, rtol=1e-4)
    scores = engine.score(parent, masks, data.x_val, data.y_val, "loss")
    reference = engine.score(parent, masks, data.x_val, data.y_val, "loss", reference=True)
    assert scores.device.type == "cpu"  # as on the CPU: the runner reads them as numbers
    torch.testing.assert_close(scores, reference.to(scores.dtype), rtol=1e-3, atol=1e-4)


@pytest.mark.cuda
@no_gpu_skip
def test_every_method_selects_trains_and_evaluates_on_the_gpu(deterministic_flags_restored):
    from sparsebench.methods.registry import method_names

    methods = tuple(method_names())
    trials = sparsebench.run(dict(SMALL, seeds=(0,), sparsities=(0.5,), methods=methods, device="cuda"),
                             store=":memory:", progress=False)
    assert set(trials["method"]) == set(methods)
    assert trials["final_test_acc"].notna().all()


@pytest.mark.cuda
@no_gpu_skip
def test_a_gpu_run_is_deterministic_and_a_resumed_one_stores_the_same_bits(tmp_path, deterministic_flags_restored):
    cfg = dict(SMALL, device="cuda")
    first = _sorted(sparsebench.run(cfg, store=tmp_path / "a.db", progress=False))
    again = _sorted(sparsebench.run(cfg, store=tmp_path / "b.db", progress=False))
    assert first[NUMBERS].equals(again[NUMBERS])  # bit for bit
    with Store(tmp_path / "a.db") as st, st.transaction():
        st.con.execute("DELETE FROM curves WHERE trial_id IN (SELECT id FROM trials WHERE sparsity = 0.9)")
        st.con.execute("DELETE FROM candidates WHERE sparsity = 0.9")
        st.con.execute("DELETE FROM trials WHERE sparsity = 0.9")
    resumed = _sorted(sparsebench.run(cfg, store=tmp_path / "a.db", progress=False))
    assert resumed[NUMBERS].equals(first[NUMBERS])
    curves = [sparsebench.load_curves(p).drop(columns="trial_id", errors="ignore").sort_values(["method", "sparsity", "seed", "epoch"])
              for p in (tmp_path / "a.db", tmp_path / "b.db")]
    assert curves[0].reset_index(drop=True).equals(curves[1].reset_index(drop=True))


@pytest.mark.cuda
@no_gpu_skip
@pytest.mark.parametrize("optimizer,activation", [("adam", "relu"), ("sgd", "gelu")])
def test_the_public_kernels_on_the_gpu_give_the_private_kernels_numbers(monkeypatch, optimizer, activation,
                                                                        deterministic_flags_restored):
    monkeypatch.setattr(kernels, "_probed", {})
    runs = {}
    for path in ("private", "public"):
        monkeypatch.setenv(kernels.KERNELS_ENV, path)
        runs[path] = sparsebench.run(dict(SMALL, optimizer=optimizer, activation=activation, device="cuda"),
                                     store=":memory:", progress=False)
    assert kernels.kernel_paths("cuda") == {k: "public" for k in kernels.KERNELS}  # forced, still
    monkeypatch.delenv(kernels.KERNELS_ENV)
    assert kernels.summary("cuda") == "private"  # the pinned torch's CUDA build has them all
    np.testing.assert_allclose(_numbers(runs["public"]), _numbers(runs["private"]), rtol=1e-4, atol=1e-5)
