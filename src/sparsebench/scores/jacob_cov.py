"""``jacob-cov``: the score of Mellor, Turner, Storkey and Crowley's first version of "Neural Architecture Search
without Training" (arXiv 2006.04647v1): how uncorrelated the input Jacobians of different examples are.

For a minibatch of 128 examples, each example's Jacobian is the gradient of the sum of the network's outputs
(over the minibatch) with respect to that example's input, flattened; ``Sigma`` is the correlation matrix of
those Jacobians between examples, ``v`` its eigenvalues, and the score ``-sum(log(v + k) + 1 / (v + k))`` with
``k = 1e-5``, as the paper's code computes it. Higher is better; not a log. An example whose Jacobian has no
spread (constant, as a dead network's) has no correlation with any other, where ``numpy.corrcoef`` gives NaN;
here its row of the matrix is 0 (its diagonal too), an eigenvalue 0 that costs the score ``log(1/k) - 1/k``,
so the score stays finite and such a network ranks low.

Data: the first 128 examples of the validation split (no labels read). BatchNorm on the minibatch's own
statistics (training mode, as the paper's networks), nothing updated; through BatchNorm an example's
Jacobian also holds its effect on the others' outputs, as in the paper's code (``y.backward(ones)``).
"""

from __future__ import annotations

import torch
from torch.func import grad

from . import network

#: The paper's ``k``: keeps the log and the reciprocal finite for zero eigenvalues.
K = 1e-5


def eigenvalue_score(jacobians: torch.Tensor) -> torch.Tensor:
    """``-sum(log(v + k) + 1/(v + k))`` over the eigenvalues ``v`` of the correlation matrix of the rows of
    ``jacobians`` ``(..., n, d)`` (``numpy.corrcoef`` of the rows), computed in float64.

    >>> round(eigenvalue_score(torch.tensor([[1., 2., 3.], [3., 1., 2.]])).item(), 3)  # eigenvalues 1.5, 0.5
    -2.379
    """
    j = jacobians.double()
    centred = j - j.mean(-1, keepdim=True)
    norm = centred.norm(dim=-1, keepdim=True)
    unit = torch.where(norm > 0, centred / torch.where(norm > 0, norm, torch.ones_like(norm)), torch.zeros_like(centred))
    v = torch.linalg.eigvalsh(unit @ unit.transpose(-1, -2))
    return -(torch.log(v + K) + 1 / (v + K)).sum(-1)


def compute(family, weights, masks, x, y, reference):
    x, _ = network.minibatch(x, y)
    values = []
    for chunk in network.chunks(family, weights, masks, x, reference, batch_statistics=True):
        def one(params, inputs):
            total = lambda i: network.forward(chunk.module, chunk.names, params, i)[0].sum()  # noqa: E731
            return eigenvalue_score(grad(total)(inputs).flatten(1))

        values.append(network.per_candidate(one, chunk, x).detach())
    return torch.cat(values).double().cpu()
