"""The stopping rule and the monitoring split, in both engines (issue 12)."""

import pytest
import torch

from sparsebench.data import load_dataset
from sparsebench.engine import TrainSettings, train_reference, train_stacked
from sparsebench.models import MLPSpec, gather_stacked, init_parent, random_masks

# Half of the held-out rows form the monitoring split.
DATA = load_dataset("digits", 0, 0.2, 0.5)
SPEC = MLPSpec(DATA.n_features, (32, 32), DATA.n_classes)
# A high learning rate makes validation accuracy plateau early for some networks.
STOPPING = TrainSettings(epochs=10, batch_size=64, optimizer="adam", lr=0.03, patience=2)


def _stack(parent, masks):
    return gather_stacked(parent, masks)


def test_the_monitoring_split_is_carved_from_the_held_out_rows_and_disjoint_from_the_others():
    plain = load_dataset("digits", 0, 0.2)
    assert len(DATA.y_monitor) > 0 and not plain.has_monitor
    # Training rows are those of the split without a monitoring split: the dense parent's data is unchanged.
    assert torch.equal(DATA.x_train, plain.x_train)
    assert len(DATA.y_val) + len(DATA.y_monitor) == len(plain.y_val)
    rows = {tuple(r.tolist()) for r in DATA.x_val}
    assert not rows & {tuple(r.tolist()) for r in DATA.x_monitor}
    assert not {tuple(r.tolist()) for r in DATA.x_monitor} & {tuple(r.tolist()) for r in DATA.x_train}
    assert not {tuple(r.tolist()) for r in DATA.x_monitor} & {tuple(r.tolist()) for r in DATA.x_test}


def test_a_network_that_stops_improving_stops_while_the_others_go_on():
    parent = init_parent(SPEC, 0)
    masks = random_masks(SPEC.hidden, 0.9, 8, torch.Generator().manual_seed(1))
    results = train_stacked(_stack(parent, masks), [0] * len(masks), DATA, STOPPING)
    stopped = [r for r in results if r.stop_epoch is not None]
    assert stopped and len(stopped) < len(results)  # the case this test is for
    for r in results:
        last = r.stop_epoch or STOPPING.epochs
        assert len(r.train_loss) == len(r.val_acc) == len(r.monitor_acc) == last
        if r.stop_epoch is not None:
            # The rule: no improvement for `patience` epochs, checked at every epoch.
            assert r.stop_epoch - r.best_epoch == STOPPING.patience
            assert max(r.val_acc) == r.val_acc[r.best_epoch - 1] == r.best_val_acc


def test_a_stopped_network_keeps_the_weights_of_its_stop_epoch():
    parent = init_parent(SPEC, 0)
    masks = random_masks(SPEC.hidden, 0.9, 8, torch.Generator().manual_seed(1))
    results = train_stacked(_stack(parent, masks), [0] * len(masks), DATA, STOPPING)
    i = next(i for i, r in enumerate(results) if r.stop_epoch is not None)
    # The same stack trained for exactly that many epochs, with no stopping rule.
    short = TrainSettings(**{**STOPPING.__dict__, "epochs": results[i].stop_epoch, "patience": 0})
    plain = train_stacked(_stack(parent, masks), [0] * len(masks), DATA, short)[i]
    for a, b in zip(results[i].final_weights, plain.final_weights):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert results[i].final_test_acc == plain.final_test_acc
    assert results[i].val_acc == plain.val_acc and results[i].monitor_acc == plain.monitor_acc


def test_a_network_is_not_affected_by_when_its_stack_neighbours_stop():
    parent = init_parent(SPEC, 0)
    ours = random_masks(SPEC.hidden, 0.5, 1, torch.Generator().manual_seed(2))
    early = random_masks(SPEC.hidden, 0.5, 3, torch.Generator().manual_seed(3))
    late = random_masks(SPEC.hidden, 0.5, 3, torch.Generator().manual_seed(4))
    a = train_stacked(_stack(parent, ours + early), [0] * 4, DATA, STOPPING)
    b = train_stacked(_stack(parent, ours + late), [0] * 4, DATA, STOPPING)
    assert [r.stop_epoch for r in a[1:]] != [r.stop_epoch for r in b[1:]]  # the neighbours stop differently
    for field in ("train_loss", "val_acc", "monitor_acc", "stop_epoch", "best_epoch", "final_test_acc", "best_test_acc"):
        assert getattr(a[0], field) == getattr(b[0], field), field


@pytest.mark.parametrize("optimizer,lr", [("adam", 0.03), ("sgd", 0.1)])
def test_stacked_stopping_and_monitoring_equal_the_reference(optimizer, lr):
    settings = TrainSettings(epochs=8, batch_size=64, optimizer=optimizer, lr=lr, patience=2)
    parent = init_parent(SPEC, 3)
    masks = random_masks(SPEC.hidden, 0.75, 4, torch.Generator().manual_seed(5))
    fast = train_stacked(_stack(parent, masks), [3] * 4, DATA, settings)
    for mask, result in zip(masks, fast):
        ref, _ = train_reference(parent, mask, 3, DATA, settings)
        assert result.stop_epoch == ref.stop_epoch
        assert result.best_epoch == ref.best_epoch
        # Float rounding differs between the engines and grows over epochs at a high learning rate.
        for curve in ("train_loss", "val_acc", "monitor_loss", "monitor_acc"):
            assert getattr(result, curve) == pytest.approx(getattr(ref, curve), abs=1e-3), curve
        assert result.final_test_acc == pytest.approx(ref.final_test_acc, abs=2e-3)
        assert result.best_test_acc == pytest.approx(ref.best_test_acc, abs=2e-3)
