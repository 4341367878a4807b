"""The private fused kernels and their public fallback (engine/kernels.py): same numbers to float tolerance,
the probe falls back where a kernel is missing or differs, SPARSEBENCH_KERNELS=public forces the fallback, and a
run records the path it used. CI runs this file: it is how the fallback path is tested on the pinned torch."""

import types

import pytest
import torch

import sparsebench
from sparsebench.engine import kernels
from sparsebench.engine.common import TrainSettings
from sparsebench.engine.fused_optimizer import FusedOptimizer
from sparsebench.errors import ConfigError
from sparsebench.store import Store


@pytest.fixture(autouse=True)
def fresh_probes(monkeypatch):
    """Every test probes anew and leaves the cache of the others alone."""
    monkeypatch.setattr(kernels, "_probed", {})
    monkeypatch.delenv(kernels.KERNELS_ENV, raising=False)


def force_public(monkeypatch):
    monkeypatch.setenv(kernels.KERNELS_ENV, "public")


def test_this_torch_has_every_private_kernel_with_the_expected_signature():
    # torch 2.13.0, what setup.sh installs: the fast path must be the one taken.
    assert kernels.kernel_paths("cpu") == {k: kernels.PRIVATE for k in kernels.KERNELS}
    assert kernels.summary("cpu") == "private"


def test_the_environment_variable_forces_the_public_path(monkeypatch):
    force_public(monkeypatch)
    assert kernels.kernel_paths("cpu") == {k: kernels.PUBLIC for k in kernels.KERNELS}
    assert kernels.summary() == "public"
    monkeypatch.setenv(kernels.KERNELS_ENV, " Private ")
    assert kernels.summary() == "private"


def test_a_bad_value_of_the_environment_variable_is_refused_in_one_line(monkeypatch):
    monkeypatch.setenv(kernels.KERNELS_ENV, "fast")
    with pytest.raises(ConfigError, match=r"SPARSEBENCH_KERNELS.*'fast'.*allowed: private .* or public"):
        kernels.summary()


# -- the probe ---------------------------------------------------------------------------------------
def test_the_probe_falls_back_when_the_fused_adam_kernel_is_missing(monkeypatch):
    monkeypatch.delattr(torch, "_fused_adam_")
    assert not kernels.uses_private("adam")
    assert kernels.uses_private("sgd")
    assert kernels.summary() == "public for adam"
    p = torch.zeros(3)
    opt = FusedOptimizer([p], TrainSettings(epochs=1, batch_size=1, optimizer="adam", lr=0.1))
    opt.step([torch.ones(3)])  # the public path runs: Adam's first step moves by lr
    assert p.tolist() == pytest.approx([-0.1] * 3)


def test_the_probe_falls_back_when_a_kernel_has_another_signature(monkeypatch):
    def other_signature(params, grads, momentum_buffers, *, weight_decay, momentum, lr, dampening, nesterov, maximize,
                        is_first_step, grad_scale, found_inf):  # two more required keywords
        raise AssertionError("not reached: the call has fewer keywords")

    monkeypatch.setattr(torch, "_fused_sgd_", other_signature)
    assert not kernels.uses_private("sgd")
    assert kernels.uses_private("adam")


def test_the_probe_falls_back_when_a_kernel_runs_but_computes_something_else(monkeypatch):
    monkeypatch.setattr(torch, "_fused_adam_", lambda *args, **kwargs: None)  # accepts the call, updates nothing
    assert not kernels.uses_private("adam")


@pytest.mark.parametrize("activation,op", [("relu", "threshold_backward"), ("tanh", "tanh_backward"), ("gelu", "gelu_backward")])
def test_the_probe_falls_back_when_an_aten_backward_overload_is_missing(monkeypatch, activation, op):
    monkeypatch.setattr(torch.ops.aten, op, types.SimpleNamespace())  # the op without its .grad_input overload
    assert not kernels.uses_private(f"{activation}_backward")
    assert kernels.summary() == f"public for {activation}_backward"
    pre = torch.linspace(-2, 2, 9)
    out = kernels._ACTIVATIONS[activation](pre)
    public = kernels.activation_backward_(torch.ones(9), out, pre, activation)
    x = pre.clone().requires_grad_()
    (expected,) = torch.autograd.grad(kernels._ACTIVATIONS[activation](x).sum(), x)
    assert torch.allclose(public, expected, atol=1e-6)


def test_the_probe_runs_once_per_device_type(monkeypatch):
    calls = []
    real = kernels._probe
    monkeypatch.setattr(kernels, "_probe", lambda kernel, device: calls.append((kernel, device)) or real(kernel, device))
    for _ in range(3):
        kernels.uses_private("adam", torch.device("cpu"))
    assert calls == [("adam", "cpu")]


# -- the public path gives the private path's numbers -------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_public_activation_backward_equals_the_aten_kernel(activation):
    torch.manual_seed(0)
    pre = torch.randn(3, 17, 5)
    pre[0, 0, :3] = torch.tensor([0.0, float("nan"), float("inf")])
    out = kernels._ACTIVATIONS[activation](pre)
    grad = torch.randn(3, 17, 5)
    grad[1, 2, 0] = float("nan")
    private = kernels._BACKWARD_PRIVATE[activation](grad.clone(), out, pre)
    public = kernels._BACKWARD_PUBLIC[activation](grad.clone(), out, pre)
    torch.testing.assert_close(public, private, rtol=1e-6, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_public_optimizer_steps_equal_the_fused_kernels(monkeypatch, optimizer, weight_decay):
    settings = TrainSettings(epochs=1, batch_size=1, optimizer=optimizer, lr=0.01, weight_decay=weight_decay)
    g = torch.Generator().manual_seed(1)
    start = [torch.randn(4, 6, generator=g), torch.randn(6, generator=g)]
    grads = [[torch.randn(4, 6, generator=g), torch.randn(6, generator=g)] for _ in range(5)]
    finals = []
    for path in ("private", "public"):
        monkeypatch.setenv(kernels.KERNELS_ENV, path)
        params = [t.clone() for t in start]
        opt = FusedOptimizer(params, settings)
        for step in grads:
            opt.step([t.clone() for t in step])
        finals.append(params)
    for private, public in zip(*finals):
        torch.testing.assert_close(public, private, rtol=1e-5, atol=1e-7)


SMALL = dict(dataset="digits", hidden=(16, 16), seeds=(0,), sparsities=(0.5,), candidates=3, epochs=2, batch_size=64,
             methods=("dense", "random", "random-search"))


def _numbers(trials):
    columns = ["final_test_loss", "final_test_acc", "best_test_loss", "init_score"]
    return trials.sort_values(["method", "role", "candidate"])[columns].to_numpy(dtype=float)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_a_small_experiment_forced_onto_the_public_path_gives_the_fused_paths_numbers(monkeypatch, tmp_path, optimizer, activation):
    cfg = sparsebench.ExperimentConfig(**SMALL, optimizer=optimizer, activation=activation)
    runs = {}
    for path in ("private", "public"):
        monkeypatch.setenv(kernels.KERNELS_ENV, path)
        store = tmp_path / f"{path}.db"
        runs[path] = sparsebench.run(cfg, store=store, progress=False)
        with Store(store, create=False) as st:
            assert st.software(1)["kernels"] == path  # the run records the path it used
    import numpy as np

    np.testing.assert_allclose(_numbers(runs["public"]), _numbers(runs["private"]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_convolutional_experiment_forced_onto_the_public_path_gives_the_fused_paths_numbers(monkeypatch, optimizer):
    cfg = sparsebench.ExperimentConfig(**{**SMALL, "hidden": (4, 4)}, parent="cnn1d", optimizer=optimizer)
    runs = {}
    for path in ("private", "public"):
        monkeypatch.setenv(kernels.KERNELS_ENV, path)
        runs[path] = sparsebench.run(cfg, store=":memory:", progress=False)
    import numpy as np

    np.testing.assert_allclose(_numbers(runs["public"]), _numbers(runs["private"]), rtol=1e-4, atol=1e-5)


def test_resuming_with_the_other_path_warns_that_the_last_bits_may_differ(monkeypatch, tmp_path):
    cfg = sparsebench.ExperimentConfig(**{**SMALL, "sparsities": (0.5, 0.8)})
    store = tmp_path / "s.db"
    sparsebench.run(cfg, store=store, progress=False)
    with Store(store) as st, st.transaction():
        st.con.execute("DELETE FROM curves WHERE trial_id IN (SELECT id FROM trials WHERE sparsity = 0.8)")
        st.con.execute("DELETE FROM candidates WHERE sparsity = 0.8")
        st.con.execute("DELETE FROM trials WHERE sparsity = 0.8")
    force_public(monkeypatch)
    with pytest.warns(sparsebench.errors.SparsebenchWarning, match="kernels private -> public"):
        sparsebench.run(cfg, store=store, progress=False)


def test_a_bad_kernels_setting_is_refused_before_a_store_exists(monkeypatch, tmp_path, cli):
    monkeypatch.setenv(kernels.KERNELS_ENV, "fused")
    store = tmp_path / "s.db"
    code, out, err = cli("run", "--dataset", "digits", "--hidden", "8", "--seeds", "1", "--sparsities", "0.5",
                         "--epochs", "1", "--candidates", "2", "--store", str(store))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("sparsebench: error: SPARSEBENCH_KERNELS: got 'fused'")
    assert not store.exists()


def test_resuming_a_store_from_before_the_kernels_were_recorded_does_not_warn(tmp_path):
    import json
    import warnings

    cfg = sparsebench.ExperimentConfig(**{**SMALL, "sparsities": (0.5, 0.8)})
    store = tmp_path / "s.db"
    sparsebench.run(cfg, store=store, progress=False)
    with Store(store) as st, st.transaction():
        software = st.software(1)
        del software["kernels"]  # as an older sparsebench recorded it: the private kernels were the only path
        st.con.execute("UPDATE experiments SET software = ?", (json.dumps(software),))
        st.con.execute("DELETE FROM curves WHERE trial_id IN (SELECT id FROM trials WHERE sparsity = 0.8)")
        st.con.execute("DELETE FROM candidates WHERE sparsity = 0.8")
        st.con.execute("DELETE FROM trials WHERE sparsity = 0.8")
    with warnings.catch_warnings():
        warnings.simplefilter("error", sparsebench.errors.SparsebenchWarning)
        sparsebench.run(cfg, store=store, progress=False)
