"""``grad-norm``: the norm of the gradient of the training loss with respect to the sub-network's weights at
initialization (Abdelfattah, Mehrotra, Dudziak and Lane, 2021, "Zero-Cost Proxies for Lightweight NAS", ICLR).

The loss is the mean cross-entropy of a minibatch of 128 examples; the gradient is taken with respect to the
weights of every Linear and Conv layer of the compacted sub-network (not biases or BatchNorm's scale and shift);
the score is its Euclidean norm over all of them together (Abdelfattah et al. sum the layers' norms instead).
Removed nodes carry no weights, and on the masked full-width network their weights' gradients are zero, so
both ways give the same value. Higher is better; not a log.

Data: the first 128 examples of the validation split, with their labels. BatchNorm on the minibatch's own
statistics (training mode, as training computes gradients), nothing updated.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import grad

from . import network


def compute(family, weights, masks, x, y, reference):
    x, y = network.minibatch(x, y)
    values = []
    for chunk in network.chunks(family, weights, masks, x, reference, batch_statistics=True):
        names = chunk.weight_names()
        at = [chunk.names.index(n) for n in names]

        def one(params, inputs, labels):
            def loss(chosen):
                full = list(params)
                for i, p in zip(at, chosen):
                    full[i] = p
                return F.cross_entropy(network.forward(chunk.module, chunk.names, full, inputs)[0], labels)

            grads = grad(loss)([params[i] for i in at])
            return torch.sqrt(sum((g.double() ** 2).sum() for g in grads))

        values.append(network.per_candidate(one, chunk, x, y).detach())
    return torch.cat(values).double().cpu()
