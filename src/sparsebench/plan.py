"""The plan: which trials an experiment needs, grouped into units of stacked work.

A work group is all trials of one shape: the dense parents of every seed, or
every non-dense trial at one sparsity across seeds. A group is trained in one
stack and stored in one transaction, so it is either stored whole or not at
all, and a resumed run recomputes exactly what was missing. It is also the
unit that concurrent runs of one experiment claim from each other.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Mapping

from .config import DesignSection
from .names import DENSE, FLAT_PROBE_METHODS


@dataclass(frozen=True)
class WorkGroup:
    """Trials sharing one compacted shape. ``sparsity`` is None for the dense parents."""

    sparsity: float | None
    seeds: tuple[int, ...]
    methods: tuple[str, ...]
    probes: int
    #: Each method label's ``(registered name, canonical parameters)`` where it is not ``(label, "{}")``.
    specs: tuple[tuple[str, str, str], ...] = ()

    def method_of(self, label: str) -> tuple[str, str]:
        """The registered name and canonical parameters (JSON) of the method labelled ``label``."""
        for spec_label, name, params in self.specs:
            if spec_label == label:
                return name, params
        return label, "{}"

    def probes_for(self, label: str) -> int:
        """Scored candidates of ``label`` also trained per seed: the method's ``probe`` parameter (default: the
        flat key for random-search, ``names.FLAT_PROBE_METHODS``; 0 for any other method).

        >>> g = WorkGroup(0.5, (0,), ("evolution", "random-search", "ts"), 4, (("ts", "trained-search", '{"probe":2}'),))
        >>> g.probes_for("evolution"), g.probes_for("random-search"), g.probes_for("ts"), g.n_trials
        (0, 4, 2, 9)
        """
        name, params = self.method_of(label)
        explicit = json.loads(params).get("probe")
        if explicit is not None:
            return int(explicit)
        return self.probes if name in FLAT_PROBE_METHODS else 0

    @property
    def label(self) -> str:
        return DENSE if self.sparsity is None else f"s={self.sparsity:g}"

    @property
    def key(self) -> str:
        """The group's name in the store's claims: exact (``repr`` of the sparsity), unlike ``label``."""
        return DENSE if self.sparsity is None else f"sparsity={self.sparsity!r}"

    @property
    def n_trials(self) -> int:
        per_seed = len(self.methods) + sum(self.probes_for(m) for m in self.methods)
        return per_seed * len(self.seeds)


def plan(design: DesignSection) -> list[WorkGroup]:
    """All work groups of ``design`` (``cfg.design``), dense first, then by increasing sparsity.

    Plain values, not validated: also used on stored configs (``DesignSection.from_stored``).

    >>> [g.label for g in plan(DesignSection(seeds=(0, 1), sparsities=(0.5, 0.9), methods=("dense", "random"), probe=0))]
    ['dense', 's=0.5', 's=0.9']
    """
    seeds, methods = tuple(design.seeds), design.methods
    specs = tuple(tuple(s) for s in design.method_specs if s[0] != DENSE)
    groups = []
    if DENSE in methods:
        groups.append(WorkGroup(None, seeds, (DENSE,), 0))
    sparse_methods = tuple(m for m in methods if m != DENSE)
    if sparse_methods:
        for s in design.sparsities:
            groups.append(WorkGroup(float(s), seeds, sparse_methods, design.probe, specs))
    return groups


def planned_trial_count(config: Mapping[str, Any]) -> int:
    """Trials a stored config (plain values) plans for. Names are not resolved, so
    nothing a store names is imported."""
    return sum(g.n_trials for g in plan(DesignSection.from_stored(config)))


def remaining_parts(group: WorkGroup, stored: Mapping[tuple[str, float, int], int]) -> list[WorkGroup]:
    """What of ``group`` is still to train, given how many trials of each selection unit ``(method label,
    sparsity, seed)`` are stored (trained, or reused from another experiment): a unit is stored whole with its
    selected trial and every planned probe (``probes_for``). The seeds that lack the same methods train
    together, each seed only the methods it lacks. A group of which nothing is stored is itself.

    A unit stored in part (its selected trial without the probes a newer version plans for it) is trained
    again whole; its stored trials are kept as they are (``Store.save_group`` stores only new keys), and a
    deterministic run gives them the same numbers anyway.

    >>> g = WorkGroup(0.5, (0, 1, 2), ("random", "random-search"), 0)
    >>> [(p.seeds, p.methods) for p in remaining_parts(g, {("random", 0.5, 0): 1, ("random", 0.5, 1): 1, ("random-search", 0.5, 0): 1})]
    [((1,), ('random-search',)), ((2,), ('random', 'random-search'))]
    >>> [(p.seeds, p.methods) for p in remaining_parts(dataclasses.replace(g, probes=2), {("random", 0.5, 0): 1, ("random-search", 0.5, 0): 1})]
    [((0,), ('random-search',)), ((1, 2), ('random', 'random-search'))]
    """
    sparsity = 0.0 if group.sparsity is None else group.sparsity
    lacking: dict[tuple[str, ...], list[int]] = {}
    for seed in group.seeds:
        methods = tuple(m for m in group.methods if stored.get((m, sparsity, seed), 0) < 1 + group.probes_for(m))
        if methods:
            lacking.setdefault(methods, []).append(seed)
    if list(lacking) == [group.methods] and tuple(lacking[group.methods]) == group.seeds:
        return [group]
    parts = [dataclasses.replace(group, seeds=tuple(seeds), methods=methods) for methods, seeds in lacking.items()]
    return sorted(parts, key=lambda p: p.seeds)
