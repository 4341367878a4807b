"""Reading results back: the Python side of `sparsebench list` and `export`.

>>> import sparsebench
>>> # sparsebench.load_results("runs.db")            # trials of every experiment
>>> # sparsebench.load_results("runs.db", experiment=2)
"""

from __future__ import annotations

import os

import pandas as pd

from .config import ExperimentConfig
from .models.mask import NodeMask
from .plan import planned_trial_count
from .store import Store

PathLike = str | os.PathLike


def load_results(store: PathLike, experiment: int | None = None) -> pd.DataFrame:
    """One row per trial (of one experiment, or of all)."""
    with Store(store, create=False) as st:
        return st.trials(experiment)


def load_curves(store: PathLike, experiment: int | None = None) -> pd.DataFrame:
    """One row per (trial, epoch): train/validation loss and accuracy."""
    with Store(store, create=False) as st:
        return st.curves(experiment)


def load_candidates(store: PathLike, experiment: int | None = None) -> pd.DataFrame:
    """Every candidate a search method scored, with its score and whether it was chosen."""
    with Store(store, create=False) as st:
        return st.candidates(experiment)


def load_mask(store: PathLike, trial_id: int) -> NodeMask | None:
    """The ``NodeMask`` a trial trained (None for the dense parent)."""
    with Store(store, create=False) as st:
        data = st.mask_bytes(trial_id)
        if data is None:
            return None
        experiment = int(st.con.execute("SELECT experiment_id FROM trials WHERE id = ?", (trial_id,)).fetchone()[0])
        hidden = tuple(st.config(experiment)["hidden"])
    return NodeMask.from_bytes(data, hidden)


def list_experiments(store: PathLike) -> pd.DataFrame:
    """Experiments with their progress: trials stored out of trials planned."""
    with Store(store, create=False) as st:
        df = st.experiments()
    rows = []
    for _, e in df.iterrows():
        cfg = e["config"]
        planned = planned_trial_count(ExperimentConfig.from_dict(cfg))
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
                "complete": e["n_trials"] >= planned,
            }
        )
    return pd.DataFrame(rows)
