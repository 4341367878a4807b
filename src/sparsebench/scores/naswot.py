"""``naswot``: Mellor, Turner, Storkey and Crowley (2021), "Neural Architecture Search without Training", ICML.

Each example of a minibatch of 128 gets a binary code: for every kept unit of every node layer (a hidden
neuron; a channel at each position), whether it is active (its output after the activation is positive, that is
its ReLU input is). The kernel ``K[i, j]`` counts the units on which examples i and j agree (``c c^T + (1-c)
(1-c)^T``, the number of units minus their Hamming distance); the score is ``log |det K|``. Networks that give
different examples different activation patterns score higher. Stored as that natural log; higher is better.

Only **kept** units count: a removed unit's code is always 0, so on the masked full-width network it would add
1 to every entry of K, a constant that changes the determinant; the compacted network has no such units, and
the reference path (the masked full-width network) reads only the kept ones, so both give the same score.
K has rank at most ``units + 1``: with fewer kept units than the minibatch has examples (an MLP of 3 x 512 at
sparsity 0.98 keeps 30), K of 128 examples is singular for every candidate, and its computed log-determinant
would be rounding noise. The kernel is then taken over the first ``units + 1`` examples (the same number for
every candidate of one sparsity, which keep the same number of units). A K that is still singular (two examples
with the same code) has determinant 0, ``log 0 = -inf``, which no store keeps and which ties every such
candidate; it scores instead ``log pdet(K) - (n - rank) * B``: its pseudo-determinant (the product of its
non-zero eigenvalues; rank and eigenvalues by ``eigvalsh``, tolerance ``n * eps * largest``), less ``B = n *
log(n * units) + 1`` per missing rank. A non-singular K is an integer matrix, so ``log det K >= 0``; and
``log pdet(K) < B``: every singular K scores below every non-singular one, a lower rank lower, and at one rank a
larger pseudo-determinant higher. Where K is non-singular the score is the paper's ``log |det K|``.

Data: the first 128 examples of the validation split (``network.minibatch``; no labels are read). BatchNorm on
the minibatch's own statistics, as the paper's networks run (training mode), nothing updated.
"""

from __future__ import annotations

import torch

from . import network


def codes(activations: list[torch.Tensor]) -> torch.Tensor:
    """Each example's binary activation code over all units ``(n, units)``, float64: 1 where a unit is active."""
    return torch.cat([(a > 0).flatten(1) for a in activations], dim=1).double()


def kernel(code: torch.Tensor) -> torch.Tensor:
    """``K = c c^T + (1 - c)(1 - c)^T`` for codes ``c`` ``(..., n, units)``, over the first ``units + 1``
    examples at most (see the module docstring)."""
    code = code[..., : code.shape[-1] + 1, :]
    return code @ code.transpose(-1, -2) + (1 - code) @ (1 - code).transpose(-1, -2)


def log_det_kernel(code: torch.Tensor) -> torch.Tensor:
    """``log |det K|`` of the kernel of codes ``c`` ``(..., n, units)``; below 0 where K is singular.

    >>> round(log_det_kernel(torch.tensor([[1., 0.], [0., 1.]])).item(), 6)  # K = [[2, 0], [0, 2]]: log 4
    1.386294
    >>> log_det_kernel(torch.tensor([[1., 0., 1.], [1., 0., 1.]])).item() < 0  # two examples with one code
    True
    """
    return log_det_kernel_of(kernel(code))


def log_det_kernel_of(k: torch.Tensor) -> torch.Tensor:
    """``log |det K|`` of kernels ``(..., n, n)``; where singular, ``log pdet(K) - (n - rank) * B`` (see the
    module docstring), below every non-singular one."""
    n = k.shape[-1]
    eigenvalues = torch.linalg.eigvalsh(k)
    nonzero = eigenvalues > eigenvalues[..., -1:] * n * torch.finfo(k.dtype).eps
    rank = nonzero.sum(-1)
    pseudo = torch.where(nonzero, eigenvalues, torch.ones_like(eigenvalues)).log().sum(-1)
    units = k[..., 0, 0]  # an example agrees with itself on every unit
    penalty = n * torch.log(n * units.clamp_min(1)) + 1
    return torch.where(rank == n, torch.linalg.slogdet(k).logabsdet, pseudo - (n - rank) * penalty)


def compute(family, weights, masks, x, y, reference):
    x, _ = network.minibatch(x, y)
    values = []
    for chunk in network.chunks(family, weights, masks, x, reference, batch_statistics=True):
        def one(params, inputs):
            return kernel(codes(network.forward(chunk.module, chunk.names, params, inputs)[1]))

        with torch.no_grad():
            if chunk.kept is None:  # the kernels under vmap; their determinants batched, outside it
                values.append(log_det_kernel_of(network.per_candidate(one, chunk, x)))
            else:  # the masked full-width network, alone: only its kept units have codes
                _, activations = network.forward(chunk.module, chunk.names, [p[0] for p in chunk.params], x)
                values.append(log_det_kernel(codes(network.kept_units(activations, chunk.kept[0])))[None])
    return torch.cat(values).double().cpu()
