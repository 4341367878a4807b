"""keep_freed_memory: applied where glibc is, and only there; an environment switch turns it off."""

import platform
import subprocess
import sys

import pytest

from sparsebench.engine.allocator import ENV, keep_freed_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# One work group's training, run twice; prints the page faults of the second run.
TRAIN_TWICE = """
import resource, sys, torch
from sparsebench.data import load_dataset
from sparsebench.engine import TrainSettings, train_stacked
from sparsebench.engine.allocator import keep_freed_memory
from sparsebench.models import MLPSpec, gather_stacked, init_parent, random_masks
if sys.argv[1] == "keep":
    assert keep_freed_memory()
torch.set_num_threads(1)
data = load_dataset("mnist1d", 0, 0.2)
spec = MLPSpec(data.n_features, (128, 128, 128), data.n_classes)
stack = gather_stacked(init_parent(spec, 0), random_masks(spec.hidden, 0.5, 8, torch.Generator().manual_seed(0)))
settings = TrainSettings(epochs=1, batch_size=128, optimizer="adam", lr=1e-3)
train_stacked(stack, [0] * 8, data, settings)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
train_stacked(stack, [0] * 8, data, settings)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt is what this tunes")
def test_keeping_freed_memory_stops_the_page_faults_of_training():
    def churn_faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", TRAIN_TWICE, mode], capture_output=True, text=True, check=True).stdout
        return int(out.strip())

    default, kept = churn_faults("default"), churn_faults("keep")
    assert kept * 4 < default, (kept, default)


def test_keep_freed_memory_is_off_when_the_environment_says_so(monkeypatch):
    monkeypatch.setenv(ENV, "0")
    assert keep_freed_memory() is False
