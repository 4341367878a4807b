"""The scores candidates are ranked by (``sparsebench.scores``): each against a direct computation on the
network as ``to_module`` builds it, the masked full-width network against the compacted one, batched against one
at a time, for every family; their direction in ``SelectionContext.better``; bad names refused in one line."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sparsebench
from sparsebench.analysis.predictive import within_seed_predictiveness
from sparsebench.engine.families import engine_for
from sparsebench.errors import ConfigError
from sparsebench.methods.random_search import RandomSearch
from sparsebench.models.mask import random_masks
from sparsebench.models.mlp import MLP, Layer
from sparsebench.names import SCORES
from sparsebench.scores import REGISTRY, get_score, naswot, network, score_masks

from .conftest import FAMILIES

TRAINING_FREE = ("naswot", "jacob-cov", "grad-norm", "synflow")


def _data(name: str, n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    family, shape = FAMILIES[name]
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g), torch.randint(0, family.n_classes, (n,), generator=g)


def _masks(name: str, count: int = 5, sparsity: float = 0.5) -> list:
    family, _ = FAMILIES[name]
    return random_masks(family.node_space.widths, sparsity, count, torch.Generator().manual_seed(3))


def _module(family, mask, batch_statistics: bool) -> nn.Sequential:
    """The compacted sub-network as a plain module, BatchNorm on batch statistics (training) or at its start."""
    return network.skeleton(family, family.init(0), mask, batch_statistics)


# -- the registry -----------------------------------------------------------------------------------------------
def test_registry_lists_every_score_name_with_direction_and_log():
    assert tuple(REGISTRY) == SCORES
    assert [(s.higher_is_better, s.log) for s in REGISTRY.values()] == [
        (False, False), (True, False), (True, True), (True, False), (True, False), (True, True)]


@pytest.mark.parametrize("where", ["method", "config", "registry"])
def test_a_bad_score_name_is_refused_in_one_line_listing_the_allowed_ones(where, tiny_dict):
    allowed = "one of loss, accuracy, naswot, jacob-cov, grad-norm, synflow"
    with pytest.raises(ConfigError) as err:
        if where == "method":
            RandomSearch(score="nasbot")
        elif where == "config":
            sparsebench.ExperimentConfig.from_dict({**tiny_dict, "score": "nasbot"})
        else:
            get_score("nasbot")
    assert str(err.value) == f"score: got 'nasbot'; allowed: {allowed}" and "\n" not in str(err.value)


def test_the_cli_offers_every_score(cli):
    code, _, err = cli("run", "--score", "nasbot")
    assert code == 2 and "naswot" in err and "synflow" in err


# -- loss and accuracy: today's numbers, bit for bit -----------------------------------------------------------
@pytest.mark.parametrize("name", list(FAMILIES))
@pytest.mark.parametrize("score", ["loss", "accuracy"])
def test_loss_and_accuracy_are_the_engines_numbers_bit_for_bit(name, score):
    family, _ = FAMILIES[name]
    x, y = _data(name)
    masks = _masks(name)
    for reference in (False, True):
        expected = engine_for(family).score(family.init(0), masks, x, y, score, reference=reference)
        assert torch.equal(score_masks(score, family, family.init(0), masks, x, y, reference=reference), expected)


# -- every score, every family ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(FAMILIES))
@pytest.mark.parametrize("score", TRAINING_FREE)
def test_each_score_batched_equals_one_at_a_time_and_the_masked_full_width_network(name, score):
    family, _ = FAMILIES[name]
    x, y = _data(name)
    masks = _masks(name)
    batched = score_masks(score, family, family.init(0), masks, x, y)
    alone = torch.cat([score_masks(score, family, family.init(0), [m], x, y) for m in masks])
    masked = score_masks(score, family, family.init(0), masks, x, y, reference=True)
    assert batched.shape == (len(masks),) and batched.dtype == torch.float64
    assert torch.isfinite(batched).all() and batched.unique().numel() > 1  # it tells candidates apart
    torch.testing.assert_close(batched, alone, rtol=1e-6, atol=1e-6)  # float32 networks: to float tolerance
    torch.testing.assert_close(batched, masked, rtol=1e-6, atol=1e-6)


def test_chunks_of_any_size_give_the_same_scores(monkeypatch):
    family, _ = FAMILIES["cnn1d-bn-fc"]
    x, y = _data("cnn1d-bn-fc")
    masks = _masks("cnn1d-bn-fc", count=7)
    whole = score_masks("grad-norm", family, family.init(0), masks, x, y)
    monkeypatch.setattr(network, "CHUNK_ELEMENTS", 1)  # one candidate a chunk
    torch.testing.assert_close(score_masks("grad-norm", family, family.init(0), masks, x, y), whole)


# -- NASWOT -----------------------------------------------------------------------------------------------------
def _naswot_direct(module: nn.Sequential, x: torch.Tensor, kept=None) -> float:
    """Mellor et al.'s code: a hook on every ReLU adds ``c c^T + (1-c)(1-c)^T`` of its input's codes; log|det|."""
    kernel = torch.zeros(len(x), len(x), dtype=torch.float64)
    relus = [m for m in module if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        h = x
        for m in module:
            h = m(h)
            if isinstance(m, nn.ReLU):
                units = h if kept is None else h.index_select(1, kept[relus.index(m)])
                c = (units.flatten(1) > 0).double()
                kernel += c @ c.T + (1 - c) @ (1 - c).T
    return float(torch.linalg.slogdet(kernel).logabsdet)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_naswot_on_the_masked_full_width_network_equals_the_compacted_one(name):
    family, _ = FAMILIES[name]
    if name == "mlp":  # wide enough that 6 examples get distinct codes (K not singular)
        family = MLP(12, (40, 30), 3)
    x, y = _data(name, n=6)
    weights = family.init(0)
    for mask in random_masks(family.node_space.widths, 0.5, 5, torch.Generator().manual_seed(3)):
        compacted = _naswot_direct(_module(family, mask, True), x)
        full = network.skeleton(family, family.expand(family.compact(weights, mask), mask), None, True)
        kept = mask.index_tensors()
        assert _naswot_direct(full, x, kept) == pytest.approx(compacted, abs=1e-9)
        # Without reading only the kept units, a removed unit (code 0) adds a constant to K: another score.
        assert _naswot_direct(full, x) != pytest.approx(compacted, abs=1e-3)
        assert float(score_masks("naswot", family, weights, [mask], x, y)[0]) == pytest.approx(compacted, abs=1e-9)
        assert float(score_masks("naswot", family, weights, [mask], x, y, reference=True)[0]) == \
            pytest.approx(compacted, abs=1e-9)


def test_naswot_reads_the_first_128_examples():
    family, _ = FAMILIES["cnn"]
    x, y = _data("cnn", n=200)
    masks = _masks("cnn")
    assert torch.equal(score_masks("naswot", family, family.init(0), masks, x, y),
                       score_masks("naswot", family, family.init(0), masks, x[:128], y[:128]))
    assert not torch.equal(score_masks("naswot", family, family.init(0), masks, x, y),
                           score_masks("naswot", family, family.init(0), masks, x[1:], y[1:]))


def test_a_singular_naswot_kernel_scores_below_every_regular_one_and_by_its_rank():
    regular = torch.tensor([[1., 0., 0.], [0., 1., 0.], [0., 0., 1.]])  # K = [[3,1,1],[1,3,1],[1,1,3]]
    assert naswot.log_det_kernel(regular).item() == pytest.approx(math.log(20))
    one_twin = torch.tensor([[1., 0., 0.], [1., 0., 0.], [0., 0., 1.]])  # rank 2
    all_twins = torch.tensor([[1., 0., 0.], [1., 0., 0.], [1., 0., 0.]])  # rank 1
    scores = [naswot.log_det_kernel(c).item() for c in (regular, one_twin, all_twins)]
    assert all(math.isfinite(s) for s in scores) and scores[0] > 0 > scores[1] > scores[2]


def test_few_kept_units_shrink_the_naswot_minibatch_to_units_plus_one():
    family = MLP(6, (4, 3), 3)  # a sub-network keeping 2 + 2 units: K over 5 examples
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    mask = random_masks(family.node_space.widths, 0.5, 1, torch.Generator().manual_seed(0))[0]
    module = _module(family, mask, True)
    with torch.no_grad():
        codes = naswot.codes([module[1](module[0](x)), module[3](module[2](module[1](module[0](x))))])
    assert codes.shape == (50, 4) and naswot.kernel(codes).shape == (5, 5)


# -- jacob-cov ----------------------------------------------------------------------------------------------------
def _jacob_cov_direct(module: nn.Sequential, x: torch.Tensor) -> float:
    """Mellor et al. v1's code: ``y.backward(ones)``, ``np.corrcoef`` of the flattened input gradients, ``eig``."""
    x = x.clone().requires_grad_(True)
    module(x).backward(torch.ones(len(x), module[-1].out_features))
    with np.errstate(invalid="ignore"):
        corrs = np.corrcoef(x.grad.flatten(1).numpy().astype(np.float64))
    corrs = np.nan_to_num(corrs, nan=0.0)  # a constant Jacobian (dead example) correlates with nothing: 0, as documented
    v = np.linalg.eigvalsh(corrs)
    k = 1e-5
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


@pytest.mark.parametrize("name", list(FAMILIES))
def test_jacob_cov_equals_a_direct_autograd_computation(name):
    family, _ = FAMILIES[name]
    x, y = _data(name, n=30)
    masks = _masks(name)
    expected = [_jacob_cov_direct(_module(family, m, True), x) for m in masks]
    got = score_masks("jacob-cov", family, family.init(0), masks, x, y).tolist()
    assert got == pytest.approx(expected, rel=1e-6)


def test_jacob_cov_of_a_dead_network_is_finite_and_low():
    family = MLP(5, (4,), 2)
    weights = [Layer(torch.zeros(4, 5), -torch.ones(4)), Layer(torch.ones(2, 4), torch.zeros(2))]  # every ReLU off
    x = torch.randn(10, 5)
    mask = random_masks((4,), 0.5, 1, torch.Generator().manual_seed(0))[0]
    dead = float(score_masks("jacob-cov", family, weights, [mask], x, torch.zeros(10, dtype=torch.long))[0])
    alive = float(score_masks("jacob-cov", family, family.init(0), [mask], x, torch.zeros(10, dtype=torch.long))[0])
    assert math.isfinite(dead) and dead < alive


# -- grad-norm ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(FAMILIES))
def test_grad_norm_equals_a_direct_autograd_computation(name):
    family, _ = FAMILIES[name]
    x, y = _data(name, n=30)
    masks = _masks(name)
    expected = []
    for mask in masks:
        module = _module(family, mask, True)
        F.cross_entropy(module(x), y).backward()
        weights = [m.weight.grad for m in module if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
        expected.append(math.sqrt(sum(float((g.double() ** 2).sum()) for g in weights)))
    got = score_masks("grad-norm", family, family.init(0), masks, x, y).tolist()
    assert got == pytest.approx(expected, rel=1e-5)


# -- synflow --------------------------------------------------------------------------------------------------------
def _synflow_direct(module: nn.Sequential, example_shape) -> float:
    """Tanaka et al.'s code: float64, evaluation mode, every parameter and buffer absolute, an all-ones input;
    here summed over the weights of every Linear and Conv layer, and its log."""
    module = module.double().eval()
    with torch.no_grad():
        for t in module.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    module(torch.ones(1, *example_shape, dtype=torch.float64)).sum().backward()
    return math.log(sum(float((m.weight * m.weight.grad).abs().sum().detach()) for m in module
                        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))))


@pytest.mark.parametrize("name", list(FAMILIES))
def test_synflow_equals_a_direct_computation(name):
    family, shape = FAMILIES[name]
    x, y = _data(name)
    masks = _masks(name)
    expected = [_synflow_direct(_module(family, m, False), shape) for m in masks]
    got = score_masks("synflow", family, family.init(0), masks, x, y).tolist()
    assert got == pytest.approx(expected, rel=1e-12)


def test_synflow_does_not_overflow_where_the_direct_computation_does():
    family = MLP(8, (16,) * 10, 3)
    scale = 2.0**100  # every layer's weights times 2^100 (exact in float32), biases 0: the flow 2^1100 times larger
    plain = [Layer(w, torch.zeros_like(b)) for w, b in family.init(0)]
    huge = [Layer(w * scale, b) for w, b in plain]
    mask = random_masks(family.node_space.widths, 0.25, 1, torch.Generator().manual_seed(0))[0]
    x, y = torch.randn(4, 8), torch.zeros(4, dtype=torch.long)
    assert not math.isfinite(_synflow_direct(network.skeleton(family, huge, mask, False), (8,)))  # float64 overflows
    small = float(score_masks("synflow", family, plain, [mask], x, y)[0])
    large = float(score_masks("synflow", family, huge, [mask], x, y)[0])
    assert math.isfinite(small) and large == pytest.approx(small + 11 * math.log(scale), rel=1e-12)


def test_synflow_scaling_by_powers_of_two_changes_no_bit():
    family, shape = FAMILIES["cnn"]
    x, y = _data("cnn")
    masks = _masks("cnn")
    from sparsebench.scores import synflow

    scaled = synflow.compute(family, family.init(0), masks, x, y, False, scale=True)
    plain = synflow.compute(family, family.init(0), masks, x, y, False, scale=False)
    assert torch.equal(scaled, plain)


# -- direction ------------------------------------------------------------------------------------------------------
def test_better_follows_each_scores_direction_and_ranks_nan_last(make_context):
    import dataclasses

    ctx = make_context("mlp")
    assert ctx.better(1.0, 2.0) and not ctx.better(2.0, 1.0)  # loss: lower
    for score in ("accuracy", *TRAINING_FREE):
        other = dataclasses.replace(ctx, score_name=score)
        assert other.better(2.0, 1.0) and not other.better(1.0, 2.0) and not other.better(1.0, 1.0)
        assert other.better(-1e9, float("nan")) and not other.better(float("nan"), -1e9)


@pytest.mark.parametrize("score", TRAINING_FREE)
def test_random_search_keeps_the_best_candidate_by_any_score(score, make_context):
    ctx = make_context("cnn1d-bn-fc")
    selection = RandomSearch(candidates=6, score=score).select(ctx)
    best = max(selection.scores)  # every training-free score: higher is better
    assert selection.scores[selection.chosen] == best and selection.chosen == selection.scores.index(best)
    assert selection.mask == selection.candidates[selection.chosen]


# -- stored numbers and the predictiveness probe -------------------------------------------------------------------
def test_rs_naswot_beside_random_search_stores_its_scores_and_the_probe_reports_both(tmp_path, tiny_dict):
    db = tmp_path / "s.db"
    config = {**tiny_dict, "methods": {"random-search": {}, "rs-naswot": {"method": "random-search", "score": "naswot"}},
              "probe": 2}
    trials = sparsebench.run(config, store=db, progress=False)
    candidates = sparsebench.api.load_candidates(db)
    naswot_trials = trials[trials["method"] == "rs-naswot"]
    assert set(naswot_trials["score_name"]) == {"naswot"}
    for _, trial in naswot_trials.iterrows():
        scored = candidates[(candidates.method == "rs-naswot") & (candidates.sparsity == trial.sparsity)
                            & (candidates.seed == trial.seed)]
        row = scored[scored.idx == trial.candidate].iloc[0]
        # The trial's initial score is its own NASWOT score, not its loss or accuracy.
        assert trial.init_score == pytest.approx(row.score, rel=1e-9, abs=1e-9)
        if trial.role == "selected":
            assert row.score == scored.score.max()
    table = within_seed_predictiveness(trials)
    assert set(table["method"]) <= {"random-search", "rs-naswot"}
    assert set(zip(table["method"], table["score_name"])) <= {("random-search", "loss"), ("rs-naswot", "naswot")}


def test_the_probe_takes_each_scores_direction():
    rows = [dict(method=label, status="done", sparsity=0.9, seed=seed, role="selected" if i == 0 else "probe",
                 candidate=i, score_name=score, init_score=sign * (2.0 - i / 10), final_test_acc=0.8 - i / 100)
            for label, score, sign in (("random-search", "loss", -1.0), ("rs-naswot", "naswot", 1.0))
            for seed in range(3) for i in range(4)]
    table = within_seed_predictiveness(pd.DataFrame(rows))
    overall = table[table["scope"] == "overall"].set_index("method")
    # Both rank candidates the right way: loss by a negative rho, NASWOT by a positive one; both useful.
    assert overall.loc["random-search", "mean_rho"] == -1.0 and overall.loc["rs-naswot", "mean_rho"] == 1.0
    assert (overall["mean_rho_useful"] == 1.0).all()
