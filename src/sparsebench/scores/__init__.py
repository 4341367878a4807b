"""The scores a search method ranks untrained candidate sub-networks by: the registry.

Each member is a ``Score`` (``base``): a name, whether higher is better, whether it is stored as a log, what data
it reads and how BatchNorm runs, and a function of (parent family and weights, masks, split) giving one value
per mask. Names, directions and the log flag are spelled once in ``sparsebench.names.SCORE_FACTS`` (so that the
analysis reads them without importing torch); this module adds how each is computed.

=========  ===========  ====  ==========================================  =================================
score      better       log   reads                                       BatchNorm
=========  ===========  ====  ==========================================  =================================
loss       lower        no    whole validation split                      evaluation mode, running stats
accuracy   higher       no    whole validation split                      evaluation mode, running stats
naswot     higher       yes   first 128 validation examples (no labels)   minibatch statistics
jacob-cov  higher       no    first 128 validation examples (no labels)   minibatch statistics
grad-norm  higher       no    first 128 validation examples and labels    minibatch statistics
synflow    higher       yes   nothing (one all-ones input)                evaluation mode, running stats
=========  ===========  ====  ==========================================  =================================

("Running stats": at their start, mean 0 and variance 1, as a parent has them at initialization.)

>>> from sparsebench.models.mlp import MLP
>>> from sparsebench.models.mask import random_masks
>>> family = MLP(4, (8, 8), 3)
>>> masks = random_masks((8, 8), 0.5, 3, torch.Generator().manual_seed(0))
>>> score_masks("naswot", family, family.init(0), masks, torch.randn(16, 4), torch.randint(0, 3, (16,))).shape
torch.Size([3])
"""

from __future__ import annotations

import torch

from ..errors import invalid
from ..models.base import ParentFamily, Weights
from ..models.mask import NodeMask
from ..names import SCORE_FACTS, SCORES
from . import grad_norm, jacob_cov, naswot, synflow, validation
from .base import Score

__all__ = ["REGISTRY", "Score", "get_score", "score_masks"]

_SPLIT, _MINIBATCH = "the whole validation split", "the first 128 validation examples"
_EVAL, _BATCH = "evaluation mode, running statistics at their start", "the minibatch's own statistics"
_HOW = {
    "loss": (_SPLIT, _EVAL, validation.loss),
    "accuracy": (_SPLIT, _EVAL, validation.accuracy),
    "naswot": (_MINIBATCH + " (no labels)", _BATCH, naswot.compute),
    "jacob-cov": (_MINIBATCH + " (no labels)", _BATCH, jacob_cov.compute),
    "grad-norm": (_MINIBATCH + " and their labels", _BATCH, grad_norm.compute),
    "synflow": ("no data (one all-ones input)", _EVAL, synflow.compute),
}

#: Every score, by name (in the order of ``names.SCORES``).
REGISTRY: dict[str, Score] = {name: Score(name, *SCORE_FACTS[name], *_HOW[name]) for name in SCORES}


def get_score(name: object) -> Score:
    """The score named ``name``; any other name is refused in one line that lists the allowed ones.

    >>> get_score("synflow").describe()
    'synflow (log, higher is better)'
    >>> get_score("nope")
    Traceback (most recent call last):
    ...
    sparsebench.errors.ConfigError: score: got 'nope'; allowed: one of loss, accuracy, naswot, jacob-cov, grad-norm, synflow
    """
    if not isinstance(name, str) or name not in REGISTRY:
        raise invalid("score", name, "one of " + ", ".join(REGISTRY))
    return REGISTRY[name]


def score_masks(name: str, family: ParentFamily, weights: Weights, masks: list[NodeMask], x: torch.Tensor,
                y: torch.Tensor, reference: bool = False) -> torch.Tensor:
    """Score ``name`` of each untrained sub-network of the parent ``(family, weights)``: shape ``(len(masks),)``.

    ``(x, y)``: the split the score reads (prepared for the family); ``reference``: each masked full-width
    network alone instead of compacted candidates in batches (the same values, to float tolerance).
    """
    return get_score(name)(family, weights, masks, x, y, reference)
