"""Probes of any search (issue 18, item 4): evolution, trained-search and a user's method train N of their other
candidates too, and the predictiveness analysis reads each search's own ranking score."""

from __future__ import annotations

import pandas as pd
import pytest

import sparsebench
from sparsebench.analysis import within_seed_predictiveness
from sparsebench.errors import ConfigError, PluginError
from sparsebench.methods import Method, Selection
from sparsebench.methods.evolution import Evolution
from sparsebench.methods.registry import _METHODS, register_method
from sparsebench.methods.trained_search import TrainedSearch
from sparsebench.plan import WorkGroup


def test_every_search_trains_its_probes_and_is_analysed_by_its_own_score(tmp_path, tiny_dict):
    db = tmp_path / "p.db"
    config = {**tiny_dict, "methods": {
        "random": {}, "evolution": {"probe": 2}, "ts": {"method": "trained-search", "candidates": 3, "epochs": 1, "probe": 2}}}
    trials = sparsebench.run(config, store=db, progress=False)
    candidates = sparsebench.api.load_candidates(db)
    probes = trials[trials["role"] == "probe"]
    # Per seed and sparsity: evolution and ts 2 each (their own probe), random none.
    counts = probes.groupby(["method", "seed", "sparsity"]).size()
    assert set(counts.index.get_level_values("method")) == {"evolution", "ts"} and set(counts) == {2}
    for (label, seed, sparsity), group in trials[trials["method"].isin(["evolution", "ts"])].groupby(
            ["method", "seed", "sparsity"]):
        chosen = group.loc[group["role"] == "selected", "candidate"].item()
        assert len(set(group["candidate"])) == 3 and chosen not in set(group.loc[group["role"] == "probe", "candidate"])
        scored = candidates[(candidates.method == label) & (candidates.seed == seed) & (candidates.sparsity == sparsity)]
        by_index = scored.set_index("idx")["score"]
        # search_score: the value the search ranked the trial's mask by, read from its stored candidates.
        assert group["search_score"].tolist() == [by_index[c] for c in group["candidate"]]
    ts = trials[trials["method"] == "ts"]
    # init_score stays the loss at initialization (score_name); what the search ranked by is search_score.
    assert set(ts["score_name"]) == {"loss"} and set(ts["ranked_by"]) == {"trained-accuracy"}
    assert ts["search_score"].between(0, 1).all()  # a validation accuracy after brief training
    evolution = trials[trials["method"] == "evolution"]
    assert set(evolution["ranked_by"]) == set(evolution["score_name"]) == {"loss"}
    table = within_seed_predictiveness(trials)
    assert set(zip(table["method"], table["score_name"])) == {("evolution", "loss"), ("ts", "trained-accuracy")}


def test_the_analysis_ranks_trained_search_by_its_search_score_not_its_initial_loss():
    # Initial losses say nothing; the accuracies after brief training order the final accuracies exactly.
    rows = [dict(method="ts", status="done", sparsity=0.9, seed=seed, role="selected" if i == 0 else "probe",
                 candidate=i, score_name="loss", ranked_by="trained-accuracy", init_score=2.3, search_score=0.5 - i / 10,
                 final_test_acc=0.8 - i / 100) for seed in range(3) for i in range(4)]
    overall = within_seed_predictiveness(pd.DataFrame(rows)).set_index("scope").loc["overall"]
    assert overall["mean_rho"] == 1.0 and overall["mean_rho_useful"] == 1.0


def test_the_flat_probe_is_random_search_s_default_only():
    group = WorkGroup(0.5, (0, 1), ("evolution", "random-search", "trained-search", "ts"), 3,
                      (("ts", "trained-search", '{"probe":1}'),))
    assert [group.probes_for(m) for m in group.methods] == [0, 3, 0, 1]
    assert group.n_trials == (4 + 3 + 1) * 2


@pytest.mark.parametrize("flat, methods, words", [
    # a flat probe with no search that takes it is refused, not silently ignored
    (2, {"random": {}, "evolution": {}}, "probe: got 2; allowed: 0 unless methods include random-search"),
    (0, {"random": {}, "evo": {"method": "evolution", "candidates": 2, "probe": 2}},
     "method 'evo' (evolution) parameter probe: got 2; allowed: at most candidates - 1 = 1"),
    (0, {"random": {}, "ts": {"method": "trained-search", "probe": -1}}, "method 'ts' parameter probe: got -1; allowed: an integer in"),
    (0, {"random": {}, "ts": {"method": "trained-search", "probe": True}}, "method 'ts' parameter probe: got True; allowed: an integer in"),
])
def test_a_probe_no_search_can_train_is_refused_in_one_line(tiny_dict, flat, methods, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        sparsebench.ExperimentConfig.from_dict({**tiny_dict, "probe": flat, "methods": methods})


def test_probing_a_search_changes_none_of_its_choices(tmp_path, tiny_dict):
    """probe says what is trained besides, not how the mask is chosen: the selected trials are the same bits."""
    columns = ["method", "sparsity", "seed", "candidate", "final_test_acc", "init_score", "search_score"]
    selected = {}
    for probe in (0, 2):
        methods = {"random": {}, "evolution": {"probe": probe}, "trained-search": {"probe": probe}}
        trials = sparsebench.run({**tiny_dict, "methods": methods}, store=tmp_path / f"{probe}.db", progress=False)
        chosen = trials[trials["role"] == "selected"][columns]
        selected[probe] = chosen.sort_values(columns[:3]).reset_index(drop=True)
    pd.testing.assert_frame_equal(selected[0], selected[2])


def test_probe_parameters_are_checked():
    assert Evolution(candidates=16, probe=15).probe == 15
    assert TrainedSearch(candidates=4, probe=3).probe == 3
    for make in (lambda: Evolution(candidates=16, probe=16), lambda: TrainedSearch(candidates=4, probe=4)):
        with pytest.raises(ConfigError, match="probe: got .*; allowed: at most candidates - 1"):
            make()
    with pytest.raises(ConfigError, match="probe: got -1; allowed: an integer in"):
        TrainedSearch(probe=-1)


class _ShortSearch(Method):
    """A user's search with a probe parameter that returns fewer other candidates than its probe."""

    def __init__(self, probe: int = 0):
        self.probe = probe

    def select(self, ctx):
        masks = ctx.sample(2)
        return Selection(masks[0], candidates=masks, scores=[1.0, 2.0], chosen=0)


@pytest.fixture
def short_search():
    register_method("short-search")(_ShortSearch)
    yield
    _METHODS.pop("short-search", None)


def test_a_users_search_with_too_few_candidates_for_its_probe_is_one_line(tmp_path, tiny_dict, short_search):
    config = {**tiny_dict, "methods": {"random": {}, "short-search": {"probe": 3}}}
    with pytest.raises(PluginError, match="its probe is 3 but its Selection has 1 other candidates"):
        sparsebench.run(config, store=tmp_path / "u.db", progress=False)
    # probe 1: its other candidate is trained as a probe
    trials = sparsebench.run({**config, "methods": {"random": {}, "short-search": {"probe": 1}}},
                             store=tmp_path / "v.db", progress=False)
    assert (trials["role"] == "probe").sum() == len(tiny_dict["seeds"]) * len(tiny_dict["sparsities"])


NINE = """
dataset = "mnist1d"
parent = "{parent}"
hidden = [8, 8, 8]
seeds = 2
sparsities = [0.5, 0.9]
epochs = 2
candidates = 4
probe = 2

[methods.dense]
[methods.random]
[methods.random-search]
[methods.rs-naswot]
method = "random-search"
score = "naswot"
[methods.magnitude]
[methods.snip]
[methods.synflow]
[methods.evolution]
probe = 2
[methods.trained-search]
probe = 2
"""


@pytest.mark.parametrize("parent", ["mlp", "cnn1d"])
def test_the_issues_nine_methods_run_from_one_config_and_the_leaderboard_lists_them_all(tmp_path, cli, parent):
    config = tmp_path / "m.toml"
    config.write_text(NINE.format(parent=parent))
    db = tmp_path / "n.db"
    code, _, err = cli("run", "--config", str(config), "--store", str(db), "--no-progress")
    assert code == 0, err
    code, _, err = cli("report", "--store", str(db), "--out", str(tmp_path / "rep"))
    assert code == 0, err
    markdown = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8").replace("\\_", "_")
    board = markdown.split("## Leaderboard", 1)[1].split("\n## ", 1)[0]
    listed = [line.split(" | ")[1] for line in board.splitlines() if line.startswith("| ") and " | " in line[2:]]
    assert sorted(m.split(" (")[0] for m in listed if m != "method") == sorted(
        ["dense", "random", "random-search", "rs-naswot", "magnitude", "snip", "synflow", "evolution", "trained-search"])
    predictive = markdown.split("## Is the search score predictive?", 1)[1].split("\n## ", 1)[0]
    for label in ("random-search", "rs-naswot", "evolution", "trained-search"):
        assert f"{label}: Within seeds" in predictive


class _ProbedByDefault(_ShortSearch):
    """A user's search whose constructor probes one candidate unless told otherwise."""

    def __init__(self, probe: int = 1):
        self.probe = probe


def test_a_users_non_zero_probe_default_is_trained_and_written_into_its_parameters(tmp_path, tiny_dict):
    register_method("probed-search")(_ProbedByDefault)
    try:
        config = sparsebench.ExperimentConfig.from_dict({**tiny_dict, "methods": {"random": {}, "probed-search": {}}})
        assert dict((label, params) for label, _, params in config.method_specs) == {"probed-search": '{"probe":1}'}
        trials = sparsebench.run(config, store=tmp_path / "d.db", progress=False)
    finally:
        _METHODS.pop("probed-search", None)
    assert (trials["role"] == "probe").sum() == len(tiny_dict["seeds"]) * len(tiny_dict["sparsities"])
