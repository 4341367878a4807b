"""scikit-learn's bundled 8x8 handwritten digits (1797 images, no download)."""

import numpy as np

from .registry import RawData, register_dataset


@register_dataset("digits")
def load_digits(data_seed: int) -> RawData:
    """A fixed 80/20 train/test split of the digits, shuffled by ``data_seed``."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x, y = bunch.data.astype(np.float64), bunch.target.astype(np.int64)
    order = np.random.default_rng([data_seed, 1797]).permutation(len(y))
    n_test = len(y) // 5
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]
