"""The ``cnn1d`` family: a 1-D convolutional parent for sequences such as MNIST-1D.

Three ``Conv1d`` layers of 128 channels by default, kernel 5, stride 2 and
padding 2 (each halves the length: 40 -> 20 -> 10 -> 5 on MNIST-1D), ReLU,
no pooling, then a linear head on the flattened channels (optional hidden FC
layers with ``fc``). Striding instead of pooling: the public MNIST-1D CNN does
the same, and it is cheaper. Tabular data ``(N, F)`` is read as one channel
``(N, 1, F)``. Every output channel of a convolution is a node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .conv import ConvNet


@dataclass(frozen=True)
class CNN1d(ConvNet):
    """``CNN1d(in_channels, (length,), channels, fc, n_classes, batchnorm=False)``.

    >>> net = CNN1d(1, (40,), (128, 128, 128), (), 10)
    >>> net.conv_output_sizes(), net.count_params()
    ([(20,), (10,), (5,)], 171274)
    """

    name: ClassVar[str] = "cnn1d"
    accepted_dims: ClassVar[tuple[int, ...]] = (2, 3)
    dims: ClassVar[int] = 1
    kernel: ClassVar[int] = 5
    stride: ClassVar[int] = 2
    padding: ClassVar[int] = 2
    default_hidden: ClassVar[tuple[int, ...]] = (128, 128, 128)
