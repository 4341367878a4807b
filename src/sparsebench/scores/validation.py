"""``loss`` and ``accuracy``: the untrained sub-network's mean cross-entropy (lower is better) or accuracy
(higher is better) on the whole validation split, through each family's engine (``FamilyEngine.score``: the
MLP's stacked products, the CNNs' stacked convolutions; BatchNorm in evaluation mode on its running statistics
at their start). The numbers random search has always ranked by."""

from __future__ import annotations


def loss(family, weights, masks, x, y, reference):
    from ..engine.families import engine_for

    return engine_for(family).score(weights, masks, x, y, "loss", reference=reference)


def accuracy(family, weights, masks, x, y, reference):
    from ..engine.families import engine_for

    return engine_for(family).score(weights, masks, x, y, "accuracy", reference=reference)
