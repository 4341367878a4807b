"""MNIST-1D (Greydanus 2020), generated locally: no download.

Ten 12-point templates of digit-like 1D shapes are padded, scaled, translated,
given correlated and i.i.d. noise, sheared and resampled to 40 points, then
the whole set is standardized. This follows the reference generator's
procedure and default arguments (5000 samples, 4000 train / 1000 test), with
``data_seed`` 0 mapped to its default seed 42. It is small enough that an MLP
is far from saturating it, which is what makes sparsity differences visible.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .registry import RawData, register_dataset

NUM_SAMPLES = 5000
TRAIN_SPLIT = 0.8
TEMPLATE_LEN = 12
PADDING = (36, 60)
SCALE_COEFF = 0.4
MAX_TRANSLATION = 48
CORR_NOISE_SCALE = 0.25
IID_NOISE_SCALE = 2e-2
SHEAR_SCALE = 0.75
FINAL_SEQ_LENGTH = 40
REFERENCE_SEED = 42


def templates() -> np.ndarray:
    """The ten digit templates, whitened and starting at zero, shape (10, 12)."""
    x = np.asarray(
        [
            [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
            [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
            [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
            [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
            [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
            [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
            [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
            [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
            [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
            [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
        ]
    )
    x = x - x.mean(axis=1, keepdims=True)
    x = x / x.std(axis=1, keepdims=True)
    x = x - x[:, :1]
    return x / 6.0


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(x)), x)


def _transform(x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    low, high = PADDING
    pad = low + int(rng.rand() * (high - low + 1))
    x = np.concatenate([x + 1e-8, np.zeros(pad)])
    x = _resample(x, TEMPLATE_LEN + PADDING[-1])
    x = x * (1 + SCALE_COEFF * (rng.rand() - 0.5))
    k = rng.choice(MAX_TRANSLATION)
    x = np.concatenate([x[-k:], x[:-k]]) if k else x
    signal = x != 0
    corr_noise = gaussian_filter1d(CORR_NOISE_SCALE * rng.randn(*x.shape), 2)
    x = signal * x + (~signal) * corr_noise
    x = x + IID_NOISE_SCALE * rng.randn(*x.shape)
    x = x - SHEAR_SCALE * (rng.rand() - 0.5) * np.linspace(-0.5, 0.5, len(x))
    return _resample(x, FINAL_SEQ_LENGTH)


def generate(seed: int = REFERENCE_SEED, num_samples: int = NUM_SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """All samples ``(x, y)``, shuffled and standardized; deterministic in ``seed``.

    >>> x, y = generate(num_samples=20)
    >>> x.shape, y.shape
    ((20, 40), (20,))
    """
    rng = np.random.RandomState(seed)
    base = templates()
    per_class = num_samples // len(base)
    xs, ys = [], []
    for label, template in enumerate(base):
        for _ in range(per_class):
            xs.append(_transform(template, rng))
            ys.append(label)
    order = rng.permutation(len(ys))
    x = np.stack(xs)[order]
    y = np.asarray(ys, dtype=np.int64)[order]
    return (x - x.mean()) / x.std(), y


@register_dataset("mnist1d", standardize="none")  # the generator standardizes the whole set already
def load_mnist1d(data_seed: int) -> RawData:
    x, y = generate(REFERENCE_SEED + data_seed)
    split = int(len(y) * TRAIN_SPLIT)
    return x[:split], y[:split], x[split:], y[split:]
