"""Issue 17, part 1: method parameters and labels ([methods.LABEL] tables, --method-param), results
calling a method by its label, and a random stream keyed by the method's name and parameters."""

import json

import pandas as pd
import pytest

import sparsebench
from sparsebench import ExperimentConfig
from sparsebench.analysis import paired_comparison
from sparsebench.analysis.leaderboard import leaderboard
from sparsebench.errors import ConfigError
from sparsebench.methods.registry import make_method

from .conftest import TINY

FLAT = {"candidates": 6, "score": "loss", "probe": 0}
RUN = ["--dataset", "digits", "--hidden", "16,16", "--seeds", "1", "--sparsities", "0.5", "--epochs", "1", "--no-progress"]


def write(tmp_path, text: str):
    path = tmp_path / "m.toml"
    path.write_text(text)
    return path


# -- the config: tables, canonical parameters, the hash --------------------------------------
def test_tables_resolve_into_labels_and_canonical_specs_that_round_trip_through_the_stored_config(tmp_path):
    path = write(tmp_path, """
seeds = 2
[methods.dense]
[methods.random]
[methods.random-search]
[methods.rs-acc]
method = "random-search"
score = "accuracy"
[methods.snip4]
method = "snip"
batches = 4
""")
    cfg = ExperimentConfig.from_sources(toml_path=path)
    assert cfg.methods == ("dense", "random", "random-search", "rs-acc", "snip4")
    assert cfg.method_specs == (("rs-acc", "random-search", '{"score":"accuracy"}'), ("snip4", "snip", '{"batches":4}'))
    stored = json.loads(json.dumps(cfg.to_dict()))  # as the store keeps it
    again = ExperimentConfig.from_dict(stored)
    assert again == cfg and again.config_hash() == cfg.config_hash()
    # the parameters reach the method's constructor, as its repr shows
    assert repr(make_method("snip4", "snip", cfg.method_specs[1][2], FLAT)) == "Snip(batches=4, batch_size=128)"
    assert repr(make_method("rs-acc", "random-search", cfg.method_specs[0][2], FLAT)) == \
        "RandomSearch(candidates=6, score='accuracy', probe=0)"


def test_a_config_of_plain_names_hashes_as_before_and_tables_at_defaults_are_the_same_experiment():
    plain = ExperimentConfig(**TINY)
    assert plain.method_specs == ()
    # the hash of the tests' tiny config before labels existed (recorded from the code of schema 6)
    assert plain.config_hash() == "18ce66388d959c10"
    tables = ExperimentConfig(**{**TINY, "methods": {"dense": {}, "random": {}, "random-search": {"candidates": 6}}})
    assert tables.method_specs == () and tables.config_hash() == plain.config_hash()
    snip = ExperimentConfig(**{**TINY, "methods": {"random": {}, "snip": {"batches": 1}}})
    assert snip.config_hash() == ExperimentConfig(**{**TINY, "methods": ("random", "snip")}).config_hash()


def test_a_parameter_or_a_label_is_part_of_the_hash():
    base = ExperimentConfig(**{**TINY, "methods": ("random", "snip")})
    params = ExperimentConfig(**{**TINY, "methods": {"random": {}, "snip": {"batches": 2}}})
    relabelled = ExperimentConfig(**{**TINY, "methods": {"random": {}, "s": {"method": "snip"}}})
    assert len({base.config_hash(), params.config_hash(), relabelled.config_hash()}) == 3


@pytest.mark.parametrize("methods, message", [
    ({"random": {}, "s": {"method": "snip", "batchez": 2}}, "method 's' parameter: got 'batchez'; allowed: one of batches, batch_size"),
    ({"random": {}, "s": {"method": "snip", "batches": 0}}, "method 's' (snip) parameter batches: got 0"),
    ({"random": {}, "r": {"method": "random-search", "score": "acc"}}, "score: got 'acc'; allowed: one of loss, accuracy"),
    ({"random": {}, "r": {"method": "random-search", "probe": 6}}, "probe: got 6; allowed: at most candidates - 1 = 5"),
    ({"random": {}, "d": {"method": "dense"}}, "the label dense"),
    ({"random": {"method": "snip"}}, "a registered method's name labels only that method"),
    ({"random": {}, "x": {"method": "no-such"}}, "method: got 'no-such'"),
    ({"random": {}, "a": {"method": "snip"}, "b": {"method": "snip"}}, "same parameters"),
    ({"random": {}, "bad label": {"method": "snip"}}, "method label: got 'bad label'"),
    ({"random": {}, "dense": {"x": 1}}, "none (dense takes no parameters)"),
])
def test_bad_tables_are_refused_in_one_line(methods, message):
    with pytest.raises(ConfigError, match="^[^\n]*$") as info:
        ExperimentConfig(**{**TINY, "methods": methods})
    assert message in str(info.value)


def test_a_flat_key_and_the_same_parameter_of_the_method_it_sets_in_one_file_are_refused(tmp_path):
    path = write(tmp_path, 'candidates = 8\n[methods.random]\n[methods.random-search]\ncandidates = 4\n')
    with pytest.raises(ConfigError, match="candidates of method 'random-search' is given twice"):
        ExperimentConfig.from_sources(toml_path=path)
    # flat keys mix with tables: the flat key is random-search's default, another label's own value wins for it
    path = write(tmp_path, 'candidates = 20\nscore = "loss"\n[methods.random]\n[methods.random-search]\n'
                           '[methods.rs]\nmethod = "random-search"\nscore = "accuracy"\n')
    cfg = ExperimentConfig.from_sources(toml_path=path, preset="paper")  # a preset's candidates is only a default
    assert cfg.candidates == 20 and cfg.method_specs == (("rs", "random-search", '{"score":"accuracy"}'),)


def test_the_command_line_sets_labels_and_parameters_and_refuses_bad_ones_in_one_line(tmp_path, cli):
    db = str(tmp_path / "s.db")
    code, _, err = cli("run", *RUN, "--store", db, "--methods", "random,snip", "--method-param", "snip.batchez=2")
    assert code == 2 and err.count("\n") == 1 and "parameter: got 'batchez'" in err, err
    code, _, err = cli("run", *RUN, "--store", db, "--methods", "random,s=snip", "--method-param", "s.batches=zero")
    assert code == 2 and err.count("\n") == 1 and "batches: got 'zero'" in err, err
    code, _, err = cli("run", *RUN, "--store", db, "--method-param", "nosuch.x=1")
    assert code == 2 and "one of the methods: dense, random, random-search" in err, err
    code, _, err = cli("run", *RUN, "--store", db, "--method-param", "snip")
    assert code == 2 and "LABEL.KEY=VALUE" in err, err
    code, _, err = cli("run", *RUN, "--store", db, "--candidates", "3", "--methods", "random,rs-acc=random-search",
                       "--method-param", "rs-acc.score=accuracy")
    assert code == 0, err
    trials = sparsebench.load_results(db)
    rs = trials[trials["method"] == "rs-acc"].iloc[0]
    assert (rs["method_name"], rs["method_params"], rs["score_name"], rs["candidates"]) == \
        ("random-search", '{"score":"accuracy"}', "accuracy", 3)


# -- results: labels, numbers, the leaderboard -----------------------------------------------
def numbers(trials: pd.DataFrame) -> pd.DataFrame:
    cols = ["role", "candidate", "sparsity", "seed", "kept_nodes", "init_score", "final_test_acc", "best_val_acc"]
    return trials.sort_values(["sparsity", "seed", "role", "candidate"])[cols].reset_index(drop=True)


def test_relabelling_a_method_changes_no_number():
    config = {**TINY, "seeds": [0], "sparsities": [0.9], "epochs": 1}
    plain = sparsebench.run({**config, "methods": ["random", "random-search", "snip"]}, store=":memory:", progress=False)
    labelled = sparsebench.run({**config, "methods": {"random": {}, "rs": {"method": "random-search"},
                                                      "my-snip": {"method": "snip"}}}, store=":memory:", progress=False)
    assert set(labelled["method"]) == {"random", "rs", "my-snip"}
    for old, new in (("random-search", "rs"), ("snip", "my-snip")):
        pd.testing.assert_frame_equal(numbers(plain[plain["method"] == old]), numbers(labelled[labelled["method"] == new]))
        assert set(labelled.loc[labelled["method"] == new, "method_name"]) == {old}
    # with parameters, two labels of the same parameters give the same numbers too
    tuned = {"method": "random-search", "score": "accuracy"}
    one = sparsebench.run({**config, "methods": {"random": {}, "a": tuned}}, store=":memory:", progress=False)
    two = sparsebench.run({**config, "methods": {"random": {}, "b": tuned}}, store=":memory:", progress=False)
    pd.testing.assert_frame_equal(numbers(one[one["method"] == "a"]), numbers(two[two["method"] == "b"]))
    # and other parameters are another stream: other candidates are sampled
    assert not numbers(one[one["method"] == "a"]).equals(numbers(plain[plain["method"] == "random-search"]))


def test_one_method_twice_with_other_parameters_runs_and_both_are_on_the_leaderboard():
    methods = {"random": {}, "random-search": {}, "rs-acc": {"method": "random-search", "score": "accuracy", "probe": 1}}
    trials = sparsebench.run({**TINY, "methods": methods}, store=":memory:", progress=False)
    selected = trials[trials["role"] == "selected"]
    assert sorted(selected["method"].unique()) == ["random", "random-search", "rs-acc"]
    assert set(trials.loc[trials["method"] == "rs-acc", "method_params"]) == {'{"probe":1,"score":"accuracy"}'}
    assert set(trials.loc[trials["method"] == "rs-acc", "score_name"]) == {"accuracy"}
    assert set(trials.loc[trials["method"] == "random-search", "score_name"]) == {"loss"}
    # rs-acc's probe: one per seed and sparsity; the default random-search has none (probe = 0)
    assert trials.loc[trials["role"] == "probe", "method"].tolist() == ["rs-acc"] * 4
    board = leaderboard(paired_comparison(trials))
    assert set(board["method"]) == {"random-search", "rs-acc"}


PLUGIN = '''
from sparsebench.methods import Method, Selection
from sparsebench.models.mask import NodeMask


class KeepFrom(Method):
    """Keeps, per node layer, the kept count of nodes starting at node ``start``."""

    def __init__(self, start: int = 0):
        if not isinstance(start, int) or start < 0:
            raise ValueError(f"start must be a whole number >= 0, not {start!r}")
        self.start = start

    def select(self, ctx):
        keep = [[(self.start + i) % w for i in range(k)] for w, k in zip(ctx.node_space.widths, ctx.kept())]
        return Selection(NodeMask.from_indices(keep, ctx.node_space.widths))
'''


def test_a_user_method_with_parameters_declared_in_toml_runs_and_a_bad_value_is_one_line(install_plugin, tmp_path, cli):
    install_plugin("keepfrom_plugin", PLUGIN, "[sparsebench.methods]\nkeep-from = keepfrom_plugin:KeepFrom\n")
    path = write(tmp_path, '[methods.random]\n[methods.keep-from]\n[methods.from3]\nmethod = "keep-from"\nstart = 3\n')
    db = str(tmp_path / "s.db")
    code, _, err = cli("run", *RUN, "--config", str(path), "--store", db)
    assert code == 0, err
    trials = sparsebench.load_results(db).set_index("method")
    assert json.loads(trials.loc["keep-from", "kept_nodes"]) == json.loads(trials.loc["from3", "kept_nodes"])
    assert trials.loc["from3", "method_params"] == '{"start":3}' and trials.loc["keep-from", "method_params"] == "{}"
    first = sparsebench.load_mask(db, int(trials.loc["keep-from", "trial_id"])).bool_tensors()[0]
    shifted = sparsebench.load_mask(db, int(trials.loc["from3", "trial_id"])).bool_tensors()[0]
    assert shifted.tolist() == first.roll(3).tolist()  # the parameter reached the method
    path = write(tmp_path, '[methods.random]\n[methods.from-1]\nmethod = "keep-from"\nstart = -1\n')
    code, _, err = cli("run", *RUN, "--config", str(path), "--store", str(tmp_path / "t.db"))
    assert code == 2 and err.count("\n") == 1, err
    assert "method 'from-1': keep-from(start=-1) refused its parameters (ValueError: start must be" in err


def test_a_constructor_taking_any_keyword_decides_itself_and_its_type_error_is_one_line(monkeypatch):
    from sparsebench.methods import Method, registry
    from sparsebench.methods.registry import canonical_params

    class Options(Method):
        def __init__(self, **options):
            if set(options) - {"depth"}:
                raise TypeError(f"unexpected options {sorted(set(options) - {'depth'})}")
            self.options = options

        def select(self, ctx):
            raise NotImplementedError

    monkeypatch.setitem(registry._METHODS, "options-test", Options)  # registered for this test only
    assert canonical_params("o", "options-test", {"depth": 2}, FLAT) == '{"depth":2}'
    with pytest.raises(ConfigError, match=r"^method 'o': options-test\(width=2\) refused its parameters \(TypeError: "):
        canonical_params("o", "options-test", {"width": 2}, FLAT)
