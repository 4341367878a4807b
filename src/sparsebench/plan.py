"""The plan: which trials an experiment needs, grouped into units of stacked work.

A work group is all trials of one shape: the dense parents of every seed, or
every non-dense trial at one sparsity across seeds. A group is trained in one
stack and stored in one transaction, so it is either stored whole or not at
all, and a resumed run recomputes exactly what was missing. It is also the
unit that concurrent runs of one experiment claim from each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .config import ExperimentConfig

from .names import DENSE, RANDOM_SEARCH


@dataclass(frozen=True)
class WorkGroup:
    """Trials sharing one compacted shape. ``sparsity`` is None for the dense parents."""

    sparsity: float | None
    seeds: tuple[int, ...]
    methods: tuple[str, ...]
    probes: int

    @property
    def label(self) -> str:
        return DENSE if self.sparsity is None else f"s={self.sparsity:g}"

    @property
    def key(self) -> str:
        """The group's name in the store's claims: exact (``repr`` of the sparsity), unlike ``label``."""
        return DENSE if self.sparsity is None else f"sparsity={self.sparsity!r}"

    @property
    def n_trials(self) -> int:
        per_seed = len(self.methods) + (self.probes if RANDOM_SEARCH in self.methods else 0)
        return per_seed * len(self.seeds)


def plan(cfg: ExperimentConfig) -> list[WorkGroup]:
    """All work groups of ``cfg``, dense first, then by increasing sparsity."""
    return plan_groups(cfg.seeds, cfg.sparsities, cfg.methods, cfg.probe)


def plan_groups(seeds: Sequence[int], sparsities: Sequence[float], methods: Sequence[str], probe: int) -> list[WorkGroup]:
    """The work groups of these plain values (no validation: also used on stored configs)."""
    seeds = tuple(seeds)
    groups = []
    if DENSE in methods:
        groups.append(WorkGroup(None, seeds, (DENSE,), 0))
    sparse_methods = tuple(m for m in methods if m != DENSE)
    if sparse_methods:
        for s in sparsities:
            groups.append(WorkGroup(float(s), seeds, sparse_methods, probe))
    return groups


def planned_trial_count(config: Mapping[str, Any]) -> int:
    """Trials a stored config (plain values) plans for. Names are not resolved, so
    nothing a store names is imported."""
    groups = plan_groups(config["seeds"], config["sparsities"], config["methods"], config.get("probe", 0))
    return sum(g.n_trials for g in groups)
