"""The Ray executor (issue 20): a Ray run stores what a local run stores, plugins reach the workers,
a killed worker's task is retried, a user error is one line, a killed driver resumes from the store.

One small local Ray instance (2 CPUs, on this machine, no dashboard) serves the whole module; the runs
connect to it as a user's script that called ``ray.init`` would.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

# Ray on Linux binds the machine's own network address unless told it runs without a cluster, then it
# takes the loopback address (ray_constants.ENABLE_RAY_CLUSTER, read when ray is imported): the tests'
# Ray instance, its workers and the drivers the tests start talk over 127.0.0.1 only.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

ray = pytest.importorskip("ray", reason='Ray is not installed (pip install "sparsebench[ray]"; scripts/setup.sh does)')

from sparsebench.execution.ray import RayExecutor  # noqa: E402
from sparsebench.store import Store  # noqa: E402

pytestmark = pytest.mark.slow  # each test runs Ray tasks that import torch: tens of seconds

ARGS = ["--dataset", "digits", "--hidden", "12,12", "--seeds", "2", "--sparsities", "0.5,0.9", "--candidates", "3",
        "--epochs", "2", "--batch-size", "64", "--no-progress"]

#: A plugin method (a module in the test's folder): the first of four random candidates. With SB_KILL_MARKER
#: set, the first select() in any process creates that file and kills its own process (a worker that dies
#: mid-task); every later call, in a retried task or another run, returns as usual.
PLUGIN = textwrap.dedent(
    """
    import os, signal, time

    from sparsebench import Method, Selection

    class FirstOfFour(Method):
        def select(self, ctx):
            marker = os.environ.get("SB_KILL_MARKER")
            if marker:
                try:
                    os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
                    os.kill(os.getpid(), signal.SIGKILL)
                except FileExistsError:
                    pass
            time.sleep(float(os.environ.get("SB_SELECT_SECONDS", "0")))
            masks = ctx.sample(4)
            return Selection(masks[0], candidates=masks, scores=[4.0, 3.0, 2.0, 1.0], chosen=0)
    """
)


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance of 2 CPUs for this module's runs."""
    context = ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    assert context.address_info["node_ip_address"] == "127.0.0.1", context.address_info  # loopback only
    yield context
    ray.shutdown()


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The plugin module in its own folder, importable by the driver (this process), not by the workers."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "rayplug.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    sys.modules.pop("rayplug", None)


def export(cli, db, *extra):
    out = db.with_suffix(".csv" if not extra else ".curves.csv")
    code, _, err = cli("export", "--store", str(db), "--out", str(out), *extra)
    assert code == 0, err
    return out.read_bytes()


def exports(cli, db):
    return export(cli, db), export(cli, db, "--curves")


def run_local(cli, monkeypatch, db, *extra):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the Ray tasks' one CPU: the same thread count, the same numbers
    code, _, err = cli("run", *ARGS, *extra, "--store", str(db))
    assert code == 0, err


def test_a_ray_run_exports_byte_identical_to_a_local_run_and_is_the_same_experiment(cluster, tmp_path, monkeypatch, cli):
    code, _, err = cli("run", *ARGS, "--executor", "ray", "--ray-num-cpus", "1", "--store", str(tmp_path / "ray.db"))
    assert code == 0, err
    run_local(cli, monkeypatch, tmp_path / "local.db")
    assert exports(cli, tmp_path / "ray.db") == exports(cli, tmp_path / "local.db")
    # The executor is not part of the experiment's identity: a local run of the same config finds it complete.
    before = exports(cli, tmp_path / "ray.db")
    run_local(cli, monkeypatch, tmp_path / "ray.db")
    with Store(tmp_path / "ray.db", create=False) as st:
        assert len(st.experiments()) == 1 and len(st.claims()) == 0
    assert exports(cli, tmp_path / "ray.db") == before


def test_a_plugin_reaches_the_workers_through_the_runtime_env_and_without_it_the_run_stops_in_one_line(
        cluster, plugin, tmp_path, cli):
    args = [*ARGS, "--methods", "dense,random,rayplug:FirstOfFour", "--executor", "ray"]
    code, _, err = cli("run", *args, "--store", str(tmp_path / "a.db"))
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "cannot load 'rayplug:FirstOfFour' (ModuleNotFoundError: No module named 'rayplug')" in err
    assert "on worker host" in err and "--ray-runtime-env" in err
    with Store(tmp_path / "a.db", create=False) as st:
        assert set(st.trials().method) <= {"dense"}  # no sparse group stored half
    env = '{"env_vars": {"PYTHONPATH": "%s"}}' % plugin
    code, _, err = cli("run", *args, "--ray-runtime-env", env, "--store", str(tmp_path / "a.db"))
    assert code == 0, err
    with Store(tmp_path / "a.db", create=False) as st:
        trials = st.trials()
    assert sorted(trials.method.unique()) == ["dense", "random", "rayplug:FirstOfFour"] and len(trials) == 10


def test_a_worker_killed_mid_task_is_retried_and_nothing_is_stored_twice(cluster, plugin, tmp_path, monkeypatch, cli):
    marker = tmp_path / "killed"
    executor = RayExecutor(num_cpus=1, runtime_env={"env_vars": {"PYTHONPATH": str(plugin), "SB_KILL_MARKER": str(marker)}})
    import sparsebench

    cfg = {"dataset": "digits", "hidden": [12, 12], "seeds": 2, "sparsities": [0.5, 0.9], "candidates": 3, "epochs": 2,
           "batch_size": 64, "methods": ["dense", "random", "rayplug:FirstOfFour"]}
    trials = sparsebench.run(cfg, store=tmp_path / "ray.db", progress=False, executor=executor)
    assert marker.exists()  # a worker did die mid-task
    keys = list(zip(trials.method, trials.role, trials.candidate, trials.sparsity, trials.seed))
    assert len(keys) == len(set(keys)) == 10
    run_local(cli, monkeypatch, tmp_path / "local.db", "--methods", "dense,random,rayplug:FirstOfFour")
    assert exports(cli, tmp_path / "ray.db") == exports(cli, tmp_path / "local.db")


def test_a_killed_driver_resumes_from_the_store_running_only_what_is_missing(cluster, plugin, tmp_path, monkeypatch, cli):
    db = tmp_path / "ray.db"
    args = [*ARGS, "--methods", "dense,random,rayplug:FirstOfFour", "--executor", "ray",
            "--ray-runtime-env", '{"env_vars": {"PYTHONPATH": "%s", "SB_SELECT_SECONDS": "2"}}' % plugin]
    address = cluster.address_info["address"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(plugin)}
    proc = subprocess.Popen([sys.executable, "-m", "sparsebench.cli", "run", *args, "--ray-address", address, "--store", str(db)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 300
        stored = 0
        while time.time() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    with Store(db, create=False) as st:
                        stored = len(st.trials())
                except Exception:  # the store is being created: look again
                    stored = 0
            if stored:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)  # the driver: the dense group stored, the sparse ones selecting
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    with Store(db, create=False) as st:
        stored_before = st.trials()
    assert 0 < len(stored_before) < 10
    code, _, err = cli("run", *args, "--store", str(db))  # the same command again (connected to the same instance)
    assert code == 0, err
    with Store(db, create=False) as st:
        after = st.trials()
    keys = list(zip(after.method, after.role, after.candidate, after.sparsity, after.seed))
    assert len(keys) == len(set(keys)) == 10
    assert set(stored_before.trial_id) <= set(after.trial_id)  # what was stored stayed as it was


#: A local run whose every group takes 3 s longer, and which logs the key of each group it trains.
SLOW_LOCAL_RUN = textwrap.dedent(
    """
    import os, sys, time
    from sparsebench import runner
    from sparsebench.cli import main

    real_run_group = runner.run_group

    def run_group(settings, group, *args, **kwargs):
        with open(os.environ["SB_TRAINED_LOG"], "a") as log:
            log.write(group.key + "\\n")
        result = real_run_group(settings, group, *args, **kwargs)
        time.sleep(3)
        return result

    runner.run_group = run_group
    sys.exit(main(sys.argv[1:]))
    """
)


class RecordingRayExecutor(RayExecutor):
    """A Ray executor that notes the group of each job it is handed."""

    def __init__(self, **options):
        super().__init__(**options)
        self.keys = []

    def submit(self, job, on_progress):
        self.keys.append(job.key)
        super().submit(job, on_progress)


def test_a_local_run_and_a_ray_driver_sharing_a_store_never_train_the_same_group(cluster, tmp_path, cli):
    import sparsebench
    from sparsebench.config import ExperimentConfig
    from sparsebench.plan import plan

    db, log = tmp_path / "shared.db", tmp_path / "local.log"
    script = tmp_path / "slow_local.py"
    script.write_text(SLOW_LOCAL_RUN)
    sparsities = "0.3,0.5,0.7,0.9"
    args = [a if a != "0.5,0.9" else sparsities for a in ARGS]
    local = subprocess.Popen([sys.executable, str(script), "run", *args, "--store", str(db)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1", "SB_TRAINED_LOG": str(log)})
    try:
        deadline = time.time() + 240
        while not log.exists() and time.time() < deadline and local.poll() is None:
            time.sleep(0.1)  # until the local run trains its first group
        cfg = ExperimentConfig(dataset="digits", hidden=(12, 12), seeds=(0, 1), sparsities=(0.3, 0.5, 0.7, 0.9), candidates=3,
                               epochs=2, batch_size=64)
        executor = RecordingRayExecutor(num_cpus=1)
        trials = sparsebench.run(cfg, store=db, progress=False, executor=executor)
        out, err = local.communicate(timeout=300)
        assert local.returncode == 0, err
    finally:
        if local.poll() is None:
            local.kill()
            local.communicate()
    trained_locally = log.read_text().split()
    assert trained_locally and executor.keys  # both did work
    assert not set(trained_locally) & set(executor.keys)
    assert sorted(trained_locally + executor.keys) == sorted(g.key for g in plan(cfg.design))
    keys = list(zip(trials.method, trials.role, trials.candidate, trials.sparsity, trials.seed))
    assert len(keys) == len(set(keys)) == sum(g.n_trials for g in plan(cfg.design))
