"""The benchmark is a script, not a timed test; this only checks that it still runs and reports."""

import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_engine_benchmark_runs_and_prints_its_figures():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "engine.py"), "--tiny", "--repeats", "2"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    figures = dict(l.split("=", 1) for l in proc.stdout.splitlines() if "=" in l and " " not in l)
    # The tiny workload runs in milliseconds, so its ratios are noise (a hiccup can
    # print 0.0); this checks that every figure is printed and is a number.
    for key in ("speedup_vs_reference", "training_speedup_vs_reference", "scoring_speedup_vs_reference", "speedup_vs_compacted",
                "speedup_vs_vmap", "training_s0.5_fraction_of_gemm_peak"):
        assert math.isfinite(float(figures[key])) and float(figures[key]) >= 0
    assert float(figures["speedup_vs_reference"]) > 0  # best of 2: the whole tiny workload, not one noisy part
    assert float(figures["engine_peak_rss_mb"]) > 0
    assert 0 <= float(figures["scoring_fraction_of_gemm_peak"]) < 10
