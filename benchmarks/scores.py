"""Time of scoring K candidates by each score (``sparsebench.scores``) on the quick presets' parents.

Workload: MNIST-1D as the presets load it (the validation split, 800 examples, is what the scores read), the
``quick`` preset's MLP (3 hidden layers of 256) and the ``quick-cnn`` preset's cnn1d (3 Conv1d layers of 128
channels), one seed's parent; per sparsity 0.5, 0.9, 0.98, K=100 candidates scored by each score, stacked (the
engine's way), and, with ``--reference``, each masked full-width network alone. Each figure is the best of
``--repeats`` rounds, after one warm-up call per score (the first call of a linear-algebra routine loads it).
Prints one line per (parent, sparsity, score) and ``<parent>_<score>_seconds=`` summed over the sparsities.

    python benchmarks/scores.py              # the full workload
    python benchmarks/scores.py --tiny       # seconds; a smoke test of this script
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from sparsebench.data.registry import load_dataset
from sparsebench.engine.families import engine_for
from sparsebench.models.cnn1d import CNN1d
from sparsebench.models.mlp import MLP
from sparsebench.names import SCORES
from sparsebench.scores import score_masks


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--reference", action="store_true", help="also time the masked full-width networks alone")
    parser.add_argument("--tiny", action="store_true", help="small parents and K=4: a smoke test")
    parser.add_argument("--parent", choices=["mlp", "cnn1d", "both"], default="both")
    args = parser.parse_args()
    data = load_dataset("mnist1d")
    example = tuple(data.x_train.shape[1:])
    hidden = ((16, 16, 16), (8, 8, 8)) if args.tiny else ((256, 256, 256), (128, 128, 128))
    k = 4 if args.tiny else args.candidates
    parents = {"mlp": MLP.from_config({"hidden": hidden[0]}, example, 10),
               "cnn1d": CNN1d.from_config({"hidden": hidden[1]}, example, 10)}
    print(f"cpu: {cpu_name()}; threads: {torch.get_num_threads()}; torch {torch.__version__}; K={k}; "
          f"validation examples: {len(data.y_val)}")
    for label, family in parents.items():
        if args.parent not in (label, "both"):
            continue
        prepared = engine_for(family).prepare(data)
        x, y = prepared.x_val, prepared.y_val
        weights = family.init(0)
        totals = dict.fromkeys(SCORES, 0.0)
        for sparsity in (0.5, 0.9, 0.98):
            masks = family.node_space.random_masks(sparsity, k, torch.Generator().manual_seed(0))
            for score in SCORES:
                score_masks(score, family, weights, masks[:2], x, y)  # warm-up
                ways = [("stacked", False)] + ([("reference", True)] if args.reference else [])
                for way, reference in ways:
                    best = float("inf")
                    for _ in range(args.repeats):
                        start = time.perf_counter()
                        score_masks(score, family, weights, masks, x, y, reference=reference)
                        best = min(best, time.perf_counter() - start)
                    if not reference:
                        totals[score] += best
                    print(f"{label:6s} s={sparsity:<5g} {score:10s} {way:9s} {best:8.3f} s  "
                          f"({1000 * best / k:.2f} ms a candidate)", flush=True)
        for score, seconds in totals.items():
            print(f"{label}_{score}_seconds={seconds:.4f}")


if __name__ == "__main__":
    main()
