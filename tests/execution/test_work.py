"""A work group as a plain job (issue 20): picklable, runnable anywhere, checked against the driver's data."""

import dataclasses
import pickle
import sys

import pytest

from sparsebench import ExperimentConfig
from sparsebench.errors import ConfigError
from sparsebench.execution import Job, JobFailure, make_executor, run_job
from sparsebench.execution.ray import RayExecutor
from sparsebench.execution.work import _loaded, run_job_on_worker
from sparsebench.plan import plan
from sparsebench.runner import load_checked_data, parent_family, resolve_device

CFG = ExperimentConfig(dataset="digits", hidden=(8,), seeds=(0,), sparsities=(0.5,), candidates=3, epochs=2, batch_size=64)
#: Wall-clock fields: the only ones two runs of one job may differ in.
TIMINGS = ("train_seconds", "selection_seconds")


def loaded(cfg=CFG):
    data = load_checked_data(cfg.data, cfg.training.batch_size, resolve_device(cfg.device))
    return data, parent_family(cfg.model, data)


def numbers(result):
    return [{k: v for k, v in dataclasses.asdict(t).items() if k not in TIMINGS} for t in result.trials], result.candidates


def test_a_job_survives_pickling_and_a_worker_that_loads_the_data_itself_computes_the_same_records():
    data, family = loaded()
    job = Job.of(CFG, plan(CFG.design)[1], data.fingerprint, threads=1)
    here = run_job(job, (data, family))
    _loaded.clear()
    there = run_job(pickle.loads(pickle.dumps(job)))  # loads and checks the data as a Ray worker does
    assert there.key == "sparsity=0.5" and len(there.trials) == 2 and len(there.candidates) == 3
    assert numbers(pickle.loads(pickle.dumps(there))) == numbers(here)


def test_a_worker_that_loads_other_data_refuses_the_job_in_one_line():
    data, _ = loaded()
    job = Job.of(CFG, plan(CFG.design)[0], "0" * 64, threads=1)
    _loaded.clear()
    with pytest.raises(ConfigError, match=r"^dataset 'digits': the data loaded on host .* differs from the data the run started from \(000000000000\)"):
        run_job(job)
    failure = run_job_on_worker(job)  # as a remote task returns it: plain data, raised again by the driver
    assert isinstance(failure, JobFailure) and failure.kind is ConfigError
    error = pickle.loads(pickle.dumps(failure)).error()
    assert isinstance(error, ConfigError) and "on worker host" in str(error) and "\n" not in str(error)


def test_executor_options_are_checked_in_one_line():
    with pytest.raises(ConfigError, match=r"^ray-num-cpus: got 0; allowed: an integer >= 1"):
        RayExecutor(num_cpus=0)
    with pytest.raises(ConfigError, match=r"^ray-num-gpus: got -1; allowed: a number >= 0"):
        RayExecutor(num_gpus=-1)
    with pytest.raises(ConfigError, match=r"^executor options: got \['address'\]; allowed: none for the local executor"):
        make_executor("local", address="auto")
    with pytest.raises(ConfigError, match=r"^executor: got 'dask'; allowed: local or ray"):
        make_executor("dask")


def test_without_ray_the_ray_executor_is_refused_in_one_line_saying_how_to_install_it(tmp_path, monkeypatch, cli):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: `import ray` raises ImportError
    db = tmp_path / "a.db"
    code, _, err = cli("run", "--dataset", "digits", "--seeds", "1", "--epochs", "1", "--executor", "ray", "--store", str(db))
    assert code == 2 and err.strip() == ("sparsebench: error: executor: got 'ray' but Ray is not installed; allowed: local, "
                                         'or install it with pip install "sparsebench[ray]"')
    assert not db.exists()


def test_a_ray_flag_without_the_ray_executor_is_refused(tmp_path, cli):
    code, _, err = cli("run", "--dataset", "digits", "--ray-num-cpus", "2", "--store", str(tmp_path / "a.db"))
    assert code == 2 and "executor: got 'local'; allowed: ray with --ray-num-cpus" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = cli("run", "--dataset", "digits", "--executor", "ray", "--ray-runtime-env", "[1]", "--store", str(tmp_path / "a.db"))
    if "not installed" not in err:
        assert code == 2 and "ray-runtime-env: got '[1]'; allowed: a JSON object" in err
