"""The engine on a GPU: its speed against the CPU, and what deterministic algorithms cost there.

For each parent family (``--parent mlp|cnn1d|cnn``, default all three), the
workloads of ``engine.py`` and ``conv_engine.py`` (the engine's part only: per
sparsity 0.5, 0.9, 0.98 a stack of networks trained for the epochs, plus the
dense parent, and K candidates scored) are timed three ways: on ``--device``
(``cuda``) as ``sparsebench run --device cuda`` runs them, with deterministic
algorithms (``runner.make_cuda_deterministic``); on ``--device`` without them
(``torch.use_deterministic_algorithms(False)``, TF32 still off); and on the CPU.
Prints per family and case, then ``<family>_deterministic_cost=`` (seconds with
over seconds without; 1.0 is free) and ``<family>_speedup_vs_cpu=``.

Where no CUDA device is present it says so and measures nothing (exit 0);
``--device cpu`` runs the same script on the CPU alone (a smoke test of it).

    python benchmarks/gpu.py                         # every family on cuda
    python benchmarks/gpu.py --parent cnn --tiny     # seconds
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import conv_engine  # noqa: E402 - beside this script
from engine import workload_data  # noqa: E402

from sparsebench.engine import TrainSettings  # noqa: E402
from sparsebench.engine.families import engine_for  # noqa: E402
from sparsebench.models.mlp import MLP  # noqa: E402
from sparsebench.runner import make_cuda_deterministic  # noqa: E402

FAMILIES = ("mlp", "cnn1d", "cnn")


def workload(parent: str, tiny: bool):
    """(family, data, networks per sparsity, K, epochs, batch size, sparsities), as the CPU benchmarks define them."""
    if parent != "mlp":
        return conv_engine.workload(parent, tiny)
    if tiny:
        return MLP(40, (32,) * 3, 10), workload_data(400, 100), 3, 8, 1, 128, (0.5, 0.9)
    return MLP(40, (512,) * 3, 10), workload_data(4000, 1000), 16, 256, 2, 128, (0.5, 0.9, 0.98)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_cases(parent: str, tiny: bool, device: torch.device, repeats: int) -> dict[str, float]:
    """Seconds per case (training of its networks plus scoring of its K candidates) on ``device``: the best of ``repeats``."""
    family, raw, nets, k, epochs, batch, sparsities = workload(parent, tiny)
    engine = engine_for(family)
    data = engine.prepare(raw).to(device)
    settings = TrainSettings(epochs=epochs, batch_size=batch, optimizer="adam", lr=1e-3)
    parent_weights = engine.to_device(family.init(0), device)
    space = family.node_space
    cases = {"dense": ([space.full_mask()], [])}
    for s in sparsities:
        cases[f"s={s:g}"] = (space.random_masks(s, nets, torch.Generator().manual_seed(int(s * 1000))),
                             space.random_masks(s, k, torch.Generator().manual_seed(7)))

    def run(masks, candidates):
        engine.train(engine.stack([(parent_weights, m) for m in masks]), [0] * len(masks), data, settings)
        if candidates:
            engine.score(parent_weights, candidates, data.x_val, data.y_val, "loss")
        synchronize(device)

    best = {}
    first = next(iter(cases.values()))
    run(first[0][:1], first[1][:2])  # warm-up: kernel selection, the caching allocator, cuBLAS/cuDNN handles
    for _ in range(repeats):
        for name, (masks, candidates) in cases.items():
            start = time.perf_counter()
            run(masks, candidates)
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parent", choices=[*FAMILIES, "all"], default="all")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    parser.add_argument("--repeats", type=int, default=2, help="rounds per figure, the best reported (default 2)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU intra-op threads (default: every core)")
    args = parser.parse_args()
    if args.device == "cuda":
        make_cuda_deterministic()  # before CUDA starts: the cuBLAS workspace setting is read then
        if not torch.cuda.is_available():
            print("no CUDA device: nothing measured (run it where one is present, or --device cpu for a smoke test)")
            return
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}")
    for parent in FAMILIES if args.parent == "all" else (args.parent,):
        torch.use_deterministic_algorithms(device.type == "cuda")
        on = time_cases(parent, args.tiny, device, args.repeats)
        torch.use_deterministic_algorithms(False)
        off = time_cases(parent, args.tiny, device, args.repeats)
        cpu = time_cases(parent, args.tiny, torch.device("cpu"), args.repeats) if device.type != "cpu" else off
        print(f"{parent}: {'case':>8} {'deterministic s':>16} {'not s':>9} {'cpu s':>9}")
        for case in on:
            print(f"{parent}: {case:>8} {on[case]:>16.3f} {off[case]:>9.3f} {cpu[case]:>9.3f}")
        print(f"{parent}_deterministic_cost={sum(on.values()) / sum(off.values()):.2f}")
        print(f"{parent}_speedup_vs_cpu={sum(cpu.values()) / sum(on.values()):.2f}")
    torch.use_deterministic_algorithms(device.type == "cuda")


if __name__ == "__main__":
    main()
