"""Speed of the stacked engine against the plain masked loop, side by side in one run.

``--parent mlp`` (the default) runs the MLP workload below; ``--parent cnn1d``
and ``--parent cnn`` run the convolutional workloads of ``conv_engine.py``.

Workload (issue 4): an MLP parent of 3 hidden layers of 512 on MNIST-1D-sized
data (4000 x 40, 10 classes), one seed; per sparsity 0.5, 0.9, 0.98: 16
networks (the random-search winner and 15 random draws), plus the dense
parent once; 2 epochs; and scoring K=256 candidates per sparsity.

Three engines do the same work, scoring and training: the reference (one
full-width masked nn.Module at a time, for each candidate and each network),
compacted networks one at a time, and the engine (compacted and stacked).
A sparsity's case is its scoring plus its training. Prints per case and in
total, training and scoring apart, then
``speedup_vs_reference=``, ``speedup_vs_compacted=``, ``speedup_vs_vmap=``
(against the ``torch.func`` ensembling recipe on the same compacted networks,
``vmap_recipe.py``), the scoring throughput beside one large matmul's
(``scoring_fraction_of_gemm_peak=``), that of the engine's training at s=0.5
(``training_s0.5_fraction_of_gemm_peak=``) and the peak RSS
of the engine part (measured first, so the slower trainers do not inflate it).
Each figure is the best of ``--repeats`` rounds, and a round times every
figure once, so that a slow spell of the shared machine cannot spoil all of
one engine's repeats.

    python benchmarks/engine.py            # the full workload
    python benchmarks/engine.py --tiny     # seconds; a smoke test of this script
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sparsebench.data.mnist1d import generate
from sparsebench.data.registry import DatasetSplits
from sparsebench.engine import TrainSettings, score_masks, score_reference, train_reference, train_stacked
from sparsebench.engine.allocator import keep_freed_memory
from sparsebench.models import MLPSpec, NodeMask, gather_stacked, init_parent, random_masks
from sparsebench.models.mlp import compact, to_module

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vmap_recipe import score_vmap, train_vmap  # noqa: E402 - beside this script


def workload_data(n_train: int, n_val: int) -> DatasetSplits:
    x, y = generate(num_samples=n_train + n_val)
    x = torch.from_numpy(x.astype(np.float32))
    y = torch.from_numpy(y)
    return DatasetSplits("mnist1d-bench", x[:n_train], y[:n_train], x[n_train:], y[n_train:], x[n_train:], y[n_train:], 10)


def stack(parent, masks):
    return gather_stacked(parent, masks)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """One large fp32 matmul's throughput: the best of ``repeats`` (the machine is shared)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def scoring_flops(spec: MLPSpec, mask: NodeMask, rows: int) -> float:
    widths = (spec.n_inputs, *mask.kept_per_layer, spec.n_classes)
    return 2.0 * rows * sum(a * b for a, b in zip(widths[:-1], widths[1:]))


def training_flops(spec: MLPSpec, mask: NodeMask, rows: int) -> float:
    """A training step's products per example: the forward's, and the backward's two (inputs and weights)."""
    return 3 * scoring_flops(spec, mask, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parent", choices=["mlp", "cnn1d", "cnn"], default="mlp")
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    parser.add_argument("--repeats", type=int, default=None, help="runs per figure; the best is reported (default 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="intra-op threads (default: every core)")
    args = parser.parse_args()
    if args.parent != "mlp":
        import conv_engine

        return conv_engine.main(sys.argv[1:])
    args.repeats = args.repeats or 3
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as `sparsebench run` does; process-wide, so every engine below gets it
    if args.tiny:
        width, n_train, n_val, nets, k, epochs, sparsities = 32, 400, 100, 3, 8, 1, (0.5, 0.9)
    else:
        width, n_train, n_val, nets, k, epochs, sparsities = 512, 4000, 1000, 16, 256, 2, (0.5, 0.9, 0.98)
    data = workload_data(n_train, n_val)
    spec = MLPSpec(40, (width,) * 3, 10)
    settings = TrainSettings(epochs=epochs, batch_size=128, optimizer="adam", lr=1e-3)
    seed = 0
    parent = init_parent(spec, seed)
    masks = {s: random_masks(spec.hidden, s, nets, torch.Generator().manual_seed(int(s * 1000))) for s in sparsities}
    full = NodeMask.full(spec.hidden)
    cases = [("dense", [full])] + [(f"s={s:g}", masks[s]) for s in sparsities]
    print(f"workload: MLP 40-{width}x3-10, {n_train} train rows, {nets} networks per sparsity {list(sparsities)} + dense, "
          f"{epochs} epochs, K={k} scored per sparsity, threads={torch.get_num_threads()}")

    # Warm-up: the first call of each kernel pays one-time set-up; no trainer should be charged it.
    warm = DatasetSplits("warm-up", data.x_train[:256], data.y_train[:256], data.x_val[:64], data.y_val[:64], data.x_val[:64], data.y_val[:64], 10)
    train_stacked(stack(parent, masks[sparsities[0]][:2]), [seed] * 2, warm, settings)
    train_reference(parent, masks[sparsities[0]][0], seed, warm, settings)
    score_masks(parent, masks[sparsities[0]][:2], warm.x_val, warm.y_val)
    score_reference(parent, masks[sparsities[0]][:2], warm.x_val, warm.y_val)

    # Each sparsity's case is its whole share of the workload: scoring K
    # candidates, then training its networks.
    candidates = {s: random_masks(spec.hidden, s, k, torch.Generator().manual_seed(7)) for s in sparsities}
    scored = {"dense": []} | {f"s={s:g}": candidates[s] for s in sparsities}

    # Every figure: (engine, part, case) -> the work to time; the engine's first.
    per_engine = {
        "engine": (
            lambda c: score_masks(parent, c, data.x_val, data.y_val),
            lambda ms: train_stacked(stack(parent, ms), [seed] * len(ms), data, settings),
        ),
        "compacted": (
            lambda c: [score_masks(parent, [m], data.x_val, data.y_val) for m in c],
            lambda ms: [train_stacked(stack(parent, [m]), [seed], data, settings) for m in ms],
        ),
        "vmap": (
            lambda c: score_vmap([to_module(compact(parent, m)) for m in c], data.x_val, data.y_val),
            lambda ms: train_vmap([to_module(compact(parent, m)) for m in ms], [seed] * len(ms), data, settings),
        ),
        "reference": (
            lambda c: score_reference(parent, c, data.x_val, data.y_val),
            lambda ms: [train_reference(parent, None if m is full else m, seed, data, settings) for m in ms],
        ),
    }
    work = {}
    for engine, (score, train) in per_engine.items():
        for name, c in scored.items():
            work[engine, "score", name] = lambda score=score, c=c: score(c)
        for name, ms in cases:
            work[engine, "train", name] = lambda train=train, ms=ms: train(ms)

    # The machine is shared, and its slow spells last seconds: each figure is
    # the best of --repeats rounds, and a round times every figure once, so
    # that each engine's repeats are spread over the whole run rather than
    # bunched where one slow spell could spoil all of them. The engine goes
    # first in the first round, so that the peak RSS read after it is its own.
    best: dict = {}
    engine_rss = 0.0
    for round_ in range(args.repeats):
        for key, fn in work.items():
            start = time.perf_counter()
            fn()
            best[key] = min(best.get(key, float("inf")), time.perf_counter() - start)
            if round_ == 0 and key[0] == "engine":
                engine_rss = peak_rss_mb()  # the engine's keys come first: compacted and reference have not run

    def figures(engine: str, part: str) -> dict[str, float]:
        return {name: best[engine, part, name] for name in scored if (engine, part, name) in best}

    engine_score_t, engine_train_t = figures("engine", "score"), figures("engine", "train")
    compact_score_t, compact_train_t = figures("compacted", "score"), figures("compacted", "train")
    vmap_score_t, vmap_train_t = figures("vmap", "score"), figures("vmap", "train")
    reference_score_t, reference_train_t = figures("reference", "score"), figures("reference", "train")

    def total(score_t, train_t):
        return {name: score_t[name] + train_t[name] for name in train_t}

    reference_t, compact_t, engine_t = (
        total(reference_score_t, reference_train_t), total(compact_score_t, compact_train_t), total(engine_score_t, engine_train_t)
    )
    print(f"{'case':>8} {'nets':>5} {'scored':>6} {'reference s':>12} {'compacted s':>12} {'engine s':>9} {'vs ref':>7} {'vs compacted':>12}")
    for name, ms in cases:
        r, c, e = reference_t[name], compact_t[name], engine_t[name]
        print(f"{name:>8} {len(ms):>5} {len(scored[name]):>6} {r:>12.2f} {c:>12.2f} {e:>9.2f} {r / e:>6.1f}x {c / e:>11.1f}x")
    total_r, total_c, total_e = (sum(t.values()) for t in (reference_t, compact_t, engine_t))
    print(f"{'total':>8} {sum(len(m) for _, m in cases):>5} {sum(map(len, scored.values())):>6} {total_r:>12.2f} {total_c:>12.2f} {total_e:>9.2f}")
    parts = {"training": (reference_train_t, engine_train_t), "scoring": (reference_score_t, engine_score_t)}
    part_speedup = {part: sum(r_t.values()) / sum(e_t.values()) for part, (r_t, e_t) in parts.items()}
    for part, (r_t, e_t) in parts.items():
        names = [name for name in r_t if part == "training" or scored[name]]  # the dense parent scores nothing
        per_case = ", ".join(f"{name} {r_t[name] / e_t[name]:.1f}x" for name in names)
        print(f"{part} alone: reference {sum(r_t.values()):.2f} s, engine {sum(e_t.values()):.2f} s, {part_speedup[part]:.1f}x ({per_case})")

    gemm = gemm_gflops()
    score_t = sum(engine_score_t.values())
    score_flops = sum(scoring_flops(spec, c[0], len(data.y_val)) * len(c) for c in scored.values() if c)
    scoring = score_flops / score_t / 1e9
    print(f"scoring: {sum(map(len, scored.values()))} candidates on {len(data.y_val)} rows in {score_t:.2f} s = {scoring:.1f} GFLOP/s; "
          f"one 2048^3 matmul: {gemm:.1f} GFLOP/s")
    print(f"speedup_vs_reference={total_r / total_e:.1f}")
    print(f"training_speedup_vs_reference={part_speedup['training']:.1f}")
    print(f"scoring_speedup_vs_reference={part_speedup['scoring']:.1f}")
    print(f"speedup_vs_compacted={total_c / total_e:.1f}")
    total_v = sum(total(vmap_score_t, vmap_train_t).values())
    print(f"vmap recipe: {total_v:.2f} s (training {sum(vmap_train_t.values()):.2f} s, scoring {sum(vmap_score_t.values()):.2f} s)")
    print(f"speedup_vs_vmap={total_v / total_e:.1f}")
    half = f"s={sparsities[0]:g}"
    train_half = training_flops(spec, masks[sparsities[0]][0], len(data.y_train)) * epochs * nets / engine_train_t[half] / 1e9
    print(f"training at {half}: {train_half:.1f} GFLOP/s in the products of its steps")
    print(f"training_s{sparsities[0]:g}_fraction_of_gemm_peak={train_half / gemm:.2f}")
    print(f"scoring_fraction_of_gemm_peak={scoring / gemm:.2f}")
    print(f"engine_peak_rss_mb={engine_rss:.0f}")


if __name__ == "__main__":
    main()
