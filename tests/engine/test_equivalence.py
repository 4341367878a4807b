"""The fast engine must equal the plain masked reference loop (to float tolerance)."""

import math

import pytest
import torch

from sparsebench.data import load_dataset
from sparsebench.engine import TrainSettings, score_masks, train_reference, train_stacked
from sparsebench.models import MLPSpec, NodeMask, compact, gather_stacked, init_parent, random_masks

DATA = load_dataset("digits", 0, 0.2)
SPEC = MLPSpec(DATA.n_features, (32, 32), DATA.n_classes)


# adam at 0.02 makes some networks peak before the last epoch, so their best
# weights are not their final ones.
@pytest.mark.parametrize("optimizer,lr", [("adam", 1e-3), ("sgd", 0.05), ("adam", 0.02)])
def test_stacked_training_equals_reference_one_by_one(optimizer, lr):
    settings = TrainSettings(epochs=4, batch_size=50, optimizer=optimizer, lr=lr, weight_decay=1e-4)
    seeds = [0, 0, 1]
    parents = {s: init_parent(SPEC, s) for s in set(seeds)}
    masks = [random_masks(SPEC.hidden, 0.5, 1, torch.Generator().manual_seed(i))[0] for i in range(3)]
    per_net = [gather_stacked(parents[s], [m]) for s, m in zip(seeds, masks)]
    stacked = [type(l)(torch.cat([p[i].weight for p in per_net]), torch.cat([p[i].bias for p in per_net])) for i, l in enumerate(per_net[0])]
    fast = train_stacked(stacked, seeds, DATA, settings)
    if lr == 0.02:
        assert min(r.best_epoch for r in fast) < settings.epochs  # the case this parameter is for
    for i, (seed, mask) in enumerate(zip(seeds, masks)):
        ref, model = train_reference(parents[seed], mask, seed, DATA, settings)
        for curve in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert getattr(fast[i], curve) == pytest.approx(getattr(ref, curve), abs=2e-4), curve
        assert fast[i].final_test_acc == pytest.approx(ref.final_test_acc, abs=2e-3)
        assert fast[i].final_test_loss == pytest.approx(ref.final_test_loss, abs=1e-4)
        assert fast[i].best_epoch == ref.best_epoch
        assert fast[i].best_test_acc == pytest.approx(ref.best_test_acc, abs=2e-3)
        assert fast[i].best_test_loss == pytest.approx(ref.best_test_loss, abs=1e-4)


@pytest.mark.parametrize("activation", ["tanh", "gelu"])
def test_stacked_training_equals_reference_for_each_activation(activation):
    settings = TrainSettings(epochs=2, batch_size=50, optimizer="adam", lr=1e-3, activation=activation)
    parent = init_parent(SPEC, 0)
    masks = random_masks(SPEC.hidden, 0.5, 2, torch.Generator().manual_seed(4))
    fast = train_stacked(gather_stacked(parent, masks), [0, 0], DATA, settings)
    for mask, result in zip(masks, fast):
        ref, _ = train_reference(parent, mask, 0, DATA, settings)
        for curve in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert getattr(result, curve) == pytest.approx(getattr(ref, curve), abs=2e-4), curve
        assert result.final_test_loss == pytest.approx(ref.final_test_loss, abs=1e-4)


def test_stacked_final_weights_equal_reference_weights():
    settings = TrainSettings(epochs=2, batch_size=64, optimizer="adam", lr=1e-3)
    parents = [init_parent(SPEC, 5), init_parent(SPEC, 6)]
    masks = random_masks(SPEC.hidden, 0.75, 2, torch.Generator().manual_seed(9))
    per_net = [gather_stacked(p, [m]) for p, m in zip(parents, masks)]
    stacked = [type(l)(torch.cat([p[i].weight for p in per_net]), torch.cat([p[i].bias for p in per_net])) for i, l in enumerate(per_net[0])]
    fast = train_stacked(stacked, [5, 6], DATA, settings)
    for seed, parent, mask, result in zip([5, 6], parents, masks, fast):
        _, model = train_reference(parent, mask, seed, DATA, settings)
        for got, want in zip(result.final_weights, compact(model.effective_layers(), mask)):
            torch.testing.assert_close(got.weight, want.weight, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(got.bias, want.bias, rtol=1e-4, atol=1e-5)


def test_stacked_scoring_equals_one_at_a_time():
    parent = init_parent(SPEC, 1)
    masks = random_masks(SPEC.hidden, 0.8, 10, torch.Generator().manual_seed(3))
    for score in ("loss", "accuracy"):
        together = score_masks(parent, masks, DATA.x_val, DATA.y_val, score)
        alone = torch.cat([score_masks(parent, [m], DATA.x_val, DATA.y_val, score) for m in masks])
        torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("score", ["loss", "accuracy"])
def test_stacked_scoring_equals_the_masked_full_width_network(score):
    from sparsebench.engine import score_reference

    parent = init_parent(SPEC, 2)
    masks = random_masks(SPEC.hidden, 0.6, 6, torch.Generator().manual_seed(8))
    fast = score_masks(parent, masks, DATA.x_val, DATA.y_val, score)
    torch.testing.assert_close(fast, score_reference(parent, masks, DATA.x_val, DATA.y_val, score), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("score", ["loss", "accuracy"])
def test_scoring_chunks_when_memory_budget_is_small(monkeypatch, score):
    import sparsebench.engine.scoring as scoring

    parent = init_parent(SPEC, 1)
    masks = random_masks(SPEC.hidden, 0.5, 7, torch.Generator().manual_seed(4))
    whole = score_masks(parent, masks, DATA.x_val, DATA.y_val, score)
    monkeypatch.setattr(scoring, "SCORING_CHUNK_BYTES", 1)
    torch.testing.assert_close(score_masks(parent, masks, DATA.x_val, DATA.y_val, score), whole)


def test_divergence_is_recorded_and_isolated_to_its_network():
    settings = TrainSettings(epochs=3, batch_size=64, optimizer="sgd", lr=1e4, momentum=0.9)
    parent = init_parent(SPEC, 0)
    stacked = gather_stacked(parent, [NodeMask.full(SPEC.hidden)])
    (result,) = train_stacked(stacked, [0], DATA, settings)
    assert result.diverged and 1 <= result.diverged_epoch <= 3
    assert len(result.val_acc) == result.diverged_epoch
    assert result.final_test_acc != result.final_test_acc  # NaN: no metric for a diverged network


def test_diverged_and_finite_networks_in_one_stack_match_the_reference():
    # At this learning rate some networks diverge in epoch 1 while others stay
    # finite; a diverged network must not pick up a "best" epoch afterwards.
    settings = TrainSettings(epochs=5, batch_size=64, optimizer="sgd", lr=1000.0, momentum=0.9)
    seeds = [0, 1, 0, 1]
    parents = {s: init_parent(SPEC, s) for s in set(seeds)}
    masks = [random_masks(SPEC.hidden, 0.5, 1, torch.Generator().manual_seed(i))[0] for i in range(4)]
    per_net = [gather_stacked(parents[s], [m]) for s, m in zip(seeds, masks)]
    stacked = [type(l)(torch.cat([p[i].weight for p in per_net]), torch.cat([p[i].bias for p in per_net])) for i, l in enumerate(per_net[0])]
    fast = train_stacked(stacked, seeds, DATA, settings)
    assert {r.diverged for r in fast} == {True, False}  # the mix this test is about
    for result, seed, mask in zip(fast, seeds, masks):
        ref, _ = train_reference(parents[seed], mask, seed, DATA, settings)
        assert (result.diverged_epoch, result.best_epoch) == (ref.diverged_epoch, ref.best_epoch)
        assert len(result.val_acc) == len(ref.val_acc)
        if result.diverged:
            assert all(math.isnan(getattr(result, k)) for k in ("final_test_acc", "best_test_acc", "best_test_loss"))
        else:
            assert result.best_test_acc == pytest.approx(ref.best_test_acc, abs=2e-3)


def test_gathering_examples_in_blocks_gives_the_same_training(monkeypatch):
    """Minibatches gathered a few steps at a time (large data) or a whole epoch at once: the same numbers."""
    import sparsebench.engine.stacked as stacked

    settings = TrainSettings(epochs=2, batch_size=64, optimizer="adam", lr=1e-3)
    parent = init_parent(SPEC, 0)
    masks = random_masks(SPEC.hidden, 0.5, 2, torch.Generator().manual_seed(8))
    whole = train_stacked(gather_stacked(parent, masks), [0, 1], DATA, settings)
    monkeypatch.setattr(stacked, "GATHER_BYTES", 1)  # one step per gather
    blocks = train_stacked(gather_stacked(parent, masks), [0, 1], DATA, settings)
    for a, b in zip(whole, blocks):
        assert a.train_loss == b.train_loss and a.val_acc == b.val_acc
        torch.testing.assert_close(a.final_weights[0].weight, b.final_weights[0].weight, rtol=0, atol=0)
