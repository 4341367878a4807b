"""Fixtures for the method tests: tiny parents and selection contexts for the node scores."""

from __future__ import annotations

import pytest
import torch

from sparsebench.methods.base import SelectionContext
from sparsebench.models.cnn import CNN
from sparsebench.models.cnn1d import CNN1d
from sparsebench.models.mlp import MLP
from sparsebench.seeding import generator

#: name -> (family, one example's shape)
FAMILIES = {
    "mlp": (MLP(12, (10, 8), 3), (12,)),
    "cnn1d": (CNN1d(1, (12,), (6, 5), (), 3), (1, 12)),
    "cnn1d-bn-fc": (CNN1d(1, (12,), (6, 5), (7,), 3, batchnorm=True), (1, 12)),
    "cnn": (CNN(2, (6, 6), (4, 5), (6,), 3, batchnorm=True), (2, 6, 6)),
}


def _make_context(name: str, sparsity: float = 0.5, seed: int = 0, n: int = 48, method: str = "m") -> SelectionContext:
    family, shape = FAMILIES[name]
    g = torch.Generator().manual_seed(1000 + seed)
    x = torch.randn(n, *shape, generator=g)
    y = torch.randint(0, family.n_classes, (n,), generator=g)
    return SelectionContext(parent=family.bind(family.init(seed), seed), sparsity=sparsity, seed=seed, candidates=4,
                            score_name="loss", x_train=x, y_train=y, x_val=x[:8], y_val=y[:8],
                            generator=generator(seed, "method", method, sparsity))


@pytest.fixture
def make_context():
    """``make_context(family_name, sparsity=0.5, seed=0, n=48)``: a context on random data for a tiny parent of
    ``FAMILIES``; the same arguments, the same context (and method stream)."""
    return _make_context


@pytest.fixture
def families():
    return FAMILIES
