"""The node-level methods: each score against an independent computation on a tiny network, exact kept counts,
determinism, and one-line errors for bad options."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sparsebench.errors import ConfigError
from sparsebench.methods.fisher import Fisher
from sparsebench.methods.grasp import Grasp
from sparsebench.methods.magnitude import Magnitude
from sparsebench.methods.node_scores import highest
from sparsebench.methods.registry import get_method, method_names
from sparsebench.methods.snip import Snip
from sparsebench.methods.synflow import SynFlow, linearized, synaptic_flow
from sparsebench.methods.taylor import Taylor
from sparsebench.models.mask import NodeMask

NODE_METHODS = ["magnitude", "snip", "grasp", "synflow", "taylor", "fisher"]


def _mlp_by_hand(layers, x, gates):
    """The MLP written out: relu(x W^T + b), times its gate, layer by layer."""
    h = x
    for (w, b), g in zip(layers[:-1], gates):
        h = torch.relu(F.linear(h, w, b)) * g
    return F.linear(h, layers[-1].weight, layers[-1].bias)


def _cnn1d_by_hand(family, layers, x, gates):
    """The cnn1d (BatchNorm in training mode, an FC layer) written out, a gate per channel after the activation."""
    n_conv = len(family.channels)
    h = x
    for i, (layer, g) in enumerate(zip(layers, gates)):
        if i < n_conv:
            h = F.conv1d(h, layer.weight, layer.bias, stride=family.stride, padding=family.padding)
            if layer.bn_weight is not None:
                h = F.batch_norm(h, None, None, layer.bn_weight, layer.bn_bias, training=True)
            h = torch.relu(h) * g[None, :, None]
        else:
            h = torch.relu(F.linear(h.flatten(1), layer.weight, layer.bias)) * g
    return F.linear(h.flatten(1), layers[-1].weight, layers[-1].bias)


def _hand_gate_gradient(ctx, forward):
    gates = [torch.ones(w, requires_grad=True) for w in ctx.node_space.widths]
    loss = F.cross_entropy(forward(ctx.x_train, gates), ctx.y_train)
    return torch.autograd.grad(loss, gates)


# -- the context's per-node quantities -----------------------------------------


def test_gate_gradient_equals_autograd_on_a_hand_gated_mlp(make_context):
    ctx = make_context("mlp")
    expected = _hand_gate_gradient(ctx, lambda x, g: _mlp_by_hand(ctx.parent.weights, x, g))
    # one minibatch of the whole split: its order does not change the mean loss
    got = make_context("mlp").gate_gradients(batches=1, batch_size=len(ctx.x_train))
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-7)
        assert e.abs().max() > 0


def test_gate_gradient_equals_autograd_on_a_hand_gated_cnn1d_with_batchnorm(make_context, families):
    family = families["cnn1d-bn-fc"][0]
    ctx = make_context("cnn1d-bn-fc")
    expected = _hand_gate_gradient(ctx, lambda x, g: _cnn1d_by_hand(family, ctx.parent.weights, x, g))
    got = ctx.gate_gradients(batches=1, batch_size=len(ctx.x_train))
    assert [tuple(g.shape) for g in got] == [(6,), (5,), (7,)]
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)


def test_gate_reductions_agree_on_the_same_minibatches(make_context):
    summed = make_context("mlp").gate_gradients(batches=3, batch_size=16, reduce="sum")
    per_batch = make_context("mlp").gate_gradients(batches=3, batch_size=16, reduce="batch")
    per_example = make_context("mlp").gate_gradients(batches=3, batch_size=16, reduce="example")
    for s, b, e in zip(summed, per_batch, per_example):
        assert b.shape[0] == 3 and e.shape[0] == 48
        torch.testing.assert_close(b.sum(0), s)
        torch.testing.assert_close(e.view(3, 16, -1).mean(1), b, rtol=1e-4, atol=1e-6)


def test_per_example_gate_gradient_is_the_gradient_of_that_example_alone(make_context):
    ctx = make_context("mlp", n=12)
    got = ctx.gate_gradients(batches=1, batch_size=12, reduce="example")
    order = make_context("mlp", n=12).minibatches(1, 12)[0][0]  # the same draw: which example is each row
    for row, x in enumerate(order):
        i = int((ctx.x_train == x).all(1).nonzero())
        gates = [torch.ones(w, requires_grad=True) for w in ctx.node_space.widths]
        loss = F.cross_entropy(_mlp_by_hand(ctx.parent.weights, ctx.x_train[i:i + 1], gates), ctx.y_train[i:i + 1])
        for layer, e in enumerate(torch.autograd.grad(loss, gates)):
            torch.testing.assert_close(got[layer][row], e, rtol=1e-4, atol=1e-6)


def test_minibatches_are_deterministic_and_read_only_the_training_split(make_context):
    a, b = make_context("mlp").minibatches(4, 20), make_context("mlp").minibatches(4, 20)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    ctx = make_context("mlp")
    seen = torch.cat([x for x, _ in ctx.minibatches(2, 24)])
    assert len(torch.unique(seen, dim=0)) == 48  # one pass: each training example once
    assert make_context("mlp", seed=1).minibatches(1, 20)[0][0].shape == (20, 12)


def test_activations_are_mean_node_outputs(make_context):
    ctx = make_context("mlp")
    h1 = torch.relu(F.linear(ctx.x_train, *ctx.parent.weights[0]))
    h2 = torch.relu(F.linear(h1, *ctx.parent.weights[1]))
    got = ctx.activations(batches=1, batch_size=48)
    torch.testing.assert_close(got[0], h1.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[1], h2.mean(0), rtol=1e-5, atol=1e-6)


def test_outgoing_weights_are_what_reads_each_node(families):
    family = families["cnn1d-bn-fc"][0]  # conv 6 -> conv 5 -> (positions 3) fc 7 -> head 3
    w = family.init(0)
    out = family.outgoing_weights(w)
    assert [tuple(o.shape) for o in out] == [(6, 5 * 5), (5, 7 * 3), (7, 3)]
    torch.testing.assert_close(out[0][2], w[1].weight[:, 2].flatten())
    assert family.positions == 3
    torch.testing.assert_close(out[1][4], w[2].weight[:, 4 * 3:5 * 3].flatten())
    torch.testing.assert_close(out[2][1], w[3].weight[:, 1])
    mlp = families["mlp"][0]
    torch.testing.assert_close(mlp.outgoing_weights(mlp.init(0))[0][3], mlp.init(0)[1].weight[:, 3])


@pytest.mark.parametrize("name", ["mlp", "cnn1d-bn-fc", "cnn"])
def test_a_gate_at_zero_is_the_node_removed(name, make_context, families):
    family = families[name][0]
    ctx = make_context(name)
    mask = ctx.sample(1)[0]
    net = ctx.gated_network()
    with torch.no_grad():
        for gate, keep in zip(net.gates, _bools(mask)):
            gate.copy_(keep.float())
        compact = family.to_module(ctx.parent.weights, mask)
        torch.testing.assert_close(net.module(ctx.x_train), compact(ctx.x_train), rtol=1e-4, atol=1e-5)


def _bools(mask: NodeMask) -> list[torch.Tensor]:
    return [torch.zeros(w, dtype=torch.bool).index_fill_(0, i, True) for w, i in zip(mask.widths, mask.index_tensors())]


# -- each method's score against an independent computation ---------------------


def test_magnitude_scores_incoming_norms_and_optionally_outgoing(make_context):
    ctx = make_context("cnn1d")
    filters = ctx.parent.weights[0].weight  # (6, 1, 5)
    torch.testing.assert_close(Magnitude().node_scores(ctx)[0], filters.abs().sum((1, 2)).double())
    following = ctx.parent.weights[1].weight  # (5, 6, 5): what reads conv1's channels
    both = Magnitude(norm="l2", include_outgoing=True).node_scores(ctx)[0]
    torch.testing.assert_close(both, (filters.pow(2).sum((1, 2)).sqrt() + following.pow(2).sum((0, 2)).sqrt()).double())


def test_snip_and_taylor_are_absolute_gate_gradients(make_context):
    ctx = make_context("mlp")
    expected = _hand_gate_gradient(ctx, lambda x, g: _mlp_by_hand(ctx.parent.weights, x, g))
    for method in (Snip(batch_size=48), Taylor(batches=1, batch_size=48)):
        for e, s in zip(expected, method.node_scores(make_context("mlp"))):
            torch.testing.assert_close(s, e.abs(), rtol=1e-5, atol=1e-7)


def test_taylor_sums_the_gradient_of_every_minibatch_before_the_absolute_value(make_context):
    per_batch = make_context("mlp").gate_gradients(batches=4, batch_size=12, reduce="batch")
    got = Taylor(batches=4, batch_size=12).node_scores(make_context("mlp"))
    for b, t in zip(per_batch, got):
        torch.testing.assert_close(t, b.sum(0).abs())
        assert not torch.allclose(t, b.abs().sum(0))  # signs cancel across minibatches


def test_fisher_is_half_the_mean_squared_per_example_gradient(make_context):
    ctx = make_context("mlp", n=10)
    expected = [torch.zeros(w, dtype=torch.float64) for w in ctx.node_space.widths]
    for i in range(10):
        gates = [torch.ones(w, requires_grad=True) for w in ctx.node_space.widths]
        loss = F.cross_entropy(_mlp_by_hand(ctx.parent.weights, ctx.x_train[i:i + 1], gates), ctx.y_train[i:i + 1])
        for total, g in zip(expected, torch.autograd.grad(loss, gates)):
            total += g.double() ** 2 / (2 * 10)
    for e, f in zip(expected, Fisher(batches=1, batch_size=10).node_scores(ctx)):
        torch.testing.assert_close(f, e, rtol=1e-4, atol=1e-10)


def test_grasp_is_the_hessian_gradient_product_of_the_gates(make_context):
    ctx = make_context("mlp")
    weights, t = ctx.parent.weights, 200.0

    def loss(*gates):
        return F.cross_entropy(_mlp_by_hand(weights, ctx.x_train, list(gates)) / t, ctx.y_train)

    ones = tuple(torch.ones(w) for w in ctx.node_space.widths)
    g = torch.autograd.functional.jacobian(loss, ones)
    _, hg = torch.autograd.functional.hvp(loss, ones, g)
    got = Grasp(batch_size=48).node_scores(make_context("mlp"))
    for e, s in zip(hg, got):
        torch.testing.assert_close(s, e, rtol=1e-3, atol=1e-12)
        assert e.abs().max() > 0


def _abs_weight_flow(layers, x, conv=None):
    """Per layer, ``|W| * dR/d|W|`` with R the summed output of the linearized network, by hand (float64)."""
    ws = [l.weight.double().abs().requires_grad_() for l in layers]
    h = x
    for i, w in enumerate(ws):
        if conv is not None and i < conv.n:
            h = F.conv1d(h, w, stride=conv.stride, padding=conv.padding)
        else:
            h = F.linear(h.flatten(1), w)
        h = torch.relu(h)
    grads = torch.autograd.grad(h.sum(), ws)
    return [w.detach() * g for w, g in zip(ws, grads)]


@pytest.mark.parametrize("name", ["mlp", "cnn1d"])
def test_synaptic_flow_is_conserved_through_every_node(name, families):
    family = families[name][0]
    weights = [l._replace(bias=torch.zeros_like(l.bias)) for l in family.init(0)]  # no bias: no flow enters
    ones = torch.ones((1, *families[name][1]), dtype=torch.float64)
    conv = None
    if name == "cnn1d":
        conv = type("C", (), {"n": len(family.channels), "stride": family.stride, "padding": family.padding})
    by_hand = _abs_weight_flow(weights, ones, conv)
    got = synaptic_flow(linearized(family.gated_module(weights)), ones)
    for layer, node_scores in enumerate(got):
        incoming = by_hand[layer].flatten(1).sum(1)
        following = by_hand[layer + 1]
        if following.dim() == 2 and layer + 1 == len(got) and name == "cnn1d":  # last conv -> head: blocks of positions
            outgoing = following.view(following.shape[0], len(incoming), -1).sum((0, 2))
        else:
            outgoing = following.transpose(0, 1).flatten(1).sum(1)
        torch.testing.assert_close(node_scores, incoming, rtol=1e-9, atol=0)
        torch.testing.assert_close(incoming, outgoing, rtol=1e-9, atol=0)  # conservation
        assert incoming.min() > 0


def test_synflow_one_round_keeps_the_highest_flow(make_context):
    ctx = make_context("mlp", sparsity=0.5)
    flow = synaptic_flow(linearized(ctx.gated_network()), torch.ones((1, 12), dtype=torch.float64))
    mask = SynFlow(rounds=1).select(make_context("mlp", sparsity=0.5)).mask
    assert mask == NodeMask.from_indices([highest(f, k) for f, k in zip(flow, ctx.kept())], ctx.node_space.widths)


def test_synflow_rounds_change_the_choice_and_read_no_data(make_context):
    ctx = make_context("mlp", sparsity=0.8)
    ctx.x_train = torch.full_like(ctx.x_train, float("nan"))  # data-free: only the shape is read
    iterative = SynFlow(rounds=20).select(ctx).mask
    assert iterative.kept_per_layer == ctx.kept()
    assert iterative != SynFlow(rounds=1).select(make_context("mlp", sparsity=0.8)).mask


# -- every method: counts, determinism, options ----------------------------------


@pytest.mark.parametrize("family", ["mlp", "cnn1d", "cnn1d-bn-fc", "cnn"])
@pytest.mark.parametrize("method", NODE_METHODS)
def test_every_method_keeps_exactly_the_kept_counts_of_random(method, family, make_context):
    for sparsity in (0.5, 0.9):
        ctx = make_context(family, sparsity=sparsity)
        selection = get_method(method)().select(ctx)
        assert selection.mask.kept_per_layer == ctx.kept() == get_method("random")().select(
            make_context(family, sparsity=sparsity)).mask.kept_per_layer


@pytest.mark.parametrize("method", NODE_METHODS)
def test_every_method_is_deterministic_and_follows_the_parent(method, make_context):
    ctx = make_context("cnn1d-bn-fc", sparsity=0.5)
    before = [t.clone() for layer in ctx.parent.weights for t in layer if t is not None]
    a = get_method(method)().select(ctx).mask
    b = get_method(method)().select(make_context("cnn1d-bn-fc", sparsity=0.5)).mask
    assert a == b
    after = [t for layer in ctx.parent.weights for t in layer if t is not None]
    assert all(torch.equal(x, y) for x, y in zip(before, after))  # the parent is read, never changed
    masks = {get_method(method)().select(make_context("mlp", seed=s)).mask.to_bytes() for s in range(3)}
    assert len(masks) == 3  # the parent's initialization decides, not a fixed pattern


def test_ties_go_to_the_lower_index_and_nan_ranks_lowest():
    assert highest(torch.tensor([0.0, 0.0, 0.0, 0.0]), 2) == [0, 1]
    assert highest(torch.tensor([float("nan"), 1.0, float("nan")]), 2) == [0, 1]


def test_node_methods_are_registered():
    assert set(NODE_METHODS) <= set(method_names())


@pytest.mark.parametrize("make, message", [
    (lambda: Magnitude(norm="l3"), "norm: got 'l3'; allowed: one of l1, l2"),
    (lambda: Snip(batches=0), "batches: got 0; allowed: a whole number >= 1"),
    (lambda: Fisher(batch_size=2.5), "batch_size: got 2.5; allowed: a whole number >= 1"),
    (lambda: Grasp(temperature=-1), "temperature: got -1; allowed: a finite number > 0"),
    (lambda: SynFlow(rounds=True), "rounds: got True; allowed: a whole number >= 1"),
])
def test_bad_options_give_one_line(make, message):
    with pytest.raises(ConfigError) as info:
        make()
    assert str(info.value) == message


def test_bad_gate_reduction_gives_one_line(make_context):
    with pytest.raises(ConfigError, match="reduce: got 'mean'; allowed: one of sum, batch, example"):
        make_context("mlp").gate_gradients(reduce="mean")


def test_repr_shows_the_options():
    assert repr(Magnitude(include_outgoing=True)) == "Magnitude(norm='l1', include_outgoing=True)"
    assert repr(SynFlow()) == "SynFlow(rounds=100)"
