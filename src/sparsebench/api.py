"""Reading results back: the Python side of `sparsebench list` and `export`.

>>> import sparsebench
>>> # sparsebench.load_results("runs.db")            # trials of every experiment
>>> # sparsebench.load_results("runs.db", experiment=2)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import torch

from .config import node_widths
from .models.mask import NodeMask
from .plan import planned_trial_count
from .store import Store

PathLike = str | os.PathLike


def _check_experiment(st: Store, experiment: int | None) -> None:
    """An unknown experiment id is an error, as on the command line, not an empty table."""
    if experiment is not None:
        st.config(experiment)


def load_results(store: PathLike, experiment: int | None = None) -> pd.DataFrame:
    """One row per trial (of one experiment, or of all)."""
    with Store(store, create=False) as st:
        _check_experiment(st, experiment)
        return st.trials(experiment)


def load_curves(store: PathLike, experiment: int | None = None) -> pd.DataFrame:
    """One row per (trial, epoch): train/validation loss and accuracy."""
    with Store(store, create=False) as st:
        _check_experiment(st, experiment)
        return st.curves(experiment)


def load_candidates(store: PathLike, experiment: int | None = None) -> pd.DataFrame:
    """Every candidate a search method scored, with its score and whether it was chosen."""
    with Store(store, create=False) as st:
        _check_experiment(st, experiment)
        return st.candidates(experiment)


def load_mask(store: PathLike, trial_id: int) -> NodeMask | None:
    """The ``NodeMask`` a trial trained (None for the dense parent)."""
    with Store(store, create=False) as st:
        data = st.mask_bytes(trial_id)
        if data is None:
            return None
        experiment = int(st.con.execute("SELECT experiment_id FROM trials WHERE id = ?", (trial_id,)).fetchone()[0])
        config = st.config(experiment)
    return NodeMask.from_bytes(data, node_widths(config))


#: ``flop_reduction`` and ``flops`` are empty for trials stored before schema 5 (not recorded);
#: ``candidate_evaluations`` and ``search_epochs`` (the cost of the trial's selection) before schema 6.
#: ``method`` is the method's label; ``method_name`` its registered name and ``method_params`` its
#: parameters away from their defaults (canonical JSON, ``{}`` at its defaults). ``score_name`` names
#: ``init_score``; ``search_score`` is the value the trial's search ranked its mask by (empty for a method that
#: ranks no candidates) and ``ranked_by`` names it (trained-search: "trained-accuracy").
EXPORT_COLUMNS = [
    "experiment_id", "config_hash", "dataset", "method", "method_name", "method_params", "role", "candidate", "sparsity", "weight_sparsity",
    "flop_reduction", "kept_nodes", "n_params", "flops", "seed", "candidates", "candidate_evaluations",
    "search_epochs", "score_name", "init_score", "search_score", "ranked_by", "status",
    "diverged_epoch", "epochs", "stop_epoch",
    "final_test_loss", "final_test_acc", "best_epoch", "best_val_acc", "best_test_loss", "best_test_acc",
    "threshold", "reached", "epochs_to_threshold", "auc", "convergence_split", "trial_id",
]


#: Wall-clock columns, exported only with ``timings`` (they differ between two runs of one config).
TIMING_COLUMNS = ("train_seconds", "selection_seconds")


def export_table(
    store: PathLike, experiment: int | None = None, curves: bool = False, fraction: float = 0.95, timings: bool = False
) -> pd.DataFrame:
    """The table ``sparsebench export`` writes.

    One row per trial with its test metrics and convergence metrics (epochs to
    ``fraction`` of the dense parent's final validation accuracy, censored when
    never reached, and the area under the accuracy curve, both on the split named in
    ``convergence_split``: the monitoring split when the experiment has one, else the
    validation split); or, with
    ``curves``, one row per (trial, epoch). Wall-clock ``train_seconds`` and
    ``selection_seconds`` (the method's ``select`` for this trial's mask) are left
    out unless ``timings``: everything else is identical between two runs of
    one config, so exports can be compared byte for byte. ``candidate_evaluations``
    (sub-networks the method scored to choose the mask) and ``search_epochs``
    (training epochs it spent on search) are the cost that does not depend on the machine. ``weight_sparsity`` and
    ``flop_reduction`` are the fractions of the dense parent's weights and of its FLOPs
    per example that the trial's network removes (they differ a lot for convolutional
    parents); ``flop_reduction`` and ``flops`` are empty for trials stored before schema 5.
    """
    from .analysis import convergence_metrics

    trials = load_results(store, experiment)
    curve_rows = load_curves(store, experiment)
    if curves:
        keys = trials[["trial_id", "config_hash", "dataset", "weight_sparsity", "flop_reduction"]]
        return curve_rows.merge(keys, on="trial_id", how="left")
    parts = []
    for _, part in trials.groupby("experiment_id", sort=True):
        metrics = convergence_metrics(part, curve_rows[curve_rows["experiment_id"] == part["experiment_id"].iloc[0]], fraction)
        merged = part.merge(metrics[["trial_id", "threshold", "reached", "epochs_to_threshold", "auc"]], on="trial_id", how="left")
        # Which split the convergence columns were measured on: "monitor" (selected on by no method) or "validation".
        parts.append(merged.assign(convergence_split=metrics.attrs["split"]))
    columns = EXPORT_COLUMNS + (list(TIMING_COLUMNS) if timings else [])
    table = pd.concat(parts, ignore_index=True) if parts else trials.reindex(columns=columns)
    return table[columns]


def load_subnetwork(store: PathLike, trial_id: int) -> "torch.nn.Module":
    """A trial's sub-network as a plain compact ``nn.Module`` (for the MLP an ``nn.Sequential``), with the initial
    weights it inherited from its seed's parent (weights are not stored after
    training: retrain it, or rerun the trial, to get them).

    >>> # net = sparsebench.load_subnetwork("runs.db", trial_id=5); net(x)
    """
    from .config import DataSection, ParentSection
    from .data.registry import load_dataset
    from .models.registry import family_for

    with Store(store, create=False) as st:
        row = st.con.execute("SELECT experiment_id, seed FROM trials WHERE id = ?", (trial_id,)).fetchone()
        if row is None:
            from .errors import StoreError

            raise StoreError(f"trial: got {trial_id!r}; allowed: a stored trial id")
        config = st.config(row[0])
        mask_bytes = st.mask_bytes(trial_id)
    mask = None if mask_bytes is None else NodeMask.from_bytes(mask_bytes, node_widths(config))
    # Only the examples' shape and the classes matter here: the monitoring split and standardization
    # change neither, so the splits are loaded as plainly as possible.
    source = DataSection.from_stored(config)
    data = load_dataset(source.dataset, source.data_seed, source.val_fraction, data_dir=source.data_dir)
    family = family_for(ParentSection.from_stored(config), tuple(data.x_train.shape[1:]), data.n_classes)
    return family.to_module(family.init(row[1]), mask)


#: ``list_experiments``'s status of an unfinished experiment that no live run is training.
STOPPED = "stopped: resume with the same command"


def list_experiments(store: PathLike) -> pd.DataFrame:
    """Experiments with their progress: trials stored out of trials planned, and a status.

    ``status`` is "complete"; "running" while a live run holds a claim on one of its
    work groups (a run on another machine counts as live until its lease expires);
    else "stopped: resume with the same command" (a run that was killed or
    interrupted, or one that is still loading its data).
    """
    with Store(store, create=False) as st:
        df = st.experiments()
        claims = st.claims()
    running = _experiments_with_live_claims(claims)
    rows = []
    for _, e in df.iterrows():
        cfg = e["config"]
        planned = planned_trial_count(cfg)
        complete = e["n_trials"] >= planned
        rows.append(
            {
                "experiment": e["experiment_id"],
                "config_hash": e["config_hash"],
                "created": e["created_at"],
                "dataset": cfg["dataset"],
                "methods": ",".join(cfg["methods"]),
                "seeds": len(cfg["seeds"]),
                "sparsities": ",".join(f"{s:g}" for s in cfg["sparsities"]),
                "epochs": cfg["epochs"],
                "trials": f"{e['n_trials']}/{planned}",
                "complete": complete,
                "status": "complete" if complete else "running" if e["experiment_id"] in running else STOPPED,
            }
        )
    return pd.DataFrame(rows)


def _experiments_with_live_claims(claims: pd.DataFrame, now: float | None = None) -> set[int]:
    """Experiments on which a run holds a claim that has not expired, and whose owner is not
    a process of this machine that no longer exists."""
    import time

    from .store import owner_is_gone

    now = time.time() if now is None else now
    return {int(c.experiment_id) for c in claims.itertuples() if c.expires_at > now and not owner_is_gone(c.owner)}
