"""benchmarks/gpu.py is a script, not a timed test; this checks that it runs and reports (on the CPU here)."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--tiny", "--repeats", "1", *args],
                          capture_output=True, text=True, timeout=600)


def figures(stdout: str) -> dict[str, float]:
    return {k: float(v) for k, v in (l.split("=", 1) for l in stdout.splitlines() if "=" in l and " " not in l)}


@pytest.mark.parametrize("parent", ["mlp", "cnn"])
def test_the_gpu_benchmark_runs_on_the_cpu_and_prints_its_figures(parent):
    proc = run("--device", "cpu", "--parent", parent)
    assert proc.returncode == 0, proc.stderr
    found = figures(proc.stdout)
    assert set(found) == {f"{parent}_deterministic_cost", f"{parent}_speedup_vs_cpu"}
    assert all(math.isfinite(v) and v > 0 for v in found.values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_without_a_gpu_the_benchmark_says_so_and_measures_nothing():
    proc = run()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("no CUDA device: nothing measured") and not figures(proc.stdout)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_the_gpu_benchmark_runs_on_the_gpu():
    proc = run()
    assert proc.returncode == 0, proc.stderr
    assert set(figures(proc.stdout)) == {f"{p}_{f}" for p in ("mlp", "cnn1d", "cnn") for f in ("deterministic_cost", "speedup_vs_cpu")}
