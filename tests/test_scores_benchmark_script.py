"""The score benchmark is a script, not a timed test; this only checks that it still runs and reports."""

import math
import subprocess
import sys
from pathlib import Path

from sparsebench.names import SCORES

ROOT = Path(__file__).resolve().parents[1]


def test_scores_benchmark_runs_and_prints_a_time_for_every_score():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scores.py"), "--tiny", "--repeats", "1"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    figures = dict(l.split("=", 1) for l in proc.stdout.splitlines() if "=" in l and " " not in l)
    for parent in ("mlp", "cnn1d"):
        for score in SCORES:
            assert math.isfinite(float(figures[f"{parent}_{score}_seconds"]))
    assert proc.stdout.startswith("cpu: ")
