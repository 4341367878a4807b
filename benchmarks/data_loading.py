"""Seconds to load CIFAR-10-shaped data from its binary and its Python distribution, and the peak memory.

The real files cannot be downloaded here, so the script writes synthetic files in
both official formats (50,000 + 10,000 random 3x32x32 images: the binary records
and Python 2-style pickled batches), unless ``--data-dir`` names a folder that
holds real ones. Each distribution is measured in a fresh process (so that its
peak RSS is its own and no file is cached by sparsebench): the first load
(read, decode, format checks, fingerprint), a second load (the per-process cache),
and ``load_dataset`` (validation split, per-channel statistics; the images stay
uint8 until a minibatch is gathered) on the cached arrays, then the first epoch's
throughput (images a second, the epoch's validation included; the binary distribution
only, the first ``--epoch-rows`` training images) of 4 stacked MLPs (3072-256-10),
on the training split held three ways: as float32 (what sparsebench
held before images stayed uint8), as uint8 converted at gather, and as uint8 with
``crop-flip`` augmentation (``--no-epoch``: skip). Prints
``<distribution>_<figure>=<value>`` lines.

Then the peak RSS of a CIFAR-sized run (``run_*`` lines), also in a fresh process:
``sparsebench run --dataset cifar10 --parent cnn --methods dense --seeds 1 --sparsities 0.5
--epochs 1 --patience 0`` on the binary files, with every training row (no ``--train-limit``:
43,750 train, 3,125 validation, 3,125 monitoring, 10,000 test at full size), so that the
figure holds the data as loaded (uint8), as the run holds it for training, one epoch of
minibatches, the validation and test evaluations and the store. The parent is a narrow
``cnn`` (``--run-hidden 16,16,32,32 --run-fc 64``) so that the epoch takes about a minute on
2 CPU cores; Conv-4's own activations at batch 60 add about 16 MB a convolution (measure it
with ``--run-hidden 64,64,128,128 --run-fc 256,256``, about 20 minutes an epoch on 2 cores,
or ``--run-device cuda``). ``run_epoch_images_per_s`` is that epoch's training rows over the
dense trial's training seconds (its evaluations included).

    python benchmarks/data_loading.py            # full size (about 350 MB of files in a temporary folder)
    python benchmarks/data_loading.py --tiny     # seconds; a smoke test of this script
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import pickle
import resource
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FOLDERS = {"bin": "cifar-10-batches-bin", "py": "cifar-10-batches-py"}


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Protocol 2 with bytes as Python 2 strings: the official batches' format."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_py2_str(self, obj: bytes) -> None:
        header = pickle.SHORT_BINSTRING + bytes([len(obj)]) if len(obj) < 256 else pickle.BINSTRING + struct.pack("<i", len(obj))
        self.write(header + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def write_synthetic(root: Path, per_batch: int) -> None:
    rng = np.random.default_rng(0)
    (root / FOLDERS["bin"]).mkdir(parents=True)
    (root / FOLDERS["py"]).mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        y = np.arange(per_batch) % 10
        (root / FOLDERS["bin"] / f"{name}.bin").write_bytes(np.concatenate([y[:, None].astype(np.uint8), x], axis=1).tobytes())
        buffer = io.BytesIO()
        _Py2Pickler(buffer, protocol=2).dump({b"batch_label": name.encode(), b"labels": [int(v) for v in y], b"data": x})
        data = buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
        (root / FOLDERS["py"] / name).write_bytes(data)


def measure(data_dir: Path, epoch_rows: int = 0) -> None:
    """In this (fresh) process: load cifar10 from ``data_dir`` (holding one distribution) and print the figures."""
    from sparsebench.data.registry import _raw_data, load_dataset

    start = time.perf_counter()
    raw = _raw_data("cifar10", 0, data_dir)
    first = time.perf_counter() - start
    start = time.perf_counter()
    _raw_data("cifar10", 0, data_dir)
    cached = time.perf_counter() - start
    start = time.perf_counter()
    data = load_dataset("cifar10", 0, 0.125, 0.5, data_dir=data_dir)
    splits = time.perf_counter() - start
    print(f"images={len(raw[1]) + len(raw[3])}")
    print(f"first_load_s={first:.3f}")
    print(f"cached_load_ms={cached * 1000:.2f}")
    print(f"load_dataset_s={splits:.3f}")
    print(f"train_shape={'x'.join(map(str, data.x_train.shape))}")
    print(f"train_dtype={str(data.x_train.dtype).removeprefix('torch.')}")
    print(f"peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
    if epoch_rows:
        data = dataclasses.replace(data, x_train=data.x_train[:epoch_rows], y_train=data.y_train[:epoch_rows])
        floats = dataclasses.replace(data, mean=None, std=None,
                                     **{k: data.float_copy(k) for k in ("x_train", "x_val", "x_monitor", "x_test")})
        augmented = dataclasses.replace(data, augment="crop-flip")
        for label, held in (("float32", floats), ("uint8", data), ("uint8_crop_flip", augmented)):
            print(f"epoch_{label}_images_per_s={first_epoch_throughput(held):.0f}")


def first_epoch_throughput(data) -> float:
    """Training images a second in the first epoch of 4 stacked MLPs of one hidden layer of 256 (validation included)."""
    import torch

    from sparsebench.engine.common import TrainSettings
    from sparsebench.engine.families import engine_for
    from sparsebench.models.mlp import MLP

    torch.set_num_threads(1)
    family = MLP(data.n_features, (256,), data.n_classes)
    engine = engine_for(family)
    prepared = engine.prepare(data)
    full = family.node_space.full_mask()
    stacked = engine.stack([(family.init(seed), full) for seed in range(4)])
    settings = TrainSettings(epochs=1, batch_size=128, optimizer="adam", lr=1e-3)
    start = time.perf_counter()
    engine.train(stacked, list(range(4)), prepared, settings)
    return len(prepared.y_train) / (time.perf_counter() - start)


def measure_run(data_dir: Path, hidden: str, fc: str, device: str) -> None:
    """In this (fresh) process: one epoch of a dense cnn on every training row of ``data_dir``; print the figures."""
    from sparsebench.api import load_results
    from sparsebench.cli import main as sparsebench

    store = data_dir.parent / "run.db"
    argv = ["run", "--dataset", "cifar10", "--data-dir", str(data_dir), "--parent", "cnn", "--hidden", hidden, "--fc", fc,
            "--methods", "dense", "--seeds", "1", "--sparsities", "0.5", "--epochs", "1", "--patience", "0",
            "--device", device, "--no-progress", "--store", str(store)]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = sparsebench(argv)
    if code:
        sys.exit(f"sparsebench run exited {code}")
    seconds = time.perf_counter() - start
    trial = load_results(str(store)).iloc[0]
    from sparsebench.data.registry import load_dataset

    rows = len(load_dataset("cifar10", 0, 0.125, 0.5, data_dir=data_dir).y_train)
    print(f"parent=cnn {hidden} fc {fc}")
    print(f"train_rows={rows}")
    print(f"seconds={seconds:.1f}")
    print(f"epoch_images_per_s={rows / float(trial['train_seconds']):.0f}")
    print(f"peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="500 images a batch instead of 10,000")
    parser.add_argument("--data-dir", help="a folder holding the real cifar-10-batches-bin/ and/or cifar-10-batches-py/")
    parser.add_argument("--run-hidden", default="16,16,32,32", help="the run's conv channels (default: %(default)s)")
    parser.add_argument("--run-fc", default="64", help="the run's hidden FC widths (default: %(default)s)")
    parser.add_argument("--run-device", default="cpu", help="the run's device (default: %(default)s)")
    parser.add_argument("--epoch-rows", type=int, default=10_000, help="training images of the first-epoch throughput "
                        "(default 10000; 0: not measured)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--measure-run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(Path(args.measure), args.epoch_rows)
        return
    if args.measure_run:
        measure_run(Path(args.measure_run), args.run_hidden, args.run_fc, args.run_device)
        return
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(args.data_dir) if args.data_dir else Path(tmp) / "cifar"
        if not args.data_dir:
            start = time.perf_counter()
            write_synthetic(source, 500 if args.tiny else 10_000)
            print(f"write_synthetic_s={time.perf_counter() - start:.1f}")
        for distribution, folder in FOLDERS.items():
            if not (source / folder).is_dir():
                continue
            alone = Path(tmp) / f"only-{distribution}"  # one distribution per folder, so that this one is read
            alone.mkdir()
            (alone / folder).symlink_to((source / folder).resolve())
            rows = args.epoch_rows if distribution == "bin" else 0  # the same arrays: measured once
            command = [sys.executable, __file__, "--measure", str(alone), "--epoch-rows", str(rows)]
            out = subprocess.run(command, capture_output=True, text=True, check=False)
            if out.returncode:
                sys.exit(out.stderr)
            for line in out.stdout.splitlines():
                print(f"{distribution}_{line}")
        if (source / FOLDERS["bin"]).is_dir():
            alone = Path(tmp) / "run" / "data"
            alone.mkdir(parents=True)
            (alone / FOLDERS["bin"]).symlink_to((source / FOLDERS["bin"]).resolve())
            out = subprocess.run([sys.executable, __file__, "--measure-run", str(alone), "--run-hidden", args.run_hidden,
                                  "--run-fc", args.run_fc, "--run-device", args.run_device],
                                 capture_output=True, text=True, check=False)
            if out.returncode:
                sys.exit(out.stderr)
            for line in out.stdout.splitlines():
                print(f"run_{line}")


if __name__ == "__main__":
    main()
