"""Parents, node spaces, masks, and compaction of a masked network."""

from .compaction import compact, expand, gather_stacked, to_module
from .mask import NodeMask, kept_count, random_masks, stacked_indices
from .mlp import Layer, MLPSpec, count_params, init_parent

__all__ = [
    "Layer",
    "MLPSpec",
    "NodeMask",
    "compact",
    "count_params",
    "expand",
    "gather_stacked",
    "init_parent",
    "kept_count",
    "random_masks",
    "stacked_indices",
    "to_module",
]
