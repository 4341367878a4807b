"""Plan → select masks → train → store, resumable: the experiment pipeline.

>>> import sparsebench
>>> cfg = sparsebench.ExperimentConfig(seeds=(0,), sparsities=(0.9,), epochs=1, candidates=4)
>>> trials = sparsebench.run(cfg, store=":memory:", progress=False)
>>> sorted(trials["method"].unique())
['dense', 'random', 'random-search']
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import pandas as pd
import torch
from tqdm import tqdm

from .config import ExperimentConfig
from .data.registry import DatasetSplits, load_dataset
from .engine.common import TrainResult, TrainSettings
from .engine.reference import train_reference
from .engine.stacked import evaluate_stacked, train_stacked
from .errors import ConfigError
from .methods.base import Selection, SelectionContext
from .methods.registry import get_method
from .models.compaction import gather_stacked
from .models.mask import NodeMask
from .models.mlp import Layer, MLPSpec, count_params, init_parent
from .plan import WorkGroup, plan
from .seeding import generator
from .store import CandidateRecord, Store, TrialRecord


@dataclass
class Network:
    """One network of a work group, before training."""

    method: str
    role: str
    candidate: int
    seed: int
    mask: NodeMask


def as_config(config: ExperimentConfig | Mapping[str, Any] | None) -> ExperimentConfig:
    if config is None:
        return ExperimentConfig()
    if isinstance(config, ExperimentConfig):
        return config
    return ExperimentConfig.from_dict(config)


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: got 'cuda' but no CUDA device is available; allowed: cpu")
    return torch.device(name)


def run(
    config: ExperimentConfig | Mapping[str, Any] | None = None,
    store: str | os.PathLike = "sparsebench.db",
    progress: bool = True,
) -> pd.DataFrame:
    """Run (or resume) an experiment and return its trials as a DataFrame.

    Trials already in ``store`` for the same config are not run again.

    >>> df = run({"seeds": 1, "sparsities": [0.5], "epochs": 1, "candidates": 2}, store=":memory:", progress=False)
    >>> len(df)
    3
    """
    cfg = as_config(config)
    device = resolve_device(cfg.device)
    with Store(store) as st:
        experiment_id = st.experiment_id(cfg.config_hash(), cfg.to_dict())
        pending = pending_groups(cfg, st, experiment_id)
        if pending:
            torch.set_num_threads(os.cpu_count() or 1)
            data = load_dataset(cfg.dataset, cfg.data_seed, cfg.val_fraction).to(device)
            spec = MLPSpec(data.n_features, cfg.hidden, data.n_classes, cfg.activation)
            total = sum(g.n_trials for g in pending) * cfg.epochs
            with tqdm(total=total, desc="training", unit="net-epoch", disable=not progress, dynamic_ncols=True) as bar:
                for group in pending:
                    bar.set_postfix_str(group.label)
                    trials, candidates = run_group(cfg, group, data, spec, device, bar.update)
                    st.save_group(experiment_id, trials, candidates)
        return st.trials(experiment_id)


def pending_groups(cfg: ExperimentConfig, st: Store, experiment_id: int) -> list[WorkGroup]:
    """The work groups of ``cfg`` not yet stored whole."""
    stored: dict[tuple[bool, float], int] = {}
    for method, _role, _cand, sparsity, _seed in st.finished_keys(experiment_id):
        key = (method == "dense", sparsity)
        stored[key] = stored.get(key, 0) + 1
    pending = []
    for g in plan(cfg):
        key = (True, 0.0) if g.sparsity is None else (False, g.sparsity)
        if stored.get(key, 0) < g.n_trials:
            pending.append(g)
    return pending


def select_networks(
    cfg: ExperimentConfig, group: WorkGroup, parent: list[Layer], seed: int, data: DatasetSplits, spec: MLPSpec
) -> tuple[list[Network], list[CandidateRecord]]:
    """Ask each method of the group for its mask at this seed; add random-search's probes."""
    if group.sparsity is None:
        return [Network("dense", "selected", -1, seed, NodeMask.full(spec.hidden))], []
    networks, candidates = [], []
    for name in group.methods:
        ctx = SelectionContext(
            parent=parent,
            spec=spec,
            sparsity=group.sparsity,
            seed=seed,
            candidates=cfg.candidates,
            score_name=cfg.score,
            x_train=data.x_train,
            y_train=data.y_train,
            x_val=data.x_val,
            y_val=data.y_val,
            generator=generator(seed, "method", name, group.sparsity),
        )
        selection: Selection = get_method(name)().select(ctx)
        if selection.mask is None:
            raise ConfigError(f"method: {name!r} returned no mask at sparsity {group.sparsity}; allowed: a NodeMask")
        selection.mask.check()
        networks.append(Network(name, "selected", selection.chosen, seed, selection.mask))
        candidates += [
            CandidateRecord(name, group.sparsity, seed, i, score, i == selection.chosen, m.to_bytes())
            for i, (m, score) in enumerate(zip(selection.candidates, selection.scores))
        ]
        if name == "random-search" and group.probes:
            others = [i for i in range(len(selection.candidates)) if i != selection.chosen]
            order = torch.randperm(len(others), generator=generator(seed, "probe", group.sparsity)).tolist()
            for i in sorted(others[j] for j in order[: group.probes]):
                networks.append(Network(name, "probe", i, seed, selection.candidates[i]))
    return networks, candidates


def run_group(
    cfg: ExperimentConfig,
    group: WorkGroup,
    data: DatasetSplits,
    spec: MLPSpec,
    device: torch.device,
    on_progress: Callable[[int], None] = lambda n: None,
) -> tuple[list[TrialRecord], list[CandidateRecord]]:
    """Select, train and evaluate every network of one work group."""
    settings = TrainSettings.from_config(cfg)
    parents = {seed: [Layer(w.to(device), b.to(device)) for w, b in init_parent(spec, seed)] for seed in group.seeds}
    networks: list[Network] = []
    candidates: list[CandidateRecord] = []
    for seed in group.seeds:
        nets, cands = select_networks(cfg, group, parents[seed], seed, data, spec)
        networks += nets
        candidates += cands
    stacked = _stack(parents, networks)
    init_loss, init_acc = evaluate_stacked(stacked, data.x_val, data.y_val, cfg.activation)
    init_scores = (init_loss if cfg.score == "loss" else init_acc).tolist()

    if cfg.engine == "stacked":
        results = train_stacked(stacked, [n.seed for n in networks], data, settings, on_epoch=lambda n: on_progress(n * 1))
    else:
        results = []
        for net in networks:
            result, _ = train_reference(parents[net.seed], net.mask, net.seed, data, settings)
            results.append(result)
            on_progress(cfg.epochs)
    trials = [_record(cfg, group, spec, net, res, score) for net, res, score in zip(networks, results, init_scores)]
    return trials, candidates


def _stack(parents: dict[int, list[Layer]], networks: list[Network]) -> list[Layer]:
    """Compacted initial weights of all networks, stacked (each from its own seed's parent)."""
    per_net = [gather_stacked(parents[n.seed], [n.mask]) for n in networks]
    return [
        Layer(torch.cat([p[i].weight for p in per_net]), torch.cat([p[i].bias for p in per_net]))
        for i in range(len(per_net[0]))
    ]


def _finite_or_none(x: float) -> float | None:
    return x if x == x and abs(x) != float("inf") else None


def _record(cfg: ExperimentConfig, group: WorkGroup, spec: MLPSpec, net: Network, res: TrainResult, init_score: float) -> TrialRecord:
    dense = group.sparsity is None
    kept = net.mask.kept_per_layer
    return TrialRecord(
        method=net.method,
        role=net.role,
        candidate=net.candidate,
        sparsity=0.0 if dense else group.sparsity,
        seed=net.seed,
        weight_sparsity=net.mask.weight_sparsity(spec.n_inputs, spec.n_classes),
        kept_nodes=json.dumps(list(kept)),
        n_params=count_params((spec.n_inputs, *kept, spec.n_classes)),
        mask=None if dense else net.mask.to_bytes(),
        init_score=_finite_or_none(init_score),
        status="diverged" if res.diverged else "done",
        diverged_epoch=res.diverged_epoch,
        epochs=cfg.epochs,
        final_test_loss=_finite_or_none(res.final_test_loss),
        final_test_acc=_finite_or_none(res.final_test_acc),
        best_epoch=res.best_epoch or None,
        best_val_acc=_finite_or_none(res.best_val_acc),
        best_test_loss=_finite_or_none(res.best_test_loss),
        best_test_acc=_finite_or_none(res.best_test_acc),
        train_seconds=res.seconds,
        curves=[
            (e + 1, res.train_loss[e], res.train_acc[e], res.val_loss[e], res.val_acc[e]) for e in range(len(res.train_loss))
        ],
    )
