"""Training augmentation of images: ``crop-flip``, drawn per (seed, epoch, example).

``crop-flip`` is the usual CIFAR augmentation: pad each image with ``PAD``
zeros on every side, crop a window of the original size at a random offset
(``0..2*PAD`` in each direction), and mirror it left-right with probability
1/2. It acts on the standardized image, so the padding is the value 0 of the
standardized features (the training mean of the channel under ``channel``
standardization), the same for uint8 and float datasets.

The draw is counter-based: for a seed and an epoch, one generator
(``seeding.generator(seed, "augment", epoch)``) draws every training example's
offsets and flip at once, indexed by the example's position in the training
split. So an example's augmentation depends on (seed, epoch, example) alone:
every method and sparsity of a seed, every network stacked with it, and the
reference loop see exactly the same augmented minibatches (the paired design),
whatever the minibatch order, the gather size or the other seeds of a stack.
Validation, monitoring and test data are never augmented; neither is what a
method reads while it selects (``SelectionContext``: its minibatches, scores
and brief ``train``), which is the plain training split.

>>> draw = epoch_draw([0, 1], epoch=1, n=5)
>>> tuple(draw.offsets.shape), tuple(draw.flips.shape)
((2, 5, 2), (2, 5))
>>> bool((epoch_draw([1], 1, 5).offsets[0] == draw.offsets[1]).all())  # a seed's draw: the same in any stack
True
>>> x = torch.arange(9.0).view(1, 1, 3, 3)
>>> crop_flip(x, torch.tensor([[PAD, PAD]]), torch.tensor([True]))[0, 0].tolist()
[[2.0, 1.0, 0.0], [5.0, 4.0, 3.0], [8.0, 7.0, 6.0]]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..seeding import generator

#: Pixels of zero padding on each side before the random crop.
PAD = 4


@dataclass(frozen=True)
class Draw:
    """One epoch's augmentation of every training example, for each of S seeds: crop ``offsets`` ``(S, n, 2)``
    (row, column, each in ``0..2*PAD``) and ``flips`` ``(S, n)`` (mirror left-right)."""

    offsets: torch.Tensor
    flips: torch.Tensor

    def seed(self, k: int) -> "Draw":
        """The draw of the k-th seed alone."""
        return Draw(self.offsets[k : k + 1], self.flips[k : k + 1])

    def at(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The offsets ``(S, B, 2)`` and flips ``(S, B)`` of the examples ``rows`` ``(S, B)`` (row s: seed s's examples)."""
        seed = torch.arange(len(rows), device=rows.device).unsqueeze(1)
        return self.offsets[seed, rows], self.flips[seed, rows]


def seed_draw(seed: int, epoch: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The offsets ``(n, 2)`` and flips ``(n,)`` of ``n`` training examples at ``epoch`` of ``seed`` (on the CPU)."""
    g = generator(seed, "augment", epoch)
    offsets = torch.randint(0, 2 * PAD + 1, (n, 2), generator=g)
    flips = torch.randint(0, 2, (n,), generator=g).bool()
    return offsets, flips


def epoch_draw(seeds: list[int], epoch: int, n: int, device: str | torch.device = "cpu") -> Draw:
    """Every training example's augmentation at ``epoch``, for each seed (each seed drawn alone: see the module)."""
    per_seed = [seed_draw(s, epoch, n) for s in seeds]
    return Draw(torch.stack([o for o, _ in per_seed]).to(device), torch.stack([f for _, f in per_seed]).to(device))


def crop_flip(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Images ``x`` ``(B, C, H, W)`` cropped from their ``PAD``-zero-padded selves at ``offsets`` ``(B, 2)`` and
    mirrored where ``flips`` ``(B,)``: ``out[b, c, i, j] = padded[b, c, dy + i, dx + (W-1-j if flip else j)]``.
    One gather for the whole batch (no loop over examples)."""
    b, c, h, w = x.shape
    padded = F.pad(x, (PAD, PAD, PAD, PAD))
    i = torch.arange(h, device=x.device)
    j = torch.arange(w, device=x.device)
    rows = offsets[:, 0:1] + i  # (B, H)
    cols = offsets[:, 1:2] + torch.where(flips.unsqueeze(1), w - 1 - j, j)  # (B, W)
    width = w + 2 * PAD
    flat = (rows.unsqueeze(2) * width + cols.unsqueeze(1)).view(b, 1, h * w).expand(b, c, h * w)
    return padded.flatten(2).gather(2, flat).view(b, c, h, w)


def check_augment(augment: str, example_shape: tuple[int, ...], dataset: str) -> None:
    """Refuse, in one line, an augmentation the data cannot take (``crop-flip``: images ``(C, H, W)`` only)."""
    if augment == "crop-flip" and len(example_shape) != 3:
        raise ConfigError(f"augment: 'crop-flip' needs images of shape (C, H, W), and dataset {dataset!r} has examples "
                          f"of shape {tuple(example_shape)}; allowed: augment = \"none\" for this dataset, or an image dataset")


def augment_rows(x: torch.Tensor, image_shape: tuple[int, ...], rows: torch.Tensor, draw: Draw) -> torch.Tensor:
    """Gathered training examples ``x`` ``(S, B, ...)`` (any per-example layout of ``image_shape`` numbers, e.g.
    flattened for an MLP), example ids ``rows`` ``(S, B)``, augmented with seed s's ``draw`` in image shape and
    returned in ``x``'s layout."""
    offsets, flips = draw.at(rows)
    images = x.reshape(-1, *image_shape)
    return crop_flip(images, offsets.reshape(-1, 2), flips.reshape(-1)).view(x.shape)
