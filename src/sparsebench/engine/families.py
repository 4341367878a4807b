"""Each parent family's engine: the registry the runner asks, through ``engine_for(family)``.

The runner never looks inside a family's weights; each engine (``mlp``,
``conv``) knows its family's. The registry imports its members, never the
other way round.
"""

from __future__ import annotations

from ..errors import ConfigError
from ..models.base import ParentFamily
from ..models.cnn import CNN
from ..models.cnn1d import CNN1d
from ..models.mlp import MLP
from .base import FamilyEngine
from .conv import ConvEngine
from .mlp import MLPEngine

__all__ = ["ENGINES", "FamilyEngine", "engine_for"]

#: Each family's engine, by family name.
ENGINES: dict[str, type[FamilyEngine]] = {MLP.name: MLPEngine, CNN1d.name: ConvEngine, CNN.name: ConvEngine}


def engine_for(family: ParentFamily) -> FamilyEngine:
    """The engine that trains ``family``'s networks; a family without one is refused in one line."""
    if family.name not in ENGINES:
        raise ConfigError(f"parent {family.name!r}: this version of sparsebench has no engine to train it; "
                          f"allowed: one of {', '.join(sorted(ENGINES))}")
    return ENGINES[family.name](family)
