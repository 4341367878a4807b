"""The conv benchmark is a script, not a timed test; this only checks that it still runs and reports."""

import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("parent", ["cnn1d", "cnn"])
def test_conv_engine_benchmark_runs_and_prints_its_figures(parent):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "engine.py"), "--parent", parent, "--tiny", "--repeats", "1"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    figures = dict(l.split("=", 1) for l in proc.stdout.splitlines() if "=" in l and " " not in l)
    # Tiny workloads run in milliseconds: their ratios are noise; every figure must be printed, once, as a number.
    for key in ("speedup_vs_reference", "training_speedup_vs_reference", "scoring_speedup_vs_reference", "speedup_vs_vmap"):
        assert math.isfinite(float(figures[key])) and float(figures[key]) > 0
    assert sum(l.startswith("speedup_vs_reference=") for l in proc.stdout.splitlines()) == 1
    assert float(figures["engine_peak_rss_mb"]) > 0
    assert f"workload: {parent} " in proc.stdout
