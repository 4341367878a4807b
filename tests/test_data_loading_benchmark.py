"""The data-loading benchmark is a script, not a timed test; this only checks that it runs and reports."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_data_loading_benchmark_runs_and_prints_its_figures():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "data_loading.py"), "--tiny"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    figures = dict(line.split("=", 1) for line in proc.stdout.splitlines())
    for distribution in ("bin", "py"):
        assert figures[f"{distribution}_images"] == "3000"
        assert figures[f"{distribution}_train_shape"] == "2188x3x32x32"
        assert float(figures[f"{distribution}_first_load_s"]) > 0 and float(figures[f"{distribution}_peak_rss_mb"]) > 0
        assert figures[f"{distribution}_train_dtype"] == "uint8"  # images stay uint8 until a minibatch is gathered
    # The CIFAR-sized run: every training row of the tiny files (no --train-limit), one epoch, in a process of its own.
    assert figures["run_train_rows"] == "2188" and figures["run_parent"] == "cnn 16,16,32,32 fc 64"
    assert float(figures["run_peak_rss_mb"]) > float(figures["bin_peak_rss_mb"]) / 2 and float(figures["run_epoch_images_per_s"]) > 0
    for held in ("float32", "uint8", "uint8_crop_flip"):
        assert float(figures[f"bin_epoch_{held}_images_per_s"]) > 0
