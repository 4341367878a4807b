"""The conv engine: compacted networks train as the masked full-width reference does, to float tolerance."""

import dataclasses

import numpy as np
import pytest
import torch

from sparsebench.data.registry import DatasetSplits
from sparsebench.engine.common import TrainSettings
from sparsebench.engine.families import engine_for
from sparsebench.models.cnn import CNN
from sparsebench.models.cnn1d import CNN1d


def splits(shape, n_classes=3, seed=0):
    """Small separable data of examples ``shape``: each class a pattern plus noise."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.randn(n_classes, *shape, generator=g)

    def draw(n):
        y = torch.randint(0, n_classes, (n,), generator=g)
        return patterns[y] + 0.8 * torch.randn(n, *shape, generator=g), y

    (xt, yt), (xv, yv), (xm, ym), (xs, ys) = draw(96), draw(40), draw(30), draw(50)
    return DatasetSplits("toy", xt, yt, xv, yv, xs, ys, n_classes, x_monitor=xm, y_monitor=ym)


CASES = {
    "cnn1d": (lambda bn: CNN1d(1, (20,), (8, 8, 8), (), 3, batchnorm=bn), (20,)),
    "cnn": (lambda bn: CNN(2, (6, 6), (6, 6), (8,), 3, batchnorm=bn), (2, 6, 6)),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize("optimizer,lr", [("adam", 1e-2), ("sgd", 0.05)])
def test_compacted_training_equals_the_masked_reference(name, bn, optimizer, lr):
    make, shape = CASES[name]
    family = make(bn)
    engine = engine_for(family)
    data = engine.prepare(splits(shape))
    settings = TrainSettings(epochs=4, batch_size=32, optimizer=optimizer, lr=lr, weight_decay=1e-4)
    parent = family.init(0)
    masks = family.node_space.random_masks(0.5, 2, torch.Generator().manual_seed(1))
    stacked = engine.stack([(parent, m) for m in masks])
    compacted = engine.train(stacked, [0, 1], data, settings)
    for mask, seed, fast in zip(masks, [0, 1], compacted):
        slow = engine.train_reference(parent, mask, seed, data, settings)
        for curve in ("train_loss", "val_loss", "monitor_loss"):
            np.testing.assert_allclose(getattr(fast, curve), getattr(slow, curve), rtol=1e-4, atol=1e-5)
        for curve in ("train_acc", "val_acc", "monitor_acc"):
            np.testing.assert_allclose(getattr(fast, curve), getattr(slow, curve), atol=1.5 / 30)  # a tie may flip
        assert fast.best_epoch == slow.best_epoch
        np.testing.assert_allclose([fast.final_test_loss, fast.best_test_loss], [slow.final_test_loss, slow.best_test_loss], rtol=1e-4)


@pytest.mark.parametrize("name", CASES)
def test_stacked_scores_and_initial_evaluation_equal_the_reference(name):
    make, shape = CASES[name]
    family = make(True)
    engine = engine_for(family)
    data = engine.prepare(splits(shape))
    parent = family.init(2)
    masks = family.node_space.random_masks(0.5, 5, torch.Generator().manual_seed(4))
    for score in ("loss", "accuracy"):
        fast = engine.score(parent, masks, data.x_val, data.y_val, score)
        slow = engine.score(parent, masks, data.x_val, data.y_val, score, reference=True)
        torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    loss, _ = engine.evaluate(engine.stack([(parent, m) for m in masks]), data.x_val, data.y_val)
    torch.testing.assert_close(loss, engine.score(parent, masks, data.x_val, data.y_val, "loss"))


def test_a_network_trains_the_same_whatever_else_is_in_its_group():
    family, shape = CASES["cnn1d"][0](False), (20,)
    engine = engine_for(family)
    data = engine.prepare(splits(shape))
    settings = TrainSettings(epochs=2, batch_size=32, optimizer="adam", lr=1e-2)
    parent = family.init(0)
    masks = family.node_space.random_masks(0.5, 3, torch.Generator().manual_seed(1))
    alone = engine.train(engine.stack([(parent, masks[1])]), [5], data, settings)[0]
    together = engine.train(engine.stack([(parent, m) for m in masks]), [3, 5, 4], data, settings)[1]
    assert alone.val_loss == together.val_loss and alone.final_test_loss == together.final_test_loss


def test_divergence_is_detected():
    family, shape = CASES["cnn1d"][0](False), (20,)
    engine = engine_for(family)
    data = engine.prepare(splits(shape))
    data = dataclasses.replace(data, x_train=data.x_train * 1e30)
    result = engine.train(engine.stack([(family.init(0), family.node_space.full_mask())]), [0], data,
                          TrainSettings(epochs=3, batch_size=32, optimizer="sgd", lr=10.0))[0]
    assert result.diverged and np.isnan(result.final_test_acc)
