"""``dense``: the parent itself, nothing removed; trained once per seed.

It selects nothing: the plan gives the dense parent its own work group and the
runner trains the whole parent, without asking this class for a mask. It is a
name in the registry, so that configs and ``list --names`` know it.
"""

from .base import Method


class Dense(Method):
    """The dense parent (no ``select``: never asked for a mask)."""
