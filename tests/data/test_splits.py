"""Splits and standardization (issue 12): what each option does to the loaded arrays."""

import numpy as np
import torch

from sparsebench.data import load_dataset
from sparsebench.data.mnist1d import load_mnist1d


def test_standardize_none_keeps_the_loaders_values():
    x_train, _, x_test, _ = load_mnist1d(0)
    data = load_dataset("mnist1d", 0, 0.125, 0.5, "none")
    assert torch.equal(data.x_test, torch.from_numpy(x_test.astype(np.float32)))
    assert len(data.y_train) == 3500 and len(data.y_val) == 250 and len(data.y_monitor) == 250


def test_standardize_feature_uses_training_statistics_only():
    data = load_dataset("digits", 0, 0.2, 0.5, "feature")
    varying = data.x_train.std(dim=0) > 0
    assert torch.allclose(data.x_train.mean(dim=0), torch.zeros(data.n_features), atol=1e-5)
    assert torch.allclose(data.x_train.std(dim=0, unbiased=False)[varying], torch.ones(int(varying.sum())), atol=1e-4)
    assert not torch.allclose(data.x_val.mean(dim=0), torch.zeros(data.n_features), atol=1e-3)


def test_without_a_monitoring_fraction_the_splits_are_those_of_round_1():
    # Same rows as before the monitoring split existed, so old experiments resume bit for bit.
    old = load_dataset("digits", 0, 0.2)
    new = load_dataset("digits", 0, 0.2, 0.0, "feature")
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(old, name), getattr(new, name)), name
    assert not new.has_monitor
