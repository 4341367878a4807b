"""Issue 13, item 4: the parent family in the config, a nested TOML config, and run flags generated from the config."""

import dataclasses

import pytest

from sparsebench import ExperimentConfig
from sparsebench.cli import build_parser, config_flag_fields, flag_name
from sparsebench.config import LEGACY_VALUES, flatten_tables, validate_parent_name
from sparsebench.errors import ConfigError

from .test_config_inputs import ROUND_1_QUICK, ROUND_1_QUICK_HASH, ROUND_1_TINY_HASH

TINY_FLAT = 'dataset = "digits"\nseeds = 2\nsparsities = [0.5]\ncandidates = 2\nepochs = 1\n'
TINY_FLAGS = ["--dataset", "digits", "--hidden", "16,16", "--seeds", "1", "--sparsities", "0.5", "--candidates", "2",
              "--epochs", "1", "--no-progress"]


def write(tmp_path, text: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return str(path)


def stored_config(db) -> dict:
    from sparsebench.store import Store

    with Store(db, create=False) as st:
        return st.config(1)


# -- the parent family ----------------------------------------------------------------------------
def test_the_parent_family_is_a_config_field_that_leaves_old_hashes_alone():
    assert LEGACY_VALUES["parent"] == "mlp" and ExperimentConfig().parent == "mlp"
    legacy = dict(patience=0, monitor_fraction=0.0, standardize="feature")
    assert ExperimentConfig(**ROUND_1_QUICK, **legacy, parent="mlp").config_hash() == ROUND_1_QUICK_HASH
    tiny = dict(dataset="digits", hidden=(24, 24), seeds=(0, 1), sparsities=(0.5, 0.9), candidates=6, epochs=2, batch_size=64)
    assert ExperimentConfig(**tiny, val_fraction=0.2, patience=0, monitor_fraction=0, parent="mlp").config_hash() == ROUND_1_TINY_HASH
    assert ExperimentConfig().to_dict()["parent"] == "mlp"  # recorded with the experiment, though not hashed at its legacy value


@pytest.mark.parametrize("name", ["resnet", "MLP", "", 3, None])
def test_an_unknown_parent_family_is_refused_listing_the_known_ones(name):
    with pytest.raises(ConfigError, match=r"^parent: got .*; allowed: one of cnn, cnn1d, mlp$"):
        validate_parent_name(name)
    with pytest.raises(ConfigError, match="^parent: "):
        ExperimentConfig(parent=name)


def test_parent_flag_runs_mlp_and_refuses_an_unknown_family_in_one_line(tmp_path, cli):
    db = tmp_path / "p.db"
    code, _, err = cli("run", *TINY_FLAGS, "--parent", "resnet", "--store", str(db))
    assert code == 2 and err.strip().splitlines() == ["sparsebench: error: parent: got 'resnet'; allowed: one of cnn, cnn1d, mlp"]
    assert not db.exists()
    code, out, err = cli("run", *TINY_FLAGS, "--parent", "mlp", "--store", str(db))
    assert code == 0, err
    assert stored_config(db)["parent"] == "mlp"
    # --parent mlp is the experiment a run without the flag names: the same hash, nothing new to train.
    assert cli("run", *TINY_FLAGS, "--store", str(db))[0] == 0
    import sparsebench

    assert len(sparsebench.list_experiments(db)) == 1


def test_list_names_lists_the_parent_families(cli):
    code, out, _ = cli("list", "--names")
    assert code == 0
    lines = out.splitlines()
    assert "parents:  cnn, cnn1d, mlp" in lines and lines[0].startswith("datasets:") and lines[-1].startswith("presets:")


# -- the nested TOML config ------------------------------------------------------------------------
def test_a_toml_mixing_flat_keys_and_a_parent_table_runs(tmp_path, cli):
    path = write(tmp_path, TINY_FLAT + '\n[parent]\nfamily = "mlp"\nhidden = [16, 16]\nactivation = "tanh"\n')
    db = tmp_path / "t.db"
    code, out, err = cli("run", "--config", path, "--store", str(db))
    assert code == 0, err
    config = stored_config(db)
    assert (config["parent"], config["hidden"], config["activation"], config["seeds"]) == ("mlp", [16, 16], "tanh", [0, 1])
    # The same values, all flat: the same experiment.
    flat = ExperimentConfig.from_sources(toml_path=write(tmp_path, TINY_FLAT + 'hidden = [16, 16]\nactivation = "tanh"\n'))
    assert flat.config_hash() == ExperimentConfig.from_dict(config).config_hash()


def test_flags_override_the_parent_table(tmp_path):
    path = write(tmp_path, TINY_FLAT + "[parent]\nhidden = [16, 16]\n")
    assert ExperimentConfig.from_sources(toml_path=path, overrides={"hidden": (8,)}).hidden == (8,)


@pytest.mark.parametrize("text,words", [
    (TINY_FLAT + "hidden = [16, 16]\n[parent]\nhidden = [16, 16]\n",
     "config: hidden is given twice, as top-level hidden and as [parent] hidden; allowed: one of the two"),
    ('parent = "mlp"\n' + TINY_FLAT, None),  # a flat parent name alone is fine
    (TINY_FLAT + 'activation = "relu"\n[parent]\nactivation = "tanh"\n', "as top-level activation and as [parent] activation"),
    ('[experiment]\nepochs = 1\n[experiment.parent]\nhidden = [8]\n[parent]\nhidden = [8]\n',
     "as [parent] hidden and as [experiment.parent] hidden"),
    ('epochs = 2\n[experiment]\nepochs = 1\n', "config: epochs is given twice, as top-level epochs and as [experiment] epochs"),
])
def test_a_value_given_twice_is_refused_in_one_line_naming_both_places(tmp_path, text, words):
    if words is None:
        assert ExperimentConfig.from_sources(toml_path=write(tmp_path, text)).parent == "mlp"
        return
    with pytest.raises(ConfigError) as info:
        ExperimentConfig.from_sources(toml_path=write(tmp_path, text))
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_value_given_twice_exits_2_in_one_line_and_stores_nothing(tmp_path, cli):
    path = write(tmp_path, TINY_FLAT + "hidden = [16, 16]\n[parent]\nfamily = \"mlp\"\nhidden = [16, 16]\n")
    db = tmp_path / "twice.db"
    code, out, err = cli("run", "--config", path, "--store", str(db))
    assert code == 2 and out == ""
    assert err.strip().splitlines() == ["sparsebench: error: config: hidden is given twice, as top-level hidden and as "
                                        "[parent] hidden; allowed: one of the two"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]


@pytest.mark.parametrize("text,words", [
    ('[parent]\nfamily = "mlp"\nwidth = 16\n', "[parent] key: got 'width'; allowed: one of activation, batchnorm, family, fc, hidden"),
    ('[parent]\nparent = "mlp"\n', "[parent] key: got 'parent'; allowed: one of activation, batchnorm, family, fc, hidden"),
    ('[parent]\nfamily = "resnet"\n', "parent: got 'resnet'; allowed: one of cnn, cnn1d, mlp"),
    ('[parent]\nfamily = "mlp"\nfc = [8]\n', "fc: got (8,); allowed: [] for parent 'mlp' (the option is for cnn, cnn1d)"),
    ('[parent]\nbatchnorm = true\n', "batchnorm: got True; allowed: false for parent 'mlp' (the option is for cnn, cnn1d)"),
    ('[parent]\nfamily = "cnn1d"\nbatchnorm = "yes"\n', "batchnorm: got 'yes'; allowed: true or false"),
    ('[parent]\nhidden = []\n', "hidden: got ()"),
    # a [methods.LABEL] table names its method with `method` (default: the label), its other keys are parameters
    ('[methods.rs]\nname = "random-search"\n', "method: got 'rs'; allowed: one of "),
    ('[experiment]\nepochs = 1\n[experiment.methods]\nx = 1\n', "[methods.x]: got 1; allowed: a table: method = NAME"),
])
def test_bad_tables_are_refused_in_one_line(tmp_path, cli, text, words):
    db = tmp_path / "bad.db"
    code, _, err = cli("run", "--config", write(tmp_path, text), "--store", str(db))
    assert code == 2 and len(err.strip().splitlines()) == 1 and words in err, err
    assert not db.exists()


def test_the_experiment_wrapper_still_reads_and_may_hold_a_parent_table(tmp_path):
    wrapped = ExperimentConfig.from_sources(toml_path=write(tmp_path, "[experiment]\n" + TINY_FLAT + "[experiment.parent]\nhidden = [8]\n"))
    beside = ExperimentConfig.from_sources(toml_path=write(tmp_path, "[experiment]\n" + TINY_FLAT + "[parent]\nhidden = [8]\n"))
    flat = ExperimentConfig.from_sources(toml_path=write(tmp_path, TINY_FLAT + "hidden = [8]\n"))
    assert wrapped == beside == flat and flat.hidden == (8,)


def test_python_api_takes_the_same_nested_form():
    nested = ExperimentConfig.from_dict({"dataset": "digits", "sparsities": [0.5], "parent": {"family": "mlp", "hidden": [16]}})
    assert nested == ExperimentConfig(dataset="digits", sparsities=(0.5,), hidden=(16,))
    assert flatten_tables({"parent": "mlp", "hidden": [4]}) == {"parent": "mlp", "hidden": [4]}  # flat stays flat


# -- run flags generated from the config's fields -------------------------------------------------------
def run_actions() -> dict[str, object]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return {a.dest: a for a in sub.choices["run"]._actions}


def test_every_config_field_is_a_run_flag_with_its_metadata_help():
    actions = run_actions()
    # every field is a flag, in field order, but the labelled methods' specs (--methods LABEL=NAME, --method-param)
    fields = [f for f in dataclasses.fields(ExperimentConfig) if f.name != "method_specs"]
    assert [f.name for f in config_flag_fields()] == [f.name for f in fields]
    for f in fields:
        action = actions[f.name]
        negated = ["--no-" + f.name] if f.type in (bool, "bool") else []  # --batchnorm / --no-batchnorm
        assert action.option_strings == [flag_name(f), *negated] and flag_name(f) == "--" + f.name.replace("_", "-")
        assert action.help.startswith(f.metadata["help"].replace("%", "%%")), f.name
        assert action.default is None  # an unset flag leaves the preset's or the file's value
        if "choices" in f.metadata:
            assert action.metavar == "{" + ",".join(f.metadata["choices"]) + "}"
    assert {"--batch-size", "--monitor-fraction", "--weight-decay", "--val-fraction", "--data-seed", "--parent"} <= {
        s for a in actions.values() for s in a.option_strings}


def test_a_field_marked_flag_false_is_not_a_flag():
    cls = dataclasses.make_dataclass("Config", [("shown", int, dataclasses.field(default=1, metadata={"help": "x"})),
                                                ("hidden_away", int, dataclasses.field(default=2, metadata={"help": "y", "flag": False}))])
    assert [f.name for f in config_flag_fields(cls)] == ["shown"]


def test_generated_flags_parse_to_the_field_types():
    args = build_parser().parse_args(["run", "--hidden", "16, 8", "--sparsities", "0.5,0.9", "--methods", "dense,random",
                                      "--seeds", "3", "--lr", "0.01", "--momentum", "0.5", "--data-seed", "4",
                                      "--activation", "tanh", "--parent", "mlp", "--val-fraction", "0.25"])
    assert args.hidden == (16, 8) and args.sparsities == (0.5, 0.9) and args.methods == ("dense", "random")
    assert args.seeds == 3 and args.lr == 0.01 and args.momentum == 0.5 and args.data_seed == 4
    assert args.activation == "tanh" and args.parent == "mlp" and args.val_fraction == 0.25
    assert args.weight_decay is None and args.epochs is None


@pytest.mark.parametrize("args,line", [
    (["--weight-decay", "1e400"], "weight-decay: got '1e400'; allowed: a number >= 0"),
    (["--momentum", "fast"], "momentum: got 'fast'; allowed: a number in [0, 1)"),
    (["--data-seed", "1.5"], "data-seed: got '1.5'; allowed: an integer >= 0"),
    (["--val-fraction", "nan"], "val-fraction: got 'nan'"),
    (["--hidden", "16,x"], "hidden: got '16,x'; allowed: comma-separated positive integers"),
    (["--activation", "sigmoid"], "activation: got 'sigmoid'; allowed: one of relu, tanh, gelu"),
    (["--val-fraction", "1"], "val_fraction: got 1.0; allowed: a number in (0, 1)"),
])
def test_new_flags_refuse_bad_values_in_one_line(tmp_path, cli, args, line):
    db = tmp_path / "n.db"
    code, _, err = cli("run", *TINY_FLAGS, *args, "--store", str(db))
    assert code == 2 and len(err.strip().splitlines()) == 1 and line in err, err
    assert not db.exists()


def test_run_help_lists_the_config_flags_with_their_defaults(cli):
    code, out, _ = cli("run", "--help")
    assert code == 0
    out = " ".join(out.split())  # as argparse wraps it to the terminal's width
    assert "--parent NAME" in out and "--hidden W1,W2,..." in out and "--optimizer {adam,sgd}" in out
    assert "mlp 256,256,256; cnn1d 128,128,128" in out and "(default: 10)" in out  # seeds shown as the count N


def test_a_parent_table_sets_a_convolutional_familys_options_and_its_defaults_fill_the_rest():
    cfg = ExperimentConfig.from_dict({"seeds": 2, "parent": {"family": "cnn", "fc": [32], "batchnorm": True}})
    assert (cfg.parent, cfg.hidden, cfg.fc, cfg.batchnorm) == ("cnn", (64, 64, 128, 128), (32,), True)
    assert ExperimentConfig(parent="cnn1d").hidden == (128, 128, 128) and ExperimentConfig(parent="cnn1d").fc == ()
    assert ExperimentConfig(parent="cnn").fc == (256, 256)
    # Family defaults are resolved before hashing: naming them is the same experiment.
    assert ExperimentConfig(parent="cnn1d").config_hash() == ExperimentConfig(parent="cnn1d", hidden=(128,) * 3, fc=()).config_hash()
    assert ExperimentConfig(parent="cnn1d").config_hash() != ExperimentConfig(parent="cnn1d", batchnorm=True).config_hash()
    # The FC layers are node layers too: a sparsity must be realizable on them.
    with pytest.raises(ConfigError, match="sparsity: got 0.1"):
        ExperimentConfig(parent="cnn", hidden=(2,), fc=(4,), sparsities=(0.1,))
