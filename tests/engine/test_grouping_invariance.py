"""A trial's numbers are its own: bit-identical whatever else shares its stack, in whatever order (issue 19).

Each test runs with one and with two intra-op threads: with two, MKL's batched
product split a stack of one network otherwise than a larger stack until the
package asked MKL for its strict mode (``MKL_CBWR=AUTO,STRICT``, set on import).
"""

import dataclasses
import json
import os
import subprocess
import sys
import warnings

import pandas as pd
import pytest
import torch

import sparsebench
from sparsebench.data import load_dataset
from sparsebench.engine import TrainSettings, evaluate_stacked, train_stacked
from sparsebench.engine.scoring import score_masks
from sparsebench.errors import SparsebenchWarning
from sparsebench.methods.base import SelectionContext
from sparsebench.models import MLPSpec, NodeMask, gather_stacked, init_parent, random_masks
from sparsebench.models.mlp import MLP, Layer
from sparsebench.numerics import mkl_mode
from sparsebench.seeding import generator

DATA = load_dataset("digits", 0, 0.2, 0.5)  # with a monitoring split
# Widths of 10 kept nodes: MKL's small products round by alignment and by batch there.
SPEC = MLPSpec(DATA.n_features, (24, 24), DATA.n_classes)
# Adam at 0.02 makes networks peak early, so that the stopping rule stops some of them.
SETTINGS = TrainSettings(epochs=6, batch_size=64, optimizer="adam", lr=0.02, patience=1)
HAS_MKL = torch.backends.mkl.is_available()


def _network(seed: int, draw: int, sparsity: float) -> tuple[list[Layer], int]:
    parent = init_parent(SPEC, seed)
    if sparsity == 0:
        return gather_stacked(parent, [NodeMask.full(SPEC.hidden)]), seed
    mask = random_masks(SPEC.hidden, sparsity, draw + 1, torch.Generator().manual_seed(seed))[draw]
    return gather_stacked(parent, [mask]), seed


def _stack(networks: list[tuple[list[Layer], int]]) -> tuple[list[Layer], list[int]]:
    layers = [Layer(torch.cat([w[i].weight for w, _ in networks]), torch.cat([w[i].bias for w, _ in networks]))
              for i in range(len(networks[0][0]))]
    return layers, [seed for _, seed in networks]


def _train(keys: list[tuple[int, int]], sparsity: float, settings: TrainSettings = SETTINGS):
    layers, seeds = _stack([_network(seed, draw, sparsity) for seed, draw in keys])
    return dict(zip(keys, train_stacked(layers, seeds, DATA, settings)))


def _assert_identical(a, b) -> None:
    """Every stored number of two TrainResults, bit for bit (NaN equal to NaN), and their final weights."""
    for f in dataclasses.fields(a):
        if f.name in ("seconds", "final_weights"):
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert x == y or (x != x and y != y), f.name
    for p, q in zip(a.final_weights, b.final_weights):
        assert torch.equal(p.weight, q.weight) and torch.equal(p.bias, q.bias)


@pytest.mark.skipif(not HAS_MKL, reason="a torch without MKL")
def test_importing_sparsebench_asks_mkl_for_its_strict_mode_and_a_users_own_mode_is_kept():
    code = ("import sparsebench, torch; torch.ones(3, 3) @ torch.ones(3, 3); "
            "from sparsebench.numerics import mkl_mode; print(mkl_mode())")
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    ours = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    theirs = subprocess.run([sys.executable, "-c", code], env={**env, "MKL_CBWR": "COMPATIBLE"},
                            capture_output=True, text=True, check=True)
    assert ours.stdout.split() == ["AUTO,STRICT"]
    assert theirs.stdout.split() == ["COMPATIBLE"]
    assert mkl_mode() == "AUTO,STRICT"  # this test process too: its conftest imported sparsebench first


@pytest.mark.skipif(not HAS_MKL, reason="a torch without MKL")
def test_mkl_used_before_sparsebench_was_imported_is_warned_of_and_recorded(tmp_path):
    """MKL reads its mode once, at its first call: too late for the package to ask for it then."""
    db = tmp_path / "early.db"
    code = ("import torch; torch.ones(3, 3) @ torch.ones(3, 3); import sparsebench; "
            f"sparsebench.run(dict(dataset='digits', hidden=(8,), seeds=1, sparsities=(0.5,), epochs=1, "
            f"candidates=2), store={str(db)!r}, progress=False)")
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    done = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, check=True)
    assert "MKL computes in its OFF mode, not AUTO,STRICT" in done.stderr
    with sparsebench.store.Store(db) as st:
        assert st.software(1)["mkl_cbwr"] == "OFF" and st.software(1)["threads"] == "1"


def _at_offset(t: torch.Tensor, offset: int) -> torch.Tensor:
    """A copy of ``t`` that starts ``offset`` elements into its buffer (another alignment)."""
    buffer = torch.empty(offset + t.numel(), dtype=t.dtype)
    return buffer[offset:].view(t.shape).copy_(t)


@pytest.mark.parametrize("m,k,n", [(128, 10, 256), (6, 100, 26), (100, 10, 256), (256, 100, 40)])
def test_a_batched_product_gives_each_matrix_its_bits_alone_at_any_alignment(threads, m, k, n):
    """What the engine's ``torch.bmm`` relies on (MKL's strict mode): without it, with two threads, a
    matrix of a stack of 10 got other bits than alone at another alignment, forward and weight gradient."""
    g = torch.Generator().manual_seed(0)
    a, b, grad = torch.randn(10, m, k, generator=g), torch.randn(10, k, n, generator=g), torch.randn(10, m, n, generator=g)
    stacked, weight_grads = torch.bmm(a, b), torch.bmm(a.transpose(1, 2), grad)
    for i in (0, 7):
        for offset in (0, 1, 3):
            assert torch.equal(torch.bmm(_at_offset(a[i : i + 1], offset), b[i : i + 1].clone())[0], stacked[i])
            assert torch.equal(torch.bmm(a[i : i + 1].clone().transpose(1, 2), _at_offset(grad[i : i + 1], offset))[0],
                               weight_grads[i])


@pytest.mark.parametrize("sparsity", [0.0, 0.6])
def test_a_network_trains_to_the_same_bits_alone_and_in_any_stack(threads, sparsity):
    alone = _train([(2, 0)], sparsity)[2, 0]
    with_others = _train([(0, 0), (1, 0), (2, 0)], sparsity)
    reordered = _train([(2, 0), (1, 1), (2, 1), (0, 0), (1, 0)], sparsity)
    assert alone.stop_epoch is not None  # the stopping rule took part
    _assert_identical(with_others[2, 0], alone)
    _assert_identical(reordered[2, 0], alone)
    for key in [(0, 0), (1, 0)]:
        _assert_identical(reordered[key], with_others[key])


@pytest.mark.parametrize("optimizer,activation", [("sgd", "relu"), ("sgd", "tanh"), ("adam", "tanh"), ("adam", "gelu")])
def test_every_optimizer_and_activation_is_grouping_invariant(threads, optimizer, activation):
    # A batch of 50: no power of two, so that tensors end in partial vector units.
    settings = dataclasses.replace(SETTINGS, optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 0.02,
                                   activation=activation, epochs=3, batch_size=50)
    alone = _train([(1, 0)], 0.6, settings)[1, 0]
    stacked = _train([(0, 0), (1, 0), (0, 1)], 0.6, settings)[1, 0]
    _assert_identical(stacked, alone)


def test_evaluation_of_a_network_does_not_depend_on_its_stack(threads, monkeypatch):
    """What runs before training (the initial scores of every trial) too, in chunks of rows."""
    import sparsebench.engine.stacked as stacked

    # Chunks of 40 rows for this shape: a split is evaluated in several, in a stack of any size.
    monkeypatch.setattr(stacked, "EVAL_CHUNK_BYTES", 4 * stacked.EVAL_NETWORKS * 24 * 40)
    nine, _ = _stack([_network(s % 3, s // 3, 0.6) for s in range(9)])  # more than EVAL_NETWORKS
    three, _ = _stack([_network(s, 0, 0.6) for s in (0, 1, 2)])
    one, _ = _stack([_network(2, 0, 0.6)])
    for x, y in ((DATA.x_val, DATA.y_val), (DATA.x_test, DATA.y_test)):
        assert len(y) > 80
        loss1, acc1 = evaluate_stacked(one, x, y)
        loss3, acc3 = evaluate_stacked(three, x, y)
        loss9, acc9 = evaluate_stacked(nine, x, y)
        assert torch.equal(loss3[2:], loss1) and torch.equal(acc3[2:], acc1)
        assert torch.equal(loss9[:3], loss3) and torch.equal(acc9[:3], acc3)


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_a_candidates_score_does_not_depend_on_k_or_the_chunks(threads, monkeypatch, activation):
    import sparsebench.engine.scoring as scoring

    parent = init_parent(SPEC, 0)
    masks = random_masks(SPEC.hidden, 0.6, 7, torch.Generator().manual_seed(0))
    x, y = DATA.x_val, DATA.y_val
    all_at_once = score_masks(parent, masks, x, y, activation=activation)
    alone = torch.cat([score_masks(parent, [m], x, y, activation=activation) for m in masks])
    monkeypatch.setattr(scoring, "SCORING_CHUNK_BYTES", 4 * len(y) * 10 * 3)  # chunks of 3 candidates
    chunked = score_masks(parent, masks, x, y, activation=activation)
    assert torch.equal(all_at_once, alone) and torch.equal(chunked, alone)


def test_a_long_rows_mean_is_the_same_alone_and_among_others(threads):
    """With two threads PyTorch sums one row of 70,000 alone in two passes, among others in one (scoring's loss)."""
    from sparsebench.engine.scoring import _row_means

    rows = torch.randn(4, 70_001, generator=torch.Generator().manual_seed(0))
    assert torch.equal(_row_means(rows)[2:3], _row_means(rows[2:3]))
    assert torch.allclose(_row_means(rows), rows.double().mean(dim=1).float())


def test_brief_training_of_candidates_does_not_depend_on_the_others(threads):
    family = MLP(DATA.n_features, (24, 24), DATA.n_classes)
    parent = family.bind(family.init(0), 0)
    settings = TrainSettings(epochs=1, batch_size=50, optimizer="adam", lr=0.02)
    ctx = SelectionContext(parent=parent, sparsity=0.6, seed=0, candidates=3, score_name="loss",
                           x_train=DATA.x_train, y_train=DATA.y_train, x_val=DATA.x_val, y_val=DATA.y_val,
                           generator=generator(0, "method", "m", 0.6), training=settings)
    masks = family.node_space.random_masks(0.6, 3, torch.Generator().manual_seed(3))
    together, alone = ctx.train(masks, 2)[2], ctx.train(masks[2:], 2)[0]
    assert together.val_loss == alone.val_loss and together.train_loss == alone.train_loss
    for p, q in zip(together.final_weights, alone.final_weights):
        assert torch.equal(p.weight, q.weight) and torch.equal(p.bias, q.bias)


RUN = dict(dataset="digits", hidden=(24, 24), sparsities=(0.6,), candidates=4, epochs=5, patience=1,
           batch_size=64, lr=0.02, monitor_fraction=0.5)
KEY = ["method", "role", "candidate", "sparsity", "seed"]


def _stored(tmp_path, name: str, **overrides) -> dict[str, pd.DataFrame]:
    db = tmp_path / f"{name}.db"
    sparsebench.run({**RUN, **overrides}, store=db, progress=False)
    results = sparsebench.load_results(db)
    curves = sparsebench.load_curves(db).merge(results[["trial_id", "candidate"]], on="trial_id")
    # trained_in names the experiment that trained a trial: its config hash, like config_hash.
    trials = results.drop(columns=["trial_id", "experiment_id", "config_hash", "trained_in", "train_seconds", "selection_seconds"],
                          errors="ignore")
    curves = curves.drop(columns=["trial_id", "experiment_id"])
    return {"trials": trials.set_index(KEY).sort_index(), "curves": curves.set_index([*KEY, "epoch"]).sort_index()}


def _assert_shared_rows_identical(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    for name in ("trials", "curves"):
        shared = a[name].index.intersection(b[name].index)
        assert len(shared) > 0
        pd.testing.assert_frame_equal(a[name].loc[shared], b[name].loc[shared], check_exact=True, check_dtype=False, obj=name)


@pytest.fixture(params=["1", "2"], ids=["1-thread", "2-threads"])
def omp(request, monkeypatch):
    """The thread count a run sets torch's from."""
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize("overrides", [{}, {"optimizer": "sgd", "lr": 0.05, "activation": "tanh"}],
                         ids=["adam-relu", "sgd-tanh"])
def test_run_stores_the_same_numbers_for_seed_2_alone_or_with_seeds_0_and_1(tmp_path, omp, overrides):
    three = _stored(tmp_path, "three", seeds=(0, 1, 2), **overrides)
    alone = _stored(tmp_path, "alone", seeds=(2,), **overrides)
    assert set(alone["trials"].index.get_level_values("seed")) == {2}
    assert alone["curves"]["monitor_acc"].notna().all()
    assert alone["trials"]["stop_epoch"].notna().any() or overrides  # the stopping rule took part (Adam at 0.02)
    _assert_shared_rows_identical(three, alone)


def test_run_stores_the_same_numbers_for_random_with_or_without_random_search(tmp_path, omp):
    both = _stored(tmp_path, "both", seeds=(0, 1), methods=("random", "random-search"))
    random_only = _stored(tmp_path, "random", seeds=(0, 1), methods=("random",))
    assert set(random_only["trials"].index.get_level_values("method")) == {"random"}
    _assert_shared_rows_identical(both, random_only)


def test_a_cnn1d_run_stores_the_same_numbers_for_seed_1_alone_or_with_seed_0(tmp_path, omp):
    cnn = dict(parent="cnn1d", dataset="mnist1d", hidden=(8, 8, 8), sparsities=(0.5,), candidates=3, epochs=2,
               patience=0, train_limit=600)
    two = _stored(tmp_path, "two", seeds=(0, 1), methods=("random", "random-search"), **cnn)
    alone = _stored(tmp_path, "alone", seeds=(1,), methods=("random",), **cnn)
    _assert_shared_rows_identical(two, alone)


def test_the_thread_count_and_mkl_mode_are_recorded_with_the_experiment(tmp_path, monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        sparsebench.run({**RUN, "seeds": (0,), "epochs": 1}, store=tmp_path / "t.db", progress=False)
    finally:
        torch.set_num_threads(before)
    with sparsebench.store.Store(tmp_path / "t.db") as st:
        assert st.software(1)["threads"] == "1"
        assert st.software(1)["mkl_cbwr"] == ("AUTO,STRICT" if HAS_MKL else "none")


@pytest.mark.parametrize("stored,warned", [(None, False), ({"threads": "7"}, True), ({"mkl_cbwr": "COMPATIBLE"}, True)])
def test_resuming_warns_of_another_thread_count_or_mkl_mode_but_not_for_stores_that_never_recorded_one(
        tmp_path, monkeypatch, stored, warned):
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    config = {**RUN, "seeds": (0,), "epochs": 1, "sparsities": (0.6, 0.8)}
    db = tmp_path / "r.db"
    try:
        sparsebench.run(config, store=db, progress=False)
        with sparsebench.store.Store(db) as st, st.transaction():
            recorded = st.software(1)
            software = {k: v for k, v in recorded.items() if k not in ("threads", "mkl_cbwr")}  # as an older store holds it
            if stored is not None:
                software.update({**recorded, **stored})
            st.con.execute("UPDATE experiments SET software = ? WHERE id = 1", (json.dumps(software),))
            st.con.execute("DELETE FROM curves WHERE trial_id IN (SELECT id FROM trials WHERE sparsity = 0.8)")
            st.con.execute("DELETE FROM trials WHERE sparsity = 0.8")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sparsebench.run(config, store=db, progress=False)
    finally:
        torch.set_num_threads(before)
    messages = [str(w.message) for w in caught if issubclass(w.category, SparsebenchWarning)]
    assert bool(messages) == warned, messages
    if stored is not None:
        key, value = next(iter(stored.items()))
        assert f"{key} {value} -> " in messages[0]
