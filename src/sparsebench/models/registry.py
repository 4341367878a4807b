"""Parent family names to classes: the built-in families listed here, third-party ones by entry point.

The registry imports its members; a member never imports the registry (no
import circle). A package adds a family through the entry-point group
``sparsebench.parents``, naming a ``ParentFamily`` subclass:

    [project.entry-points."sparsebench.parents"]
    my-net = "mypkg.family:MyNet"
"""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import ConfigError, describe, invalid
from .base import ParentFamily
from .cnn import CNN
from .cnn1d import CNN1d
from .mlp import MLP

if TYPE_CHECKING:
    from ..config import ParentSection

ENTRY_POINT_GROUP = "sparsebench.parents"
DEFAULT_FAMILY = MLP.name
#: The families that come with sparsebench.
BUILTIN: dict[str, type[ParentFamily]] = {MLP.name: MLP, CNN1d.name: CNN1d, CNN.name: CNN}


def family_name(parent: "ParentSection | Mapping[str, Any]") -> str:
    """The family a parent section (``cfg.model``) or a stored config's plain values names.

    The one place that reads it: configs stored before families existed name none, and are MLPs.
    """
    if isinstance(parent, Mapping):
        return parent.get("parent", DEFAULT_FAMILY)
    return parent.parent


def _entry_points() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def family_names() -> list[str]:
    """Built-in and installed family names.

    >>> "mlp" in family_names()
    True
    """
    return sorted(set(BUILTIN) | set(_entry_points()))


def get_family(name: str) -> type[ParentFamily]:
    """The class of the family called ``name``; an unknown name is refused in one line.

    >>> get_family("mlp").__name__
    'MLP'
    """
    if name in BUILTIN:
        return BUILTIN[name]
    eps = _entry_points()
    if name not in eps:
        raise invalid("parent", name, "one of " + ", ".join(family_names()))
    try:
        cls = eps[name].load()
    except Exception as exc:  # a third party's code: any failure to import is a bad family name
        raise ConfigError(f"parent: cannot load {name!r} ({describe(exc)}); allowed: one of {', '.join(family_names())}") from None
    if not (isinstance(cls, type) and issubclass(cls, ParentFamily)) or inspect.isabstract(cls):
        raise ConfigError(f"parent: {name!r} is not a sparsebench.models.ParentFamily subclass that implements every method")
    return cls


def family_for(parent: "ParentSection | Mapping[str, Any]", example_shape: tuple[int, ...], n_classes: int) -> ParentFamily:
    """The parent that ``parent`` (``cfg.model``, or a stored config's plain values) describes, for data
    whose examples have ``example_shape``; refused in one line if the family cannot take that shape.

    >>> from sparsebench import ExperimentConfig
    >>> family_for(ExperimentConfig(hidden=(8, 4), sparsities=(0.5,)).model, (40,), 10)
    MLP(n_inputs=40, hidden=(8, 4), n_classes=10, activation='relu')
    """
    values = parent if isinstance(parent, Mapping) else parent.values()
    family = get_family(family_name(parent))
    family.check_shape(tuple(example_shape))
    return family.from_config(values, tuple(example_shape), n_classes)
