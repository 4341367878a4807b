"""A trial's identity: exactly what determines its numbers, so that a stored trial can be reused.

Two parts, stored with every trial (schema 8):

``identity``
    A hash of *what* is computed: the data (its fingerprint and the config's data
    fields), the parent (family and its options), the training settings, the engine
    and device, the search settings a method reads (``candidates``, ``score``,
    ``probe``; the dense parent reads only ``score``, which ranks its initial score),
    the method's registered name and canonical parameters (not its label: relabelling
    changes no number), the number of probes trained beside it, the sparsity and the
    seed. Every trial of one *selection unit* (one method at one sparsity and seed:
    its selected trial and its probes) shares it; with ``role`` and ``candidate`` it
    names one trial.

``environment``
    *Where* it was computed: the software versions the run records
    (``runner.software_versions``, whatever keys it holds, so keys added later join
    the identity), the device and hardware, the intra-op thread count and the MKL
    reproducibility mode. Numbers are bit-identical only within one environment.

A run reuses a stored unit (from any experiment of the store) whose identity and
environment both equal its own; ``sparsebench merge`` refuses two trials of one
identity and environment with different numbers. Trials stored before schema 8
have neither (NULL) and are never reused.
"""

from __future__ import annotations

import hashlib
import json
import platform
from typing import Any, Mapping

from .config import (
    LEGACY_VALUES, SECTION_FIELDS, DataSection, DesignSection, ExecutionSection, ExperimentConfig, ParentSection, SearchSection,
)
from .names import DENSE
from .plan import plan

#: Bumped when what the identity covers changes, so that older identities never match newer ones.
IDENTITY_VERSION = 1
#: Config fields that are not part of what a trial computes: where the data lies (its fingerprint is).
_UNHASHED = {f for f, v in ExperimentConfig.__dataclass_fields__.items() if not v.metadata.get("hashed", True)}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=list)


def _section(section: type, config: Mapping[str, Any]) -> dict[str, Any]:
    values = section.from_stored(config).values()
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items() if k not in _UNHASHED}


def _training(config: Mapping[str, Any]) -> dict[str, Any]:
    """The training settings of a stored config (a field it lacks: the value that reproduces its behaviour)."""
    defaults = {f.name: f.default for f in ExperimentConfig.__dataclass_fields__.values()}
    return {k: config[k] if k in config else LEGACY_VALUES.get(k, defaults[k]) for k in SECTION_FIELDS["training"]}


def probes_by_label(config: Mapping[str, Any]) -> dict[str, int]:
    """How many probes each method label of a stored config trains per (sparsity, seed)."""
    probes: dict[str, int] = {DENSE: 0}
    for group in plan(DesignSection.from_stored(config)):
        for label in group.methods:
            probes[label] = group.probes_for(label) if group.sparsity is not None else 0
    return probes


def unit_identity(
    config: Mapping[str, Any], data_fingerprint: str | None, method_name: str, method_params: str | None,
    probes: int, sparsity: float, seed: int,
) -> str | None:
    """The identity (hex) of one selection unit of an experiment's stored ``config`` on data ``data_fingerprint``;
    None without a fingerprint (nothing then proves which data it was computed on)."""
    if not data_fingerprint:
        return None
    dense = method_name == DENSE
    search = SearchSection.from_stored(config)
    design = DesignSection.from_stored(config)
    what = {
        "identity_version": IDENTITY_VERSION,
        "data": {**_section(DataSection, config), "fingerprint": data_fingerprint},
        "parent": _section(ParentSection, config),
        "training": _training(config),
        "execution": _section(ExecutionSection, config),
        # The dense parent asks no method: only its initial score's ranking (loss or accuracy) depends on search.
        "search": {"score": search.score} if dense else {"candidates": search.candidates, "score": search.score,
                                                          "probe": design.probe},
        "method": [method_name, json.loads(method_params or "{}")],
        "probes": int(probes),
        "sparsity": 0.0 if dense else float(sparsity),
        "seed": int(seed),
    }
    return hashlib.sha256(_canonical(what).encode()).hexdigest()[:32]


def hardware(device: str) -> str:
    """The processor (or GPU) that computes: numbers agree bit for bit only on the same kind."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(torch.device(device))
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{platform.machine()} {line.partition(':')[2].strip()}"
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()}".strip()


def computing_environment(software: Mapping[str, Any], device: str) -> str:
    """The environment (canonical JSON) of trials computed on ``device``: ``software`` (``runner.recorded_software``:
    the versions, kernel path, thread count and MKL mode the jobs compute with) with the device and its hardware."""
    return _canonical({"device": str(device), "hardware": hardware(str(device)), **software})
