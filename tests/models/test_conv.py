"""Convolutional parents: a masked full-width network computes exactly what the compacted one computes."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsebench.engine.conv import masked_module
from sparsebench.errors import ConfigError
from sparsebench.models.cnn import CNN
from sparsebench.models.cnn1d import CNN1d
from sparsebench.models.conv import ConvLayer, layers_of, mask_multipliers
from sparsebench.models.registry import family_for

FAMILIES = {
    "cnn1d": lambda bn: CNN1d(2, (24,), (8, 6, 5), (7,), 4, batchnorm=bn),
    "cnn": lambda bn: CNN(3, (8, 8), (6, 5, 4), (7, 6), 5, batchnorm=bn),
}


def example(family, n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, family.in_channels, *family.spatial, generator=g), torch.randint(0, family.n_classes, (n,), generator=g)


def with_random_batchnorm(family, weights, seed=1):
    """BatchNorm scales and shifts away from their initial 1 and 0, shifts mostly positive (so a leak shows after ReLU)."""
    g = torch.Generator().manual_seed(seed)
    return [ConvLayer(l.weight, l.bias, *(None if t is None else torch.rand(t.shape, generator=g) + 0.5 for t in l[2:]))
            for l in weights]


def a_mask(family, sparsity=0.5, seed=3):
    return family.node_space.random_masks(sparsity, 1, torch.Generator().manual_seed(seed))[0]


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize("training", [True, False])
def test_compacted_outputs_and_gradients_equal_the_masked_full_width_networks(name, bn, training):
    family = FAMILIES[name](bn)
    weights = with_random_batchnorm(family, family.init(0))
    mask = a_mask(family)
    masked, compact = masked_module(family, weights, mask), family.to_module(weights, mask)
    if not training:  # running statistics away from 0 and 1, as after training
        for a, b in zip(masked.modules(), compact.modules()):
            if isinstance(a, nn.modules.batchnorm._BatchNorm):
                a.running_mean.uniform_(-1, 1)
                a.running_var.uniform_(0.5, 2)
        compact_stats = family.compact([ConvLayer(l.weight, l.bias, *_stats(masked, i)) for i, l in enumerate(weights)], mask)
        _set_stats(compact, compact_stats)
    masked.train(training), compact.train(training)
    x, y = example(family)
    out_masked, out_compact = masked(x), compact(x)
    torch.testing.assert_close(out_compact, out_masked, rtol=1e-5, atol=1e-6)
    F.cross_entropy(out_masked, y).backward()
    F.cross_entropy(out_compact, y).backward()
    # The gradient of each kept parameter is the same; removed ones get none.
    grads = layers_of(masked, lambda p: p.grad)
    for kept, full, zeros in zip(layers_of(compact, lambda p: p.grad), family.compact(grads, mask), mask_multipliers(family, mask)):
        for a, b in zip(kept, full):
            if a is not None:
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    for full, multiplier in zip(grads, mask_multipliers(family, mask)):
        for g, m in zip(full, multiplier):
            if g is not None:
                assert torch.all(g[m == 0] == 0)
    if training and bn:  # BatchNorm's running statistics of the kept channels moved the same way
        for i, stats in enumerate(family.compact([ConvLayer(l.weight, l.bias, *_stats(masked, i)) for i, l in enumerate(weights)], mask)):
            if stats.bn_weight is not None:
                torch.testing.assert_close(stats.bn_weight, _stats(compact, i)[0])


def _batchnorms(model):
    return [m for m in model if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _stats(model, layer):
    """Running mean and variance of the BatchNorm after the ``layer``-th convolution (None, None if it has none)."""
    norms = _batchnorms(model)
    return (norms[layer].running_mean, norms[layer].running_var) if layer < len(norms) else (None, None)


def _set_stats(model, layers):
    for bn, layer in zip(_batchnorms(model), layers):
        bn.running_mean.copy_(layer.bn_weight)
        bn.running_var.copy_(layer.bn_bias)


@pytest.mark.parametrize("name", FAMILIES)
def test_a_removed_channel_feeds_exactly_zero_to_the_next_layer(name):
    """The trap: masking a filter alone leaves its bias and BatchNorm shift, a constant fed to the next layer."""
    family = FAMILIES[name](True)
    weights = with_random_batchnorm(family, family.init(0))
    mask = a_mask(family)
    model = masked_module(family, weights, mask)
    seen = []
    for module in model:
        if isinstance(module, nn.ReLU):
            module.register_forward_hook(lambda m, i, out: seen.append(out))
    model(example(family)[0])
    for layer, (out, kept, width) in enumerate(zip(seen, mask.kept, mask.widths)):
        removed = [c for c in range(width) if c not in kept]
        assert torch.all(out[:, removed] == 0)
        if layer < len(family.channels):  # a kept channel's positive shift shows after the ReLU
            assert torch.any(out[:, list(kept)] != 0)
    # What the test catches: the same network with its BatchNorm shift left unmasked leaks.
    leaky = family.to_module(weights)
    first_conv = leaky[0]
    nn.utils.prune.custom_from_mask(first_conv, "weight", mask_multipliers(family, mask)[0].weight)
    nn.utils.prune.custom_from_mask(first_conv, "bias", mask_multipliers(family, mask)[0].bias)
    leaked = []
    leaky[2].register_forward_hook(lambda m, i, out: leaked.append(out))  # the first ReLU (conv, bn, relu)
    leaky(example(family)[0])
    removed = [c for c in range(mask.widths[0]) if c not in mask.kept[0]]
    assert torch.any(leaked[0][:, removed] != 0)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("bn", [False, True])
def test_expand_puts_the_compact_weights_back_at_full_width(name, bn):
    family = FAMILIES[name](bn)
    weights = with_random_batchnorm(family, family.init(0))
    mask = a_mask(family, 0.6)
    back = family.expand(family.compact(weights, mask), mask)
    for full, original, multiplier in zip(back, weights, mask_multipliers(family, mask)):
        for a, b, m in zip(full, original, multiplier):
            if a is not None:
                assert torch.equal(a, b * m)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("bn", [False, True])
def test_parameter_count_is_the_compact_networks(name, bn):
    family = FAMILIES[name](bn)
    mask = a_mask(family, 0.7)
    count = lambda model: sum(p.numel() for p in model.parameters())
    assert family.count_params(mask) == count(family.to_module(family.init(0), mask))
    assert family.count_params() == count(family.to_module(family.init(0)))
    assert 0 < family.weight_sparsity(mask) < 1 and 0 < family.flop_reduction(mask) < 1


def test_flops_count_each_convolutions_positions():
    # conv1: 4 channels x 20 positions x (2*1*5 + 1); conv2: 3 x 10 x (2*4*5 + 1); head: 2 x (2*3*10 + 1)
    family = CNN1d(1, (40,), (4, 3), (), 2)
    assert family.flops() == 4 * 20 * 11 + 3 * 10 * 41 + 2 * 61
    assert family.flops((2, 3)) == 2 * 20 * 11 + 3 * 10 * 21 + 2 * 61
    # 2-D: conv 3x3, padding 1 keeps 4x4, then pooled to 2x2 after the second convolution
    image = CNN(1, (4, 4), (2, 2), (3,), 2)
    assert image.flops() == 16 * 2 * (2 * 9 + 1) + 16 * 2 * (2 * 18 + 1) + 3 * (2 * 8 + 1) + 2 * (2 * 3 + 1)


def test_the_families_take_the_shapes_they_say_and_refuse_others_in_one_line():
    assert family_for({"parent": "cnn1d", "hidden": [8]}, (40,), 10).in_channels == 1  # MNIST-1D: one channel
    assert family_for({"parent": "cnn1d", "hidden": [8]}, (2, 40), 10).in_channels == 2
    assert family_for({"parent": "cnn", "hidden": [8], "fc": []}, (3, 8, 8), 10).spatial == (8, 8)
    with pytest.raises(ConfigError, match=r"^parent 'cnn': got data of shape \(N, 40\), tabular \(N, F\); allowed: images"):
        family_for({"parent": "cnn", "hidden": [8]}, (40,), 10)
    with pytest.raises(ConfigError, match=r"^parent 'cnn': 4 convolutions shrink examples of size 3x3 to nothing"):
        family_for({"parent": "cnn", "hidden": [2, 2, 2, 2]}, (1, 3, 3), 10)
