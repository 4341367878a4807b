"""How to compute N stacked compacted CNNs: the measurements behind ``engine/conv_stacked.py``'s strategy.

Per case (family, sparsity), milliseconds per training step of 16 networks:

- ``grouped``: one grouped convolution (``groups=N``) over the stacked networks (what ``vmap`` of a
  convolution becomes), autograd, one ``torch.optim.Adam``;
- ``loop`` / ``loop_first`` / ``unfold``: the engine's own training (``conv_stacked.train_stacked``) with that strategy
  forced, its whole epoch (evaluation included) divided by its steps.

``--bitwise`` checks instead whether a grouped convolution gives one network the same bits whatever the
number of groups (it does not: the reason the engine does not use it), and whether ``torch.bmm`` gives a
network's matrix the same bits in stacks of 1, 2, 3 and 16 (not in a stack of 1 with 2 threads: the reason
for ``conv_stacked.stacked_bmm``).

    python benchmarks/conv_strategies.py --parent cnn1d [--threads 1]
    python benchmarks/conv_strategies.py --bitwise
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F

from sparsebench.data.registry import DatasetSplits
from sparsebench.engine import conv_stacked
from sparsebench.engine.common import TrainSettings
from sparsebench.models.cnn import CNN
from sparsebench.models.cnn1d import CNN1d

N = 16


def family_for(parent: str):
    if parent == "cnn1d":
        return CNN1d(1, (40,), (128,) * 3, (), 10), 128
    return CNN(3, (32, 32), (64, 64, 128, 128), (256, 256), 10), 64


def grouped_step_ms(family, layers, x, y, steps: int = 3) -> float:
    """A training step of the stacked networks as one grouped convolution per layer (autograd + torch.optim)."""
    conv = F.conv1d if family.dims == 1 else F.conv2d
    pool = F.max_pool1d if family.dims == 1 else F.max_pool2d
    params = [t.detach().clone().requires_grad_() for l in layers for t in l[:2]]
    optimizer = torch.optim.Adam(params, lr=1e-3)
    n_conv, b = len(family.channels), x.shape[1]

    def step():
        h = x.transpose(0, 1).reshape(b, -1, *x.shape[3:])
        for i in range(n_conv):
            w, bias = params[2 * i], params[2 * i + 1]
            h = conv(h, w.flatten(0, 1), bias.flatten(), stride=family.stride, padding=family.padding, groups=N).relu()
            if family.pools_after(i):
                h = pool(h, 2)
        h = h.reshape(b, N, -1).transpose(0, 1)
        rest = params[2 * n_conv :]
        for j in range(0, len(rest), 2):
            h = torch.baddbmm(rest[j + 1].unsqueeze(1), h, rest[j].transpose(1, 2))
            if j < len(rest) - 2:
                h = h.relu()
        loss = F.cross_entropy(h.transpose(1, 2), y, reduction="none").mean(1).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps * 1e3


def engine_step_ms(family, layers, data, batch: int, strategy: str) -> float:
    settings = TrainSettings(epochs=1, batch_size=batch, optimizer="adam", lr=1e-3)
    warm = DatasetSplits("warm", data.x_train[:batch], data.y_train[:batch], data.x_val, data.y_val, data.x_val, data.y_val, 10)
    conv_stacked.train_stacked(family, layers, [0] * N, warm, settings, strategy=strategy)
    start = time.perf_counter()
    conv_stacked.train_stacked(family, layers, [0] * N, data, settings, strategy=strategy)
    return (time.perf_counter() - start) / (len(data.y_train) // batch) * 1e3


def measure(parent: str, steps: int, sparsities=(0.5, 0.9, 0.98)) -> None:
    family, batch = family_for(parent)
    g = torch.Generator().manual_seed(0)
    n = batch * steps
    x = torch.randn(n + 32, family.in_channels, *family.spatial, generator=g)
    y = torch.randint(0, 10, (n + 32,), generator=g)
    data = DatasetSplits("strategies", x[:n], y[:n], x[n:], y[n:], x[n:], y[n:], 10)
    for s in sparsities:
        masks = family.node_space.random_masks(s, N, torch.Generator().manual_seed(1))
        layers = conv_stacked.stack_layers([family.compact(family.init(0), m) for m in masks])
        xb = x[:batch].expand(N, *x[:batch].shape).contiguous()
        yb = y[:batch].expand(N, batch).contiguous()
        figures = {"grouped": grouped_step_ms(family, layers, xb, yb)}
        for strategy in ("loop", "loop_first", "unfold"):
            figures[strategy] = engine_step_ms(family, layers, data, batch, strategy)
        shown = ", ".join(f"{k} {v:.1f}" for k, v in figures.items())
        print(f"{parent} s={s:g} kept {list(masks[0].kept_per_layer)}: ms per step of {N} networks: {shown}; "
              f"the engine chooses {conv_stacked.choose_strategy(family, layers)} "
              f"(evaluation: {conv_stacked.choose_strategy(family, layers, training=False)})", flush=True)


def bitwise() -> None:
    """One network's grouped-convolution output and gradients, in stacks of G networks, against G = 2."""
    torch.manual_seed(0)
    cases = [(1, 128, 1, 64, 40, 5, 2, 2), (1, 128, 64, 64, 20, 5, 2, 2), (1, 128, 13, 13, 10, 5, 2, 2),
             (2, 64, 3, 32, 32, 3, 1, 1), (2, 64, 32, 32, 16, 3, 1, 1)]
    for dims, b, c, o, size, k, pad, stride in cases:
        conv = F.conv1d if dims == 1 else F.conv2d
        x, w = torch.randn(17, b, c, *(size,) * dims), torch.randn(17, o, c, *(k,) * dims)
        results = {}
        for groups in (1, 2, 3, 8, 17):
            xs = x[:groups].transpose(0, 1).reshape(b, groups * c, *(size,) * dims).requires_grad_()
            ws = w[:groups].reshape(groups * o, c, *(k,) * dims).requires_grad_()
            out = conv(xs, ws, None, stride=stride, padding=pad, groups=groups)
            out.sum().backward()
            results[groups] = (out[:, :o].detach(), ws.grad[:o], xs.grad[:, :c])
        same = {g: all(torch.equal(a, r) for a, r in zip(v, results[2])) for g, v in results.items()}
        print(f"{dims}-D conv {c}->{o} channels, size {size}: network 0 identical to its G=2 numbers at G = {same}")


def bitwise_products() -> None:
    """One network's product in stacks of 1, 2 and 16 (``torch.bmm`` and ``conv_stacked.stacked_bmm``), against
    its product in a stack of 3: how many of the engine's shapes differ in the last bits."""
    g = torch.Generator().manual_seed(0)
    shapes = [(o, k, m) for o in (1, 3, 4, 6, 13, 16, 64) for k in (1, 5, 6, 21, 66, 321) for m in (20, 80, 320, 1280, 2560)]
    for name, product in (("torch.bmm", torch.bmm), ("stacked_bmm", conv_stacked.stacked_bmm)):
        differ = {1: 0, 2: 0, 16: 0}
        for o, k, m in shapes:
            # (o, k) @ (k, m) with either operand stored plain or transposed
            for transpose_a, transpose_b in ((False, False), (True, False), (False, True)):
                a = torch.randn(16, *((k, o) if transpose_a else (o, k)), generator=g)
                b = torch.randn(16, *((m, k) if transpose_b else (k, m)), generator=g)

                def of(i, j):
                    return product(a[i:j].transpose(1, 2) if transpose_a else a[i:j], b[i:j].transpose(1, 2) if transpose_b else b[i:j])

                in_three = of(4, 7)[1]
                for size, got in ((1, of(5, 6)[0]), (2, of(5, 7)[0]), (16, of(0, 16)[5])):
                    differ[size] += not torch.equal(got, in_three)
        print(f"{name}: of {3 * len(shapes)} products, a network's differs from its stack-of-3 bits in a stack of "
              + ", ".join(f"{size}: {count}" for size, count in differ.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parent", choices=["cnn1d", "cnn"], default="cnn1d")
    parser.add_argument("--steps", type=int, default=8, help="training steps per measurement")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--bitwise", action="store_true")
    parser.add_argument("--sparsities", default="0.5,0.9,0.98")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads={torch.get_num_threads()}")
    if args.bitwise:
        bitwise()
        bitwise_products()
        return
    measure(args.parent, args.steps, tuple(float(v) for v in args.sparsities.split(",")))


if __name__ == "__main__":
    main()
