"""The config's sections: each stage of the runner receives its own part of the config (issue 13, item 6)."""

import dataclasses
import pickle

import pytest

from sparsebench import ExperimentConfig, runner
from sparsebench.config import (
    LEGACY_VALUES, PARENT_TABLE, SECTION_FIELDS, DataSection, DesignSection, ExecutionSection, ParentSection, SearchSection,
)
from sparsebench.engine.common import TrainSettings
from sparsebench.models import MLP, family_for

#: A config away from the defaults in every section, so that a field read from the wrong place shows.
ODD = dict(dataset="digits", data_seed=3, val_fraction=0.25, monitor_fraction=0.2, standardize="none", hidden=(12, 6),
           activation="tanh", seeds=(1, 4), sparsities=(0.5,), methods=("random", "random-search"), probe=2, candidates=5,
           score="accuracy", epochs=3, patience=2, batch_size=32, optimizer="sgd", lr=0.05, momentum=0.5,
           weight_decay=1e-4, engine="reference", device="cpu")
SECTION_CLASSES = {"data": DataSection, "model": ParentSection, "design": DesignSection, "search": SearchSection,
                   "training": TrainSettings, "execution": ExecutionSection}


def test_every_config_field_belongs_to_exactly_one_section():
    placed = [name for fields in SECTION_FIELDS.values() for name in fields]
    assert sorted(placed) == sorted(f.name for f in dataclasses.fields(ExperimentConfig))
    assert len(placed) == len(set(placed)), "a field is in two sections"
    assert set(SECTION_FIELDS) == set(SECTION_CLASSES)


def test_each_section_holds_its_fields_with_the_config_values():
    cfg = ExperimentConfig(**ODD)
    for name, fields in SECTION_FIELDS.items():
        section = getattr(cfg, name)
        assert type(section) is SECTION_CLASSES[name]
        assert {f: getattr(section, f) for f in fields} == {f: getattr(cfg, f) for f in fields}
    # The training section is the engine's TrainSettings: its fields, and the activation the engine runs.
    extra = {f.name for f in dataclasses.fields(TrainSettings)} - set(SECTION_FIELDS["training"])
    assert extra == {"activation"} and cfg.training.activation == "tanh"
    for name in ("data", "model", "design", "search", "execution"):
        assert [f.name for f in dataclasses.fields(SECTION_CLASSES[name])] == list(SECTION_FIELDS[name])


def test_the_parent_section_is_the_parent_table_whatever_keys_it_has():
    assert SECTION_FIELDS["model"] == tuple(PARENT_TABLE.values())
    assert ExperimentConfig(hidden=(16,), activation="gelu", sparsities=(0.5,)).model.values() == {
        "parent": "mlp", "hidden": (16,), "activation": "gelu", "fc": (), "batchnorm": False}


def test_sections_leave_the_flat_config_and_its_hash_alone():
    cfg = ExperimentConfig(**ODD)
    assert not set(SECTION_FIELDS) & set(cfg.to_dict())
    assert ExperimentConfig.from_dict(cfg.to_dict()).config_hash() == cfg.config_hash()


def test_sections_are_frozen_and_picklable():
    cfg = ExperimentConfig(**ODD)
    for name in SECTION_FIELDS:
        section = getattr(cfg, name)
        assert pickle.loads(pickle.dumps(section)) == section
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(section, SECTION_FIELDS[name][0], None)


def test_a_section_of_a_stored_config_takes_the_legacy_value_of_a_field_the_store_lacks():
    # A round-1 store's config: no parent family, no monitoring split, no standardize.
    stored = {"dataset": "digits", "data_seed": 0, "val_fraction": 0.2, "hidden": [24, 24], "activation": "relu",
              "seeds": [0, 1], "sparsities": [0.5, 0.9], "methods": ["dense", "random"], "probe": 0}
    assert ParentSection.from_stored(stored) == ParentSection(parent="mlp", hidden=(24, 24), activation="relu", fc=(),
                                                                  batchnorm=False)
    data = DataSection.from_stored(stored)
    assert (data.monitor_fraction, data.standardize) == (LEGACY_VALUES["monitor_fraction"], LEGACY_VALUES["standardize"])
    assert DesignSection.from_stored(stored).sparsities == (0.5, 0.9)
    cfg = ExperimentConfig(**ODD)
    for name in ("data", "model", "design", "search", "execution"):
        assert SECTION_CLASSES[name].from_stored(cfg.to_dict()) == getattr(cfg, name)


def test_a_family_is_built_alike_from_the_parent_section_and_from_a_stored_config():
    cfg = ExperimentConfig(hidden=(8, 4), activation="tanh", sparsities=(0.5,))
    assert family_for(cfg.model, (40,), 10) == family_for(cfg.to_dict(), (40,), 10) == MLP(40, (8, 4), 10, "tanh")
    assert family_for({"hidden": [8, 4], "activation": "tanh"}, (40,), 10) == MLP(40, (8, 4), 10, "tanh")  # no family: an MLP


#: The runner's stages; each must receive sections, never the whole config.
STAGES = ["load_checked_data", "check_training_split", "parent_family", "check_data_identity",
          "warn_if_resumed_with_other_software", "plan", "pending_groups", "work_units", "run_group", "select_networks",
          "_out_of_memory_as_error"]


def test_no_stage_of_the_runner_receives_the_whole_config(tmp_path, monkeypatch):
    import warnings

    calls = {name: 0 for name in STAGES}

    def watched(name, real):
        def stage(*args, **kwargs):
            whole = [a for a in (*args, *kwargs.values()) if isinstance(a, ExperimentConfig)]
            assert not whole, f"{name} received the whole config"
            calls[name] += 1
            return real(*args, **kwargs)
        return stage

    for name in STAGES:
        monkeypatch.setattr(runner, name, watched(name, getattr(runner, name)))
    cfg = ExperimentConfig(**{**ODD, "engine": "stacked"})
    db = tmp_path / "s.db"
    monkeypatch.setattr(runner, "software_versions", lambda: {"sparsebench": "0"})
    runner.run(cfg, store=db, progress=False)
    monkeypatch.setattr(runner, "software_versions", lambda: {"sparsebench": "1"})
    # Resumed unfinished (one group deleted) with other software: the warning stage runs too.
    from sparsebench.store import Store

    with Store(db) as st, st.transaction():
        st.con.execute("DELETE FROM curves")
        st.con.execute("DELETE FROM candidates")
        st.con.execute("DELETE FROM trials")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner.run(cfg, store=db, progress=False)
    assert all(calls.values()), {name: n for name, n in calls.items() if not n}
