"""``sparsebench merge A.db B.db ... --into ALL.db``: several stores, one result.

Every experiment of every source is copied into ALL.db with its trials (curves, masks,
original numbers and timings) and scored candidates; an experiment already there (same
config hash) gains only the trials it lacks. Nothing is stored twice.

A trial present in two places is checked (identity.py): one experiment's trial stored in
two stores, or one trial identity (same data, parent, training, method, sparsity, seed)
in two experiments. Computed in the same environment (software, hardware, device,
threads), determinism says their numbers are equal: if they are not, the merge is
refused in one line naming the trial. Computed in different environments, both are
kept where they belong and the difference is reported: their numbers agree only to
float tolerance.

Studies: experiments whose configs differ only in seeds, sparsities or methods, on the
same data, are one study. For each study the merge also stores the *union*
experiment (every seed, sparsity and method of its members) when the study's trials
hold all of it: it is then exactly the experiment one run with everything would have
stored, and reports and exports as one. When they do not, running the union config
into ALL.db trains only the trials missing (a run reuses stored trials of the same
identity and environment).

The merge is one transaction, tried first on a copy in memory: a refused or failed
merge leaves ALL.db as it was (a new ALL.db is not created).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Sequence

from .errors import SparsebenchError, StoreError
from .store import CURVE_COLUMNS, TRIAL_COLUMNS, Store, check_store_file, is_store_file, store_errors

#: Config fields that say which trials an experiment holds; experiments differing only in these are one study.
DESIGN_FIELDS = ("seeds", "sparsities", "methods", "method_specs")
#: A trial's stored results: what two copies of one trial must agree on (timings and provenance aside).
RESULT_COLUMNS = tuple(c for c in TRIAL_COLUMNS if c not in (
    "method", "role", "candidate", "sparsity", "seed", "train_seconds", "selection_seconds", "identity", "environment",
    "trained_in"))


@dataclass
class MergeReport:
    """What a merge did; ``lines()`` is what the command prints."""

    experiments_added: int = 0
    trials_added: int = 0
    duplicates: int = 0
    candidates_added: int = 0
    #: One line per trial kept from two environments (different hardware, software or threads).
    other_environments: list[str] = field(default_factory=list)
    #: One line per study of several experiments.
    studies: list[str] = field(default_factory=list)

    def lines(self, into: str) -> list[str]:
        head = (f"merged into {into}: {_count(self.experiments_added, 'experiment')} and "
                f"{_count(self.trials_added, 'trial')} added, {_count(self.duplicates, 'trial')} already there")
        return [head, *self.other_environments, *self.studies]


def merge_stores(sources: Sequence[str | os.PathLike], into: str | os.PathLike) -> MergeReport:
    """Merge the stores ``sources`` into ``into`` (created if missing); see the module's docstring."""
    into_text = os.fsdecode(os.fspath(into))
    names = [os.fsdecode(os.fspath(s)) for s in sources]
    if not names:
        raise StoreError("merge: got no store to merge; allowed: one or more sparsebench stores, then --into ALL.db")
    if into_text == ":memory:":
        raise StoreError("merge: --into ':memory:' keeps nothing; allowed: a file path")
    for name in names:
        with store_errors(name):
            if not check_store_file(name, for_writing=False):
                raise StoreError(f"store: {name!r} does not exist; allowed: a store written by `sparsebench run`")
        if is_store_file(name, into_text):
            raise StoreError(f"merge: {name!r} is the store merged into; allowed: --into another path than the sources")
    with store_errors(into_text):
        existed = check_store_file(into_text)
    opened: list[tuple[str, Store]] = []
    try:
        for name in names:
            with store_errors(name):
                opened.append((name, Store(name, create=False)))
        _dry_run(opened, into_text, existed)
        try:
            with store_errors(into_text), Store(into_text) as target:
                with target.transaction():
                    report = _merge(target, opened, into_text)
                target.checkpoint()
        except BaseException:
            if not existed:
                _remove_new_store(into_text)
            raise
    finally:
        for _, st in opened:
            st.close()
    return report


def _dry_run(sources: list[tuple[str, Store]], into: str, existed: bool) -> None:
    """The whole merge on a copy in memory of ``into``, so that a refusal changes no file (not even the
    upgrade of an older schema that opening ``into`` for writing would make)."""
    with Store(":memory:") as scratch:
        if existed:
            with store_errors(into), Store(into, create=False) as current:
                current.con.backup(scratch.con)
            scratch._initialize()  # an older schema is upgraded in the copy
        with scratch.transaction():
            _merge(scratch, sources, into)


def _remove_new_store(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.remove(path + suffix)
        except OSError:
            pass


# -- the merge itself, inside one transaction of the target ------------------------------------
def _merge(target: Store, sources: list[tuple[str, Store]], into: str) -> MergeReport:
    report = MergeReport()
    origin: dict[int, str] = {}  # trial id in the target -> the store it came from in this merge
    grown: set[int] = set()  # experiments of the target that gained trials
    for name, source in sources:
        for row in source.con.execute(
            "SELECT id, config_hash, config_json, created_at, software, data_fingerprint, data_stats FROM experiments ORDER BY id"
        ).fetchall():
            before = report.trials_added
            target_id = _merge_experiment(target, source, name, into, row, report, origin)
            if report.trials_added > before:
                grown.add(target_id)
    for experiment_id in sorted(grown):
        _report_mixed_environments(target.con, experiment_id, report)
    _combine_studies(target, report)
    return report


def _report_mixed_environments(con: sqlite3.Connection, experiment_id: int, report: MergeReport) -> None:
    """Say so when an experiment now holds trials computed in several environments (not silently mixed)."""
    environments = [r[0] for r in con.execute(
        "SELECT DISTINCT environment FROM trials WHERE experiment_id = ? AND environment IS NOT NULL ORDER BY environment",
        (experiment_id,))]
    if len(environments) > 1:
        config_hash = con.execute("SELECT config_hash FROM experiments WHERE id = ?", (experiment_id,)).fetchone()[0]
        report.other_environments.append(
            f"experiment {config_hash} now holds trials computed on {len(environments)} different "
            f"{_environment_difference(environments[0], environments[1])}: they agree only to float tolerance")


def _merge_experiment(target: Store, source: Store, name: str, into: str, row: tuple, report: MergeReport,
                      origin: dict[int, str]) -> int:
    """Copy one experiment of ``source`` and what of it the target lacks; returns its id in the target."""
    source_id, config_hash, config_json, created_at, software, fingerprint, stats = row
    con = target.con
    found = con.execute("SELECT id, data_fingerprint FROM experiments WHERE config_hash = ?", (config_hash,)).fetchone()
    if found is None:
        cur = con.execute(
            "INSERT INTO experiments (config_hash, config_json, created_at, software, data_fingerprint, data_stats) "
            "VALUES (?, ?, ?, ?, ?, ?)", (config_hash, config_json, created_at, software, fingerprint, stats))
        target_id = cur.lastrowid
        report.experiments_added += 1
    else:
        target_id, recorded = found
        if recorded and fingerprint and recorded != fingerprint:
            raise StoreError(
                f"merge: experiment {config_hash} was run on different data in {name} (fingerprint {fingerprint[:12]}) "
                f"than in {into} or an earlier store (fingerprint {recorded[:12]}); nothing was merged; allowed: stores "
                "whose experiments of one config were run on the same data")
        if not recorded and fingerprint:
            con.execute("UPDATE experiments SET data_fingerprint = ?, data_stats = ? WHERE id = ?", (fingerprint, stats, target_id))
    columns = list(TRIAL_COLUMNS)
    for trial in source.con.execute(
        f"SELECT id, {', '.join(columns)}, created_at FROM trials WHERE experiment_id = ? ORDER BY id", (source_id,)
    ).fetchall():
        values = dict(zip(["id", *columns, "created_at"], trial))
        values["trained_in"] = values["trained_in"] or config_hash
        curves = source.con.execute(
            f"SELECT {', '.join(CURVE_COLUMNS)} FROM curves WHERE trial_id = ? ORDER BY epoch", (values["id"],)).fetchall()
        _merge_trial(con, target_id, config_hash, name, into, values, curves, report, origin)
    before = con.total_changes
    con.executemany(
        "INSERT INTO candidates (experiment_id, method, sparsity, seed, idx, score, chosen, mask) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [(target_id, *r) for r in source.con.execute(
            "SELECT method, sparsity, seed, idx, score, chosen, mask FROM candidates WHERE experiment_id = ?", (source_id,))],
    )
    report.candidates_added += con.total_changes - before
    return target_id


def _merge_trial(con: sqlite3.Connection, target_id: int, config_hash: str, name: str, into: str, values: dict,
                 curves: list[tuple], report: MergeReport, origin: dict[int, str]) -> None:
    key = tuple(values[c] for c in ("method", "role", "candidate", "sparsity", "seed"))
    where = f"experiment {config_hash}: trial {_describe(values)}"
    same = con.execute(
        "SELECT id FROM trials WHERE experiment_id = ? AND method = ? AND role = ? AND candidate = ? AND sparsity = ? AND seed = ?",
        (target_id, *key)).fetchone()
    if same is not None:
        report.duplicates += 1
        _check_agreement(con, same[0], values, curves, where, origin.get(same[0], into), name, report, kept="both")
        return
    # One identity in another experiment of the target: the same computation, so the same numbers.
    if values["identity"] and values["environment"]:
        for (other,) in con.execute(
            "SELECT id FROM trials WHERE identity = ? AND role = ? AND candidate = ? AND experiment_id != ?",
            (values["identity"], values["role"], values["candidate"], target_id)).fetchall():
            other_hash = con.execute("SELECT e.config_hash FROM trials t JOIN experiments e ON e.id = t.experiment_id "
                                     "WHERE t.id = ?", (other,)).fetchone()[0]
            _check_agreement(con, other, values, curves, f"{where} (also in experiment {other_hash})",
                             origin.get(other, into), name, report, kept="each")
    columns = list(TRIAL_COLUMNS)
    cur = con.execute(
        f"INSERT INTO trials (experiment_id, {', '.join(columns)}, created_at) VALUES (?, {', '.join('?' * len(columns))}, ?)",
        [target_id, *(values[c] for c in columns), values["created_at"]])
    con.executemany(
        f"INSERT INTO curves (trial_id, {', '.join(CURVE_COLUMNS)}) VALUES (?, {', '.join('?' * len(CURVE_COLUMNS))})",
        [(cur.lastrowid, *c) for c in curves])
    origin[cur.lastrowid] = name
    report.trials_added += 1


def _describe(values: dict) -> str:
    sparsity = f"sparsity {values['sparsity']:g}"
    probe = f", probe candidate {values['candidate']}" if values["role"] == "probe" else ""
    return f"{values['method']} at {sparsity}, seed {values['seed']}{probe}"


def _check_agreement(con: sqlite3.Connection, stored_id: int, values: dict, curves: list[tuple], where: str,
                     first: str, second: str, report: MergeReport, kept: str) -> None:
    """Refuse two copies of one trial computed in one environment with different numbers; report
    two computed in different environments (or unknown ones) whose numbers differ."""
    stored = dict(zip(["environment", *RESULT_COLUMNS], con.execute(
        f"SELECT environment, {', '.join(RESULT_COLUMNS)} FROM trials WHERE id = ?", (stored_id,)).fetchone()))
    stored_curves = con.execute(f"SELECT {', '.join(CURVE_COLUMNS)} FROM curves WHERE trial_id = ? ORDER BY epoch",
                                (stored_id,)).fetchall()
    differs = [c for c in RESULT_COLUMNS if stored[c] != values[c]] + (["curves"] if stored_curves != curves else [])
    if not differs:
        return
    first_column = differs[0]
    shown = "" if first_column == "curves" or first_column == "mask" else f" ({first_column} {stored[first_column]!r} vs {values[first_column]!r})"
    if stored["environment"] and stored["environment"] == values["environment"]:
        raise StoreError(
            f"merge: {where} has different numbers in {first} and {second}{shown} though computed with the same "
            "software, hardware and threads; determinism says they must agree; nothing was merged; allowed: stores "
            "whose shared trials agree (recompute the trial, or leave one store out)")
    environments = _environment_difference(stored["environment"], values["environment"])
    what = "kept the first" if kept == "both" else "each kept in its own experiment"
    report.other_environments.append(
        f"{where}: {first} and {second} computed it on different {environments}; their numbers differ{shown} "
        f"(they agree only to float tolerance); {what}")


def _environment_difference(a: str | None, b: str | None) -> str:
    if not a or not b:
        return "or unrecorded hardware and software"
    left, right = json.loads(a), json.loads(b)
    keys = sorted(k for k in set(left) | set(right) if left.get(k) != right.get(k))
    return "hardware and software (" + ", ".join(f"{k} {left.get(k)!r} vs {right.get(k)!r}" for k in keys) + ")"


# -- studies ---------------------------------------------------------------------------------
def study_key(config: dict, fingerprint: str | None) -> str:
    """What the experiments of one study share: every config value but the design, and the data."""
    from .config import ExperimentConfig

    unhashed = {f.name for f in dataclasses.fields(ExperimentConfig) if not f.metadata.get("hashed", True)}
    rest = {k: v for k, v in config.items() if k not in DESIGN_FIELDS and k not in unhashed}
    return json.dumps([rest, fingerprint], sort_keys=True)


def union_config(configs: list[dict]) -> dict | None:
    """The config holding every seed, sparsity and method of ``configs`` (one study); None if two
    configs give one method label different methods or parameters."""
    union = dict(configs[0])
    union["seeds"] = sorted({s for c in configs for s in c.get("seeds", [])})
    union["sparsities"] = sorted({float(s) for c in configs for s in c.get("sparsities", [])})
    union["methods"] = sorted({m for c in configs for m in c.get("methods", [])})
    specs: dict[str, list] = {}
    for c in configs:
        for spec in c.get("method_specs", []):
            if specs.setdefault(spec[0], list(spec)) != list(spec):
                return None
    union["method_specs"] = [specs[label] for label in sorted(specs)]
    return union


def _combine_studies(target: Store, report: MergeReport) -> None:
    from .config import ExperimentConfig
    from .plan import planned_trial_count

    con = target.con
    studies: dict[str, list[tuple[int, str, dict, str | None]]] = {}
    for exp_id, config_hash, config_json, software, fingerprint in con.execute(
        "SELECT id, config_hash, config_json, software, data_fingerprint FROM experiments ORDER BY id").fetchall():
        config = json.loads(config_json)
        studies.setdefault(study_key(config, fingerprint), []).append((exp_id, config_hash, config, software))
    for members in studies.values():
        if len(members) < 2:
            continue
        ids = ", ".join(str(m[0]) for m in members)
        union = union_config([m[2] for m in members])
        try:
            cfg = None if union is None else ExperimentConfig.from_dict(union)
        except SparsebenchError:
            cfg = None
        if cfg is None:
            report.studies.append(f"experiments {ids} differ only in seeds, sparsities or methods, but their methods cannot be "
                                  "combined (one label, two methods); kept as they are")
            continue
        union_hash = cfg.config_hash()
        existing = next((m for m in members if m[1] == union_hash), None)
        con.execute("SAVEPOINT union_experiment")
        if existing is None:
            softwares = {m[3] for m in members}
            fingerprint = con.execute("SELECT data_fingerprint, data_stats FROM experiments WHERE id = ?", (members[0][0],)).fetchone()
            cur = con.execute(
                "INSERT INTO experiments (config_hash, config_json, created_at, software, data_fingerprint, data_stats) "
                "VALUES (?, ?, (SELECT MIN(created_at) FROM experiments WHERE id IN (" + ids + ")), ?, ?, ?)",
                (union_hash, json.dumps(cfg.to_dict(), sort_keys=True), softwares.pop() if len(softwares) == 1 else "{}", *fingerprint))
            union_id = cur.lastrowid
        else:
            union_id = existing[0]
        target._adopt_units(union_id, None)
        held = con.execute("SELECT COUNT(*) FROM trials WHERE experiment_id = ?", (union_id,)).fetchone()[0]
        planned = planned_trial_count(cfg.to_dict())
        if held < planned:
            if existing is None:
                con.execute("ROLLBACK TO union_experiment")  # no half experiment: a run of the union makes it
            con.execute("RELEASE union_experiment")
            report.studies.append(
                f"experiments {ids} are one study (they differ only in seeds, sparsities or methods); together they hold "
                f"{held} of the {planned} trials of their union: running the union into this store trains only the rest")
            continue
        con.execute("RELEASE union_experiment")
        environments = con.execute("SELECT COUNT(DISTINCT environment) FROM trials WHERE experiment_id = ?", (union_id,)).fetchone()[0]
        mixed = (f"; its trials were computed in {environments} environments (hardware, software or threads differ), "
                 "so they agree only to float tolerance") if environments > 1 else ""
        report.studies.append(
            f"experiments {ids} are one study: experiment {union_id} ({union_hash}) holds all {held} trials of their union "
            f"(seeds {_span(cfg.seeds)}, sparsities {', '.join(f'{s:g}' for s in cfg.sparsities)}, methods "
            f"{', '.join(cfg.methods)}){mixed}")


def _span(values: Sequence[Any]) -> str:
    return ", ".join(str(v) for v in values)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
