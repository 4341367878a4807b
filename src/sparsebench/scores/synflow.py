"""``synflow``: the whole-network SynFlow score of a sub-network (Tanaka, Kunin, Yamins and Ganguli, 2020,
"Pruning neural networks without any data by iteratively conserving synaptic flow"; as a network score,
Abdelfattah et al. 2021).

Every parameter is replaced by its absolute value, one all-ones example goes in, ``R`` is the sum of the
outputs, and the score is ``sum over the weights of every Linear and Conv layer of |theta * dR/dtheta|``, in
float64. Data-free: no example is read, only the input's shape. BatchNorm as the paper's code runs it: in
evaluation mode on its running statistics at their start (mean 0, variance 1), scale and shift made absolute.

The flow is a product over layers and spans hundreds of orders of magnitude, so the score is stored as its
natural log; higher is better. So that no layer's values overflow float64 on the way, each layer's weights are
multiplied by a power of two ``c_l`` near the inverse of their mean absolute row sum (and each bias, and
BatchNorm shift, by the product of the ``c`` up to its layer): with ReLU, the network of absolute values is then
the original one scaled by ``C = prod c_l`` at every output, so the score is ``C`` times the original one and
``log C`` is subtracted. Powers of two scale floats exactly, so where nothing overflows the score is the
unscaled one to the bit. Other activations are not positively homogeneous: no scaling.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import grad

from . import network


def layer_scales(chunk: network.Candidates, relu: bool) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per parameter, its factor ``(N,)`` for each candidate (powers of two; all ones without ReLU), and
    ``log C`` ``(N,)`` (kept as a sum of exponents: ``C`` itself may be below float64's range)."""
    n = len(chunk)
    zeros = torch.zeros(n, dtype=torch.float64, device=chunk.params[0].device)
    index = dict(zip(chunk.names, chunk.params))
    factors: dict[str, torch.Tensor] = {}
    exponent = zeros  # log2 of the product of the layers' c so far
    for name, module in chunk.module.named_children():
        if isinstance(module, network.WEIGHTED_MODULES):
            rows = index[f"{name}.weight"].abs().flatten(2).sum(2).mean(1).double()
            e = -torch.round(torch.log2(rows.clamp_min(1e-300))) if relu else zeros
            exponent = exponent + e
            factors[f"{name}.weight"], factors[f"{name}.bias"] = torch.exp2(e), torch.exp2(exponent)
        elif isinstance(module, network.BATCHNORM_MODULES):
            factors[f"{name}.weight"], factors[f"{name}.bias"] = torch.exp2(zeros), torch.exp2(exponent)
    return [factors[name] for name in chunk.names], exponent * math.log(2)


def compute(family, weights, masks, x, y, reference, scale: bool = True):
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    values = []
    for chunk in network.chunks(family, weights, masks, ones, reference, batch_statistics=False, dtype=torch.float64):
        relu = scale and any(isinstance(m, nn.ReLU) for m in chunk.module)
        factors, log_total = layer_scales(chunk, relu)
        shape = lambda f, p: f.view(-1, *(1,) * (p.dim() - 1))  # noqa: E731
        chunk.params = [p.abs() * shape(f, p) for p, f in zip(chunk.params, factors)]
        for buffer in chunk.module.buffers():  # BatchNorm's running statistics, absolute as the paper's
            buffer.abs_()
        at = [chunk.names.index(n) for n in chunk.weight_names()]

        def one(params, inputs):
            def flow(chosen):
                full = list(params)
                for i, p in zip(at, chosen):
                    full[i] = p
                return network.forward(chunk.module, chunk.names, full, inputs)[0].sum()

            chosen = [params[i] for i in at]
            return sum((p * g).abs().sum() for p, g in zip(chosen, grad(flow)(chosen)))

        flows = network.per_candidate(one, chunk, ones).detach()
        values.append(torch.log(flows) - log_total)
    return torch.cat(values).double().cpu()
