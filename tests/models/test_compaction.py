import pytest
import torch

from sparsebench.engine.reference import MaskedMLP
from sparsebench.models import MLPSpec, NodeMask, compact, expand, gather_stacked, init_parent, random_masks, to_module

SPEC = MLPSpec(12, (16, 10), 5)


def _mask(sparsity=0.5, seed=0):
    return random_masks(SPEC.hidden, sparsity, 1, torch.Generator().manual_seed(seed))[0]


def test_subnetwork_outputs_equal_masked_parent_outputs():
    parent = init_parent(SPEC, seed=3)
    mask = _mask()
    x = torch.randn(7, 12, generator=torch.Generator().manual_seed(1))
    masked = MaskedMLP(parent, mask)(x)
    sub = compact(parent, mask)
    compacted = to_module(sub)(x)
    torch.testing.assert_close(compacted, masked, rtol=1e-5, atol=1e-6)


def test_subnetwork_gradients_equal_masked_parent_gradients_on_kept_weights():
    parent = init_parent(SPEC, seed=4)
    mask = _mask(0.6, seed=2)
    x = torch.randn(9, 12, generator=torch.Generator().manual_seed(5))
    y = torch.randint(0, 5, (9,), generator=torch.Generator().manual_seed(6))
    model = MaskedMLP(parent, mask)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    sub = to_module(compact(parent, mask))
    torch.nn.functional.cross_entropy(sub(x), y).backward()
    layers = compact(parent, mask)
    full_grads = [type(l)(lin.weight.grad * getattr(model, f"weight_mask_{i}"), lin.bias.grad) for i, (l, lin) in enumerate(zip(layers, model.linears))]
    compact_grads = compact(full_grads, mask)
    for got, want in zip([m for m in sub if isinstance(m, torch.nn.Linear)], compact_grads):
        torch.testing.assert_close(got.weight.grad, want.weight, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(got.bias.grad, want.bias, rtol=1e-5, atol=1e-7)


def test_subnetwork_inherits_parent_weights_without_reinitialization():
    parent = init_parent(SPEC, seed=0)
    mask = NodeMask.from_indices([[1, 4], [0, 9]], SPEC.hidden)
    sub = compact(parent, mask)
    assert torch.equal(sub[0].weight, parent[0].weight[[1, 4]])
    assert torch.equal(sub[1].weight, parent[1].weight[[0, 9]][:, [1, 4]])
    assert torch.equal(sub[2].weight, parent[2].weight[:, [0, 9]])


def test_expand_restores_masked_full_width_weights():
    parent = init_parent(SPEC, seed=1)
    mask = _mask(0.7)
    full = expand(compact(parent, mask), mask, SPEC.widths)
    model = MaskedMLP(parent, mask)
    for got, want in zip(full, model.effective_layers()):
        torch.testing.assert_close(got.weight, want.weight)
        torch.testing.assert_close(got.bias, want.bias)


def test_gather_stacked_equals_compacting_one_by_one():
    parent = init_parent(SPEC, seed=2)
    masks = random_masks(SPEC.hidden, 0.5, 4, torch.Generator().manual_seed(0))
    stacked = gather_stacked(parent, masks)
    for i, m in enumerate(masks):
        for s, c in zip(stacked, compact(parent, m)):
            assert torch.equal(s.weight[i], c.weight) and torch.equal(s.bias[i], c.bias)


def test_masks_of_different_sizes_are_not_stacked():
    parent = init_parent(MLPSpec(4, (6, 6), 3), seed=0)
    small = NodeMask.from_indices([[0], [1]], (6, 6))
    large = NodeMask.from_indices([[1, 2], [0]], (6, 6))
    with pytest.raises(ValueError, match="same number of nodes"):
        gather_stacked(parent, [small, large])
