"""The ``cnn`` family: a 2-D convolutional parent for images ``(N, C, H, W)``.

A plain stack in the style of the lottery-ticket Conv-2/4/6 networks and the
VGG family: ``Conv2d`` layers of kernel 3 and padding 1 (``hidden``: their
channels; default Conv-4's 64, 64, 128, 128), each optionally followed by
BatchNorm, then ReLU, a 2x2 max-pooling after every second convolution, then
hidden fully connected layers (``fc``; default 256, 256) and a linear head.
Every conv channel and every hidden FC neuron is a node. Residual networks
(channels tied by additions) are not in this family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .conv import ConvNet


@dataclass(frozen=True)
class CNN(ConvNet):
    """``CNN(in_channels, (height, width), channels, fc, n_classes, batchnorm=False)``.

    >>> net = CNN(3, (32, 32), (64, 64, 128, 128), (256, 256), 10)  # Conv-4 on CIFAR-10
    >>> net.conv_output_sizes()[-1], net.node_space.widths
    ((8, 8), (64, 64, 128, 128, 256, 256))
    """

    name: ClassVar[str] = "cnn"
    accepted_dims: ClassVar[tuple[int, ...]] = (4,)
    dims: ClassVar[int] = 2
    kernel: ClassVar[int] = 3
    padding: ClassVar[int] = 1
    pool_every: ClassVar[int] = 2
    default_hidden: ClassVar[tuple[int, ...]] = (64, 64, 128, 128)
    default_fc: ClassVar[tuple[int, ...]] = (256, 256)
