"""Parent families, node spaces, masks, and compaction of a masked network."""

from .base import NodeSpace, Parent, ParentFamily
from .mask import NodeMask, kept_count, random_masks, stacked_indices
from .mlp import MLP, Layer, MLPSpec, compact, count_params, expand, gather_stacked, init_parent, to_module
from .registry import family_for, family_names, get_family

__all__ = [
    "MLP",
    "Layer",
    "MLPSpec",
    "NodeMask",
    "NodeSpace",
    "Parent",
    "ParentFamily",
    "compact",
    "count_params",
    "expand",
    "family_for",
    "family_names",
    "gather_stacked",
    "get_family",
    "init_parent",
    "kept_count",
    "random_masks",
    "stacked_indices",
    "to_module",
]
