"""Speed of the stacked conv engine against the masked loop and the vmap recipe, side by side in one run.

``python benchmarks/engine.py --parent cnn1d|cnn`` runs this (or run it directly with ``--parent``).

Workloads (issue 15), Adam lr 1e-3, one seed, per sparsity 0.5, 0.9, 0.98 16
networks plus the dense parent once, 2 epochs, and scoring K candidates per
sparsity on the validation split:

- ``cnn1d``: MNIST-1D-sized data (4000 train, 1000 validation rows of 40),
  3 convolutions of 128 channels, batch 128, K = 256;
- ``cnn``: CIFAR-shaped generated data (3 x 32 x 32, 10 classes; 64 train
  and 64 validation images, the validation images also the test split, so that
  the whole run, three engines, takes about 5 minutes on 2 cores: the
  reference's full-width Conv-4 step costs about 0.6 GFLOP an image), a Conv-4
  parent (64-64-128-128 channels, FC 256-256), batch 32, K = 32.

Three engines do the same work, scoring and training: the reference (one
masked full-width ``nn.Module`` at a time, ``torch.nn.utils.prune``), the
``torch.func`` ensembling recipe on the compacted networks (``vmap_recipe.py``)
and the engine. Prints the cases, then ``speedup_vs_reference=`` (the whole
workload), ``training_speedup_vs_reference=``, ``scoring_speedup_vs_reference=``,
``speedup_vs_vmap=`` and ``engine_peak_rss_mb=``. Each figure is the best of
``--repeats`` rounds; a round times every figure once.

    python benchmarks/engine.py --parent cnn1d
    python benchmarks/engine.py --parent cnn --tiny   # seconds; a smoke test
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import torch

from sparsebench.data.mnist1d import generate
from sparsebench.data.registry import DatasetSplits
from sparsebench.engine import TrainSettings
from sparsebench.engine.allocator import keep_freed_memory
from sparsebench.engine.conv import ConvEngine
from sparsebench.models.cnn import CNN
from sparsebench.models.cnn1d import CNN1d

try:
    from vmap_recipe import score_vmap, train_vmap
except ImportError:  # imported as benchmarks.conv_engine
    from .vmap_recipe import score_vmap, train_vmap


def mnist1d_data(n_train: int, n_val: int) -> DatasetSplits:
    x, y = generate(num_samples=n_train + n_val)
    x, y = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)
    return DatasetSplits("mnist1d-bench", x[:n_train], y[:n_train], x[n_train:], y[n_train:], x[n_train:], y[n_train:], 10)


def image_data(n_train: int, n_val: int, shape=(3, 32, 32), n_classes: int = 10) -> DatasetSplits:
    """CIFAR-shaped examples: each class a fixed random image plus noise (the speed, not the accuracy, is measured)."""
    g = torch.Generator().manual_seed(0)
    patterns = torch.randn(n_classes, *shape, generator=g)
    y = torch.randint(0, n_classes, (n_train + n_val,), generator=g)
    x = patterns[y] + torch.randn(len(y), *shape, generator=g)
    return DatasetSplits("images-bench", x[:n_train], y[:n_train], x[n_train:], y[n_train:], x[n_train:], y[n_train:], n_classes)


def workload(parent: str, tiny: bool):
    """(family, data, networks per sparsity, K, epochs, batch size, sparsities)."""
    if parent == "cnn1d":
        if tiny:
            return CNN1d(1, (40,), (16,) * 3, (), 10), mnist1d_data(200, 50), 3, 8, 1, 64, (0.5, 0.9)
        return CNN1d(1, (40,), (128,) * 3, (), 10), mnist1d_data(4000, 1000), 16, 256, 2, 128, (0.5, 0.9, 0.98)
    if tiny:
        return CNN(3, (16, 16), (8, 8, 16, 16), (32, 32), 10), image_data(64, 32, (3, 16, 16)), 3, 8, 1, 32, (0.5, 0.9)
    return CNN(3, (32, 32), (64, 64, 128, 128), (256, 256), 10), image_data(64, 64), 16, 32, 2, 32, (0.5, 0.9, 0.98)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parent", choices=["cnn1d", "cnn"], default="cnn1d")
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    parser.add_argument("--repeats", type=int, default=None, help="rounds per figure, the best reported (default: 3 for cnn1d, 1 for cnn)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="intra-op threads (default: every core)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.parent == "cnn1d" else 1)
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    family, raw, nets, k, epochs, batch, sparsities = workload(args.parent, args.tiny)
    engine = ConvEngine(family)
    data = engine.prepare(raw)
    settings = TrainSettings(epochs=epochs, batch_size=batch, optimizer="adam", lr=1e-3)
    seed = 0
    parent = family.init(seed)
    space = family.node_space
    full = space.full_mask()
    masks = {s: space.random_masks(s, nets, torch.Generator().manual_seed(int(s * 1000))) for s in sparsities}
    candidates = {f"s={s:g}": space.random_masks(s, k, torch.Generator().manual_seed(7)) for s in sparsities}
    cases = [("dense", [full])] + [(f"s={s:g}", masks[s]) for s in sparsities]
    scored = {"dense": []} | candidates
    print(f"workload: {family.name} {family.in_channels}x{'x'.join(map(str, family.spatial))} -> channels {list(family.channels)}"
          f" fc {list(family.fc)}, {len(data.y_train)} train / {len(data.y_val)} validation examples, {nets} networks per "
          f"sparsity {list(sparsities)} + dense, {epochs} epochs, batch {batch}, K={k} scored per sparsity, "
          f"threads={torch.get_num_threads()}, repeats={repeats}")

    def modules(ms):
        return [family.to_module(parent, m) for m in ms]

    per_engine = {
        "engine": (
            lambda c: engine.score(parent, c, data.x_val, data.y_val, "loss"),
            lambda ms: engine.train(engine.stack([(parent, m) for m in ms]), [seed] * len(ms), data, settings),
        ),
        "vmap": (
            lambda c: score_vmap(modules(c), data.x_val, data.y_val),
            lambda ms: train_vmap(modules(ms), [seed] * len(ms), data, settings),
        ),
        "reference": (
            lambda c: engine.score(parent, c, data.x_val, data.y_val, "loss", reference=True),
            lambda ms: [engine.train_reference(parent, None if m is full else m, seed, data, settings) for m in ms],
        ),
    }
    # Warm-up: one-time set-up of each kernel is charged to no engine.
    warm = DatasetSplits("warm-up", data.x_train[:batch], data.y_train[:batch], data.x_val[:32], data.y_val[:32],
                         data.x_val[:32], data.y_val[:32], data.n_classes)
    first = masks[sparsities[0]][:2]
    for score, _ in per_engine.values():
        score(first)
    engine.train(engine.stack([(parent, m) for m in first]), [seed] * 2, warm, settings)
    train_vmap(modules(first), [seed] * 2, warm, settings)
    engine.train_reference(parent, first[0], seed, warm, settings)

    work = {}
    for name, (score, train) in per_engine.items():
        for case, c in scored.items():
            if c:
                work[name, "score", case] = lambda score=score, c=c: score(c)
        for case, ms in cases:
            work[name, "train", case] = lambda train=train, ms=ms: train(ms)
    best: dict = {}
    engine_rss = 0.0
    for round_ in range(repeats):
        for key, fn in work.items():
            start = time.perf_counter()
            fn()
            best[key] = min(best.get(key, float("inf")), time.perf_counter() - start)
            if round_ == 0 and key[0] == "engine":
                engine_rss = peak_rss_mb()  # the engine's keys come first

    def seconds(name: str, part: str | None, case: str) -> float:
        parts = ("score", "train") if part is None else (part,)
        return sum(best.get((name, p, case), 0.0) for p in parts)

    names = ("reference", "vmap", "engine")
    print(f"{'case':>8} {'nets':>5} {'scored':>6} {'reference s':>12} {'vmap s':>8} {'engine s':>9} {'vs ref':>7} {'vs vmap':>8}")
    for case, ms in cases:
        r, v, e = (seconds(n, None, case) for n in names)
        print(f"{case:>8} {len(ms):>5} {len(scored[case]):>6} {r:>12.2f} {v:>8.2f} {e:>9.2f} {r / e:>6.1f}x {v / e:>7.1f}x")
    totals = {n: sum(seconds(n, None, c) for c, _ in cases) for n in names}
    print(f"{'total':>8} {sum(len(m) for _, m in cases):>5} {sum(map(len, scored.values())):>6} "
          f"{totals['reference']:>12.2f} {totals['vmap']:>8.2f} {totals['engine']:>9.2f}")
    part_speedup = {}
    for part, label in (("train", "training"), ("score", "scoring")):
        r = sum(seconds("reference", part, c) for c, _ in cases)
        v = sum(seconds("vmap", part, c) for c, _ in cases)
        e = sum(seconds("engine", part, c) for c, _ in cases)
        part_speedup[label] = r / e
        per_case = ", ".join(f"{c} {seconds('reference', part, c) / seconds('engine', part, c):.1f}x"
                             for c, _ in cases if seconds("engine", part, c) > 0)
        print(f"{label} alone: reference {r:.2f} s, vmap {v:.2f} s, engine {e:.2f} s, {r / e:.1f}x vs reference, "
              f"{v / e:.1f}x vs vmap ({per_case})")
    print(f"speedup_vs_reference={totals['reference'] / totals['engine']:.1f}")
    print(f"training_speedup_vs_reference={part_speedup['training']:.1f}")
    print(f"scoring_speedup_vs_reference={part_speedup['scoring']:.1f}")
    print(f"speedup_vs_vmap={totals['vmap'] / totals['engine']:.1f}")
    print(f"engine_peak_rss_mb={engine_rss:.0f}")


if __name__ == "__main__":
    main()
