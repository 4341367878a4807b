"""The stacked conv engine: each strategy equals the masked reference, and a network's numbers do not depend on its stack."""

import numpy as np
import pytest
import torch

from sparsebench.data.registry import DatasetSplits
from sparsebench.engine import conv_stacked
from sparsebench.engine.common import TrainSettings
from sparsebench.engine.conv import EVAL_CHUNK, masked_module
from sparsebench.engine.families import engine_for
from sparsebench.engine.reference import _evaluate, train_module
from sparsebench.models.cnn import CNN
from sparsebench.models.cnn1d import CNN1d
from sparsebench.models.conv import layers_of

from .test_conv_engine import splits

#: (family factory, example shape, strategies that apply)
CASES = {
    "cnn1d": (lambda bn: CNN1d(1, (20,), (8, 8, 8), (6,), 3, batchnorm=bn), (20,), ("loop", "loop_first", "unfold")),
    "cnn": (lambda bn: CNN(2, (7, 7), (6, 6), (8,), 3, batchnorm=bn), (2, 7, 7), ("loop", "loop_first", "unfold")),  # odd: pooling drops an edge
    # (the engine never chooses unfold or channels first in 2-D, slower there; they are held to the reference all the same)
    # one-channel images (MNIST-like): oneDNN answers channels first, and the loop turns its output channels last
    "cnn-1ch": (lambda bn: CNN(1, (7, 7), (6, 6), (8,), 3, batchnorm=bn), (1, 7, 7), ("loop",)),
}
STRATEGY_CASES = [(name, s) for name, (_, _, strategies) in CASES.items() for s in strategies]


def setup(name, bn, sparsity=0.5, count=3):
    make, shape, _ = CASES[name]
    family = make(bn)
    engine = engine_for(family)
    data = engine.prepare(splits(shape))
    parent = family.init(0)
    masks = family.node_space.random_masks(sparsity, count, torch.Generator().manual_seed(1))
    return family, engine, data, parent, masks


def train(family, engine, networks, seeds, data, settings, strategy):
    return conv_stacked.train_stacked(family, engine.stack(networks), seeds, data, settings, strategy=strategy)


def assert_identical(a, b):
    for field in ("train_loss", "train_acc", "val_loss", "val_acc", "monitor_loss", "monitor_acc", "stop_epoch",
                  "best_epoch", "diverged_epoch"):
        assert getattr(a, field) == getattr(b, field), field
    assert np.array_equal([a.final_test_loss, a.best_test_loss, a.final_test_acc, a.best_test_acc],
                          [b.final_test_loss, b.best_test_loss, b.final_test_acc, b.best_test_acc], equal_nan=True)
    for la, lb in zip(a.final_weights, b.final_weights):
        for ta, tb in zip(la, lb):
            assert (ta is None and tb is None) or torch.equal(ta, tb)


@pytest.mark.parametrize("name,strategy", STRATEGY_CASES)
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_network_trains_bit_for_bit_the_same_in_a_stack_of_one_and_of_three(threads, name, strategy, optimizer):
    family, engine, data, parent, masks = setup(name, bn=True)
    # Patience 1 over 4 epochs: networks stop at different epochs, their slots stay frozen in the stack.
    settings = TrainSettings(epochs=4, batch_size=32, optimizer=optimizer, lr=0.02 if optimizer == "adam" else 0.1,
                             weight_decay=1e-4, patience=1)
    other_parent = family.init(7)
    alone = train(family, engine, [(parent, masks[1])], [5], data, settings, strategy)[0]
    together = train(family, engine, [(other_parent, masks[0]), (parent, masks[1]), (parent, masks[2])], [3, 5, 5],
                     data, settings, strategy)
    assert_identical(alone, together[1])


@pytest.mark.parametrize("name,strategy", STRATEGY_CASES)
@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize("optimizer,lr", [("adam", 1e-2), ("sgd", 0.05)])
def test_stacked_training_equals_the_masked_reference(name, strategy, bn, optimizer, lr):
    family, engine, data, parent, masks = setup(name, bn, count=2)
    settings = TrainSettings(epochs=4, batch_size=32, optimizer=optimizer, lr=lr, weight_decay=1e-4, patience=2)
    fast_results = train(family, engine, [(parent, m) for m in masks], [0, 1], data, settings, strategy)
    for mask, seed, fast in zip(masks, [0, 1], fast_results):
        model = masked_module(family, parent, mask)
        slow = train_module(model, seed, data, settings, EVAL_CHUNK)
        for curve in ("train_loss", "val_loss", "monitor_loss"):
            np.testing.assert_allclose(getattr(fast, curve), getattr(slow, curve), rtol=1e-4, atol=1e-5)
        for curve in ("train_acc", "val_acc", "monitor_acc"):
            np.testing.assert_allclose(getattr(fast, curve), getattr(slow, curve), atol=1.5 / 30)  # a tie may flip
        assert (fast.best_epoch, fast.stop_epoch) == (slow.best_epoch, slow.stop_epoch)
        np.testing.assert_allclose([fast.final_test_loss, fast.best_test_loss, fast.final_test_acc, fast.best_test_acc],
                                   [slow.final_test_loss, slow.best_test_loss, slow.final_test_acc, slow.best_test_acc],
                                   rtol=1e-4, atol=1e-5)
        # The reference's final weights, compacted (its removed units never moved: their gradients are zero).
        # A convolution's bias before BatchNorm is left out: BatchNorm subtracts it again, so its gradient is
        # zero up to rounding, and Adam turns that rounding into steps of size lr in either engine.
        for got, want in zip(fast.final_weights, family.compact(layers_of(model, lambda p: p.detach()), mask)):
            for field, g, w in zip(got._fields, got, want):
                if w is not None and not (field == "bias" and got.bn_weight is not None):
                    torch.testing.assert_close(g, w, rtol=1e-3, atol=1e-4)  # Adam magnifies rounding where gradients are ~0


@pytest.mark.parametrize("name,strategy", STRATEGY_CASES)
def test_stacked_scores_equal_one_at_a_time_scores(name, strategy, monkeypatch):
    family, engine, data, parent, masks = setup(name, bn=True, count=conv_stacked.SCORE_CHUNK + 3)  # two chunks
    monkeypatch.setattr(conv_stacked, "choose_strategy", lambda *a, **k: strategy)
    for score in ("loss", "accuracy"):
        stacked = engine.score(parent, masks, data.x_val, data.y_val, score)
        alone = [_evaluate(family.to_module(parent, m), data.x_val, data.y_val, EVAL_CHUNK) for m in masks]
        torch.testing.assert_close(stacked, torch.tensor([a[0] if score == "loss" else a[1] for a in alone]),
                                   rtol=1e-5, atol=1e-6)
        # A candidate's score does not depend on the chunk it is scored in.
        assert torch.equal(engine.score(parent, masks[3:4], data.x_val, data.y_val, score), stacked[3:4])


@pytest.mark.parametrize("name,strategy", STRATEGY_CASES)
def test_a_diverging_network_is_detected_and_leaves_its_stack_untouched(name, strategy):
    family, engine, data, parent, masks = setup(name, bn=False)
    settings = TrainSettings(epochs=3, batch_size=32, optimizer="sgd", lr=0.05)
    huge = [l._replace(weight=l.weight * 1e12) for l in parent]  # its activations overflow to inf, its loss is NaN
    results = train(family, engine, [(parent, masks[0]), (huge, masks[1])], [0, 0], data, settings, strategy)
    assert results[1].diverged_epoch == 1 and np.isnan(results[1].final_test_acc) and results[1].best_epoch == 0
    assert not results[0].diverged
    alone = train(family, engine, [(parent, masks[0])], [0], data, settings, strategy)[0]
    assert_identical(results[0], alone)


def _strategies(family, sparsity):
    mask = family.node_space.random_masks(sparsity, 1, torch.Generator().manual_seed(0))[0]
    layers = conv_stacked.stack_layers([family.compact(family.init(0), mask)])
    return conv_stacked.choose_strategy(family, layers), conv_stacked.choose_strategy(family, layers, training=False)


def test_the_strategy_follows_the_kept_channels():
    thin = CNN1d(1, (40,), (128, 128, 128), (), 10)
    # (training, evaluation): unfold trains thin 1-D networks; evaluation loops, channels first below 16 channels.
    assert _strategies(thin, 0.98) == ("unfold", "loop_first")  # 3 channels
    assert _strategies(thin, 0.9) == ("unfold", "loop_first")  # 13
    assert _strategies(thin, 0.8) == ("unfold", "loop")  # 26
    assert _strategies(thin, 0.5) == ("loop", "loop")  # 64
    image = CNN(3, (8, 8), (64, 64), (), 10)
    assert _strategies(image, 0.98) == ("loop_first", "loop_first")  # 2-D: the loop; channels first below 4 channels
    assert _strategies(image, 0.9) == ("loop", "loop")
    assert _strategies(image, 0.5) == ("loop", "loop")


def test_off_the_cpu_thin_1d_networks_train_with_the_per_network_loop_not_unfold():
    """unfold's stack independence rests on MKL's batched products; on another device (cuBLAS) the loop is used."""
    thin = CNN1d(1, (40,), (128, 128, 128), (), 10)
    mask = thin.node_space.random_masks(0.9, 1, torch.Generator().manual_seed(0))[0]
    layers = conv_stacked.stack_layers([thin.compact(thin.init(0), mask)])
    elsewhere = [conv_stacked.ConvLayer(*(None if t is None else t.to("meta") for t in layer)) for layer in layers]
    assert conv_stacked.choose_strategy(thin, layers) == "unfold"
    assert conv_stacked.choose_strategy(thin, elsewhere) == "loop_first"


#: (a, b, b transposed): shapes of this engine's products where torch.bmm of a stack of one gave other bits than
#: in a larger stack, with 2 threads (torch 2.13, MKL strict mode, AMD EPYC)
PRODUCT_SHAPES = [((4, 5), (5, 20), False), ((6, 6), (6, 20), False), ((5, 80), (1, 80), True), ((4, 32), (6, 32), True),
                  ((1, 640), (640, 1), False), ((13, 66), (66, 1280), False)]


def test_a_stacked_product_gives_each_network_the_bits_it_gets_in_any_stack(threads):
    # torch.bmm of a stack of one splits its one product among the threads; a larger stack multiplies each
    # matrix on one thread: with 2 threads the bits differ, and stacked_bmm multiplies a stack of one as two.
    g = torch.Generator().manual_seed(0)
    for a_shape, b_shape, transposed in PRODUCT_SHAPES:
        a, b = torch.randn(16, *a_shape, generator=g), torch.randn(16, *b_shape, generator=g)

        def product(i, j):
            return conv_stacked.stacked_bmm(a[i:j], b[i:j].transpose(1, 2) if transposed else b[i:j])

        in_three = product(4, 7)[1]
        for got in (product(5, 6)[0], product(5, 7)[0], product(0, 16)[5]):
            assert torch.equal(got, in_three), (a_shape, b_shape, transposed)
