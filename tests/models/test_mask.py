import pytest
import torch

from sparsebench.models import NodeMask, kept_count, random_masks


@pytest.mark.parametrize(
    "width,sparsity,kept",
    [(256, 0.0, 256), (256, 0.5, 128), (256, 0.9, 26), (256, 0.98, 5), (10, 0.98, 1), (3, 0.5, 2), (1, 0.9, 1)],
)
def test_kept_count_is_max_one_round(width, sparsity, kept):
    assert kept_count(width, sparsity) == kept


def test_random_masks_have_the_exact_size_and_are_uniform_subsets():
    g = torch.Generator().manual_seed(0)
    masks = random_masks((50, 20), 0.9, 200, g)
    assert all(m.kept_per_layer == (5, 2) for m in masks)
    counts = torch.zeros(50)
    for m in masks:
        counts[list(m.kept[0])] += 1
    # each node is kept with probability 0.1: 20 expected in 200 draws
    assert counts.min() > 5 and counts.max() < 40


def test_mask_bytes_round_trip():
    mask = NodeMask.from_indices([[0, 5, 9], [2]], (10, 3))
    assert NodeMask.from_bytes(mask.to_bytes(), (10, 3)) == mask


@pytest.mark.parametrize("bad", [[[]], [[0, 0]], [[10]], [[-1]]])
def test_invalid_masks_are_refused(bad):
    with pytest.raises(ValueError):
        NodeMask.from_indices(bad, (10,))
