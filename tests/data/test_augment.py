"""Training augmentation ``crop-flip`` (drawn per seed, epoch and example) and uint8 images kept until a minibatch
is gathered (issue 16, items 5 and 7)."""

import numpy as np
import pytest
import torch

import sparsebench.data.augment as augment
from sparsebench import ExperimentConfig
from sparsebench.cli import main
from sparsebench.data.augment import PAD, crop_flip, epoch_draw
from sparsebench.data.registry import load_dataset
from sparsebench.engine import conv_stacked
from sparsebench.engine.common import TrainSettings, epoch_order
from sparsebench.engine.families import engine_for
from sparsebench.engine.stacked import evaluate_stacked, train_stacked
from sparsebench.errors import ConfigError
from sparsebench.models.cnn import CNN
from sparsebench.models.mlp import MLP

SETTINGS = TrainSettings(epochs=2, batch_size=16, optimizer="adam", lr=1e-2)


def image_npz(path, n=120, shape=(3, 8, 8), n_classes=3, seed=0, dtype=np.uint8):
    """uint8 images (class patterns plus noise) in an npz file; returns its dataset name."""
    rng = np.random.default_rng(seed)
    patterns = rng.integers(0, 160, (n_classes, *shape))
    y = np.arange(n) % n_classes
    x = (patterns[y] + rng.integers(0, 96, (n, *shape))).astype(dtype)
    np.savez(path, x_train=x, y_train=y)
    return f"npz:{path}"


@pytest.fixture
def images(tmp_path):
    return image_npz(tmp_path / "img.npz")


def loop_crop_flip(x, offsets, flips):
    """The transform written plainly, one example at a time: pad, crop, mirror."""
    out = torch.empty_like(x)
    h, w = x.shape[2:]
    for b in range(len(x)):
        padded = torch.nn.functional.pad(x[b], (PAD, PAD, PAD, PAD))
        dy, dx = offsets[b].tolist()
        crop = padded[:, dy : dy + h, dx : dx + w]
        out[b] = crop.flip(-1) if flips[b] else crop
    return out


def test_crop_flip_is_the_plain_pad_crop_mirror_of_each_example():
    x = torch.randn(40, 3, 6, 5)
    draw = epoch_draw([7], 1, 40)
    offsets, flips = draw.offsets[0], draw.flips[0]
    assert torch.equal(crop_flip(x, offsets, flips), loop_crop_flip(x, offsets, flips))
    assert 0 < int(flips.sum()) < 40 and int(offsets.min()) == 0 and int(offsets.max()) == 2 * PAD  # the whole range drawn
    assert torch.equal(crop_flip(x, torch.full((40, 2), PAD), torch.zeros(40, dtype=torch.bool)), x)  # centre, no flip


def test_a_seeds_draw_depends_on_its_seed_and_epoch_alone_never_on_the_other_seeds_of_a_stack():
    alone = epoch_draw([3], 2, 50)
    stacked = epoch_draw([1, 3, 5], 2, 50).seed(1)
    assert torch.equal(alone.offsets, stacked.offsets) and torch.equal(alone.flips, stacked.flips)
    other_seed, other_epoch = epoch_draw([4], 2, 50), epoch_draw([3], 3, 50)
    for other in (other_seed, other_epoch):
        assert not torch.equal(alone.offsets, other.offsets) and not torch.equal(alone.flips, other.flips)


def test_an_example_is_augmented_the_same_in_any_minibatch_and_any_stack(images):
    data = load_dataset(images, 0, 0.25, augment="crop-flip")
    draw = data.epoch_draw([0, 4], 1)
    rows = torch.randperm(len(data.y_train))[:20]
    in_stack = data.training_examples(torch.stack([rows.flip(0), rows]), draw)[1]  # seed 4's rows, beside seed 0's
    alone = data.training_examples(rows.unsqueeze(0), data.epoch_draw([4], 1))[0]
    assert torch.equal(in_stack, alone)
    one_by_one = torch.cat([data.training_examples(r.view(1, 1), data.epoch_draw([4], 1))[0] for r in rows])
    assert torch.equal(alone, one_by_one)
    plain = data.features(data.x_train[rows])
    assert not torch.equal(alone, plain) and torch.equal(data.training_examples(rows.unsqueeze(0))[0], plain)
    assert not torch.equal(alone, data.training_examples(rows.unsqueeze(0), data.epoch_draw([5], 1))[0])


def record_augmented(monkeypatch):
    """Every augmented gather, as (example ids (S, B), augmented rows (S, B, ...), the draw's offsets (S, n, 2))."""
    seen = []
    original = augment.augment_rows

    def recording(x, shape, rows, draw):
        out = original(x, shape, rows, draw)
        seen.append((rows.clone(), out.clone(), draw.offsets))
        return out

    monkeypatch.setattr(augment, "augment_rows", recording)
    return seen


def per_epoch_examples(seen, seed, n_train, epochs):
    """The augmented rows the networks of ``seed`` saw, in minibatch order, per epoch (a gather's draw tells its
    seeds and epoch apart)."""
    epoch_of = {augment.seed_draw(seed, e, n_train)[0].numpy().tobytes(): e for e in range(1, epochs + 1)}
    rows, xs = {e: [] for e in epoch_of.values()}, {e: [] for e in epoch_of.values()}
    for r, x, offsets in seen:
        for k in range(len(r)):
            e = epoch_of.get(offsets[k].cpu().numpy().tobytes())
            if e is not None:
                rows[e].append(r[k])
                xs[e].append(x[k])
    out = [(torch.cat(rows[e]), torch.cat(xs[e])) for e in sorted(rows)]
    assert all(len(r) == n_train for r, _ in out)  # each training example once an epoch, and nothing else augmented
    return out


@pytest.mark.parametrize("parent", ["mlp", "cnn"])
def test_stacked_and_reference_engines_train_on_the_same_augmented_minibatches_whatever_the_stack(
        images, monkeypatch, parent):
    data = load_dataset(images, 0, 0.25, augment="crop-flip")
    family = MLP(data.n_features, (8,), data.n_classes) if parent == "mlp" else CNN(3, (8, 8), (4,), (), 3)
    engine = engine_for(family)
    data = engine.prepare(data)
    weights = family.init(0)
    n_train = len(data.y_train)

    seen = record_augmented(monkeypatch)
    engine.train_reference(weights, None, 4, data, SETTINGS)
    reference = per_epoch_examples(seen, 4, n_train, 2)
    seen.clear()
    full = family.node_space.full_mask()
    engine.train(engine.stack([(family.init(s), full) for s in (1, 4, 9)]), [1, 4, 9], data, SETTINGS)
    stacked = per_epoch_examples(seen, 4, n_train, 2)
    for epoch, ((ref_rows, ref_x), (rows, x)) in enumerate(zip(reference, stacked), start=1):
        assert torch.equal(ref_rows, epoch_order(4, epoch, n_train)) and torch.equal(rows, ref_rows)
        assert torch.equal(x, ref_x)
        expected = data.training_examples(rows.unsqueeze(0), data.epoch_draw([4], epoch))[0]
        assert torch.equal(x, expected)
        if parent == "mlp":
            assert x.shape[1:] == (3 * 8 * 8,)  # augmented as images, trained flattened
    assert not torch.equal(reference[0][1][reference[0][0].argsort()], reference[1][1][reference[1][0].argsort()])


def test_every_method_and_sparsity_of_a_seed_sees_the_same_augmented_minibatches_in_a_run(images, monkeypatch):
    """A run of the dense parent and random and random-search at a sparsity: two stacks of networks of two seeds.
    Each stack gathers, for each (seed, epoch), the very same augmented minibatches."""
    from sparsebench import run

    seen = record_augmented(monkeypatch)
    cfg = ExperimentConfig(dataset=images, parent="cnn", hidden=(4, 4), fc=(), sparsities=(0.5,), seeds=(0, 1),
                           methods=("dense", "random", "random-search"), candidates=2, epochs=2, patience=0,
                           batch_size=16, val_fraction=0.25, augment="crop-flip")
    run(cfg, ":memory:", progress=False)
    by_seed_epoch = {}  # the conv engine gathers seed by seed: a gather's draw is one (seed, epoch)'s
    for rows, x, offsets in seen:
        by_seed_epoch.setdefault(offsets.numpy().tobytes(), []).append((rows, x))
    steps = -(-len(load_dataset(images, 0, 0.25).y_train) // 16)
    assert len(by_seed_epoch) == 4 and all(len(g) == 2 * steps for g in by_seed_epoch.values())  # 2 seeds x 2 epochs
    for gathers in by_seed_epoch.values():
        for (rows_a, x_a), (rows_b, x_b) in zip(gathers[:steps], gathers[steps:]):  # the dense stack, the sparse one
            assert torch.equal(rows_a, rows_b) and torch.equal(x_a, x_b)


def test_validation_monitoring_and_test_data_are_never_augmented(images):
    data = load_dataset(images, 0, 0.4, 0.5, augment="crop-flip")
    family = MLP(data.n_features, (8,), data.n_classes)
    engine = engine_for(family)
    data = engine.prepare(data)
    stacked = engine.stack([(family.init(0), family.node_space.full_mask())])
    result = train_stacked(stacked, [0], data, SETTINGS)[0]
    weights = [type(l)(l.weight.unsqueeze(0), l.bias.unsqueeze(0)) for l in result.final_weights]
    for split, (loss, acc) in {"val": (result.val_loss[-1], result.val_acc[-1]),
                               "monitor": (result.monitor_loss[-1], result.monitor_acc[-1]),
                               "test": (result.final_test_loss, result.final_test_acc)}.items():
        plain = evaluate_stacked(weights, data.features(getattr(data, f"x_{split}")), getattr(data, f"y_{split}"))
        assert (float(plain[0][0]), float(plain[1][0])) == (loss, acc), split


def test_augmentation_changes_training_and_only_training(images):
    plain = load_dataset(images, 0, 0.25)
    augmented = load_dataset(images, 0, 0.25, augment="crop-flip")
    family = CNN(3, (8, 8), (4,), (), 3)
    engine = engine_for(family)
    stacked = engine.stack([(family.init(0), family.node_space.full_mask())])
    a = conv_stacked.train_stacked(family, stacked, [0], engine.prepare(plain), SETTINGS)[0]
    b = conv_stacked.train_stacked(family, stacked, [0], engine.prepare(augmented), SETTINGS)[0]
    assert a.train_loss[0] != b.train_loss[0] and a.final_test_loss != b.final_test_loss
    ref = engine.train_reference(family.init(0), None, 0, engine.prepare(augmented), SETTINGS)
    assert ref.train_loss == pytest.approx(b.train_loss, abs=1e-4) and ref.val_acc == pytest.approx(b.val_acc, abs=1e-6)


@pytest.mark.parametrize("name", ["mnist1d", "digits"])
def test_crop_flip_is_refused_in_one_line_for_data_that_is_not_images(name, capsys, tmp_path):
    with pytest.raises(ConfigError, match=r"augment: 'crop-flip' needs images of shape \(C, H, W\)"):
        load_dataset(name, 0, 0.2, augment="crop-flip")
    code = main(["run", "--dataset", name, "--augment", "crop-flip", "--store", str(tmp_path / "s.db"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "augment: 'crop-flip' needs images" in err and "Traceback" not in err
    sequences = image_npz(tmp_path / "seq.npz", shape=(2, 20))  # (C, L): not images either
    with pytest.raises(ConfigError, match=r"has examples of shape \(2, 20\)"):
        load_dataset(sequences, 0, 0.2, augment="crop-flip")


def test_augment_is_checked_and_part_of_the_hash_and_its_default_keeps_old_hashes(capsys, tmp_path):
    # The hashes these configs had before the field existed (and so stored experiments resume):
    assert ExperimentConfig().config_hash() == ExperimentConfig(augment="none").config_hash() == "b582d328ae837c58"
    assert ExperimentConfig(dataset="digits", parent="cnn1d").config_hash() == "a978a663ccc01b55"
    assert ExperimentConfig(augment="crop-flip").config_hash() != ExperimentConfig().config_hash()
    with pytest.raises(ConfigError, match="augment"):
        ExperimentConfig(augment="mixup")
    assert main(["run", "--augment", "flip", "--store", str(tmp_path / "s.db")]) == 2
    assert "crop-flip" in capsys.readouterr().err


# -- uint8 images stay uint8 until a minibatch is gathered -------------------------------------------------------
def old_features(x, mean, std):
    """How ``load_dataset`` standardized uint8 images before: a float32 copy of the split, in place."""
    out = x.astype(np.float32)
    out -= np.float32(mean) if np.isscalar(mean) else np.asarray(mean, np.float32)
    out /= np.float32(std) if np.isscalar(std) else np.asarray(std, np.float32)
    return out


@pytest.mark.parametrize("mode", ["channel", "feature", "none"])
def test_uint8_images_are_kept_and_give_the_float32_numbers_of_a_standardized_copy(tmp_path, mode):
    from sparsebench.data.registry import channel_statistics

    name = image_npz(tmp_path / "img.npz", n=200)
    data = load_dataset(name, 0, 0.25, 0.5, mode)
    assert data.x_train.dtype == torch.uint8 and data.x_val.dtype == torch.uint8 and data.x_test.dtype == torch.uint8
    raw = np.load(tmp_path / "img.npz")["x_train"]
    x_train = data.x_train.numpy()
    mean, std = {"channel": channel_statistics(x_train), "none": (0.0, 1.0),
                 "feature": (x_train.mean(axis=0), np.where(x_train.std(axis=0) == 0, 1.0, x_train.std(axis=0)))}[mode]
    for split in ("x_train", "x_val", "x_monitor", "x_test"):
        x = getattr(data, split)
        assert np.isin(x.numpy().reshape(len(x), -1).view(np.void(x[0].numel())), raw.reshape(len(raw), -1).view(np.void(raw[0].size))).all()
        expected = old_features(x.numpy(), mean, std)
        assert np.array_equal(data.features(x).numpy(), expected)  # bit for bit
        assert np.array_equal(data.float_copy(split).numpy(), expected)
        assert data.features(x[:0]).shape == x[:0].shape and data.features(x[:0]).dtype == torch.float32
        flat = MLP(data.n_features, (4,), 3)
        prepared = engine_for(flat).prepare(data)
        assert np.array_equal(prepared.features(getattr(prepared, split)).numpy(), expected.reshape(len(x), -1))


def test_float_data_stays_float_and_is_returned_as_it_is(tmp_path):
    data = load_dataset("mnist1d", 0, 0.125, 0.5)
    assert data.x_train.dtype == torch.float32 and data.mean is None
    assert data.features(data.x_train) is data.x_train and data.float_copy("x_val") is not data.x_val
    floats = load_dataset(image_npz(tmp_path / "f.npz", dtype=np.float32), 0, 0.25, augment="crop-flip")
    assert floats.x_train.dtype == torch.float32
    rows = torch.arange(10).unsqueeze(0)
    assert not torch.equal(floats.training_examples(rows, floats.epoch_draw([0], 1)), floats.x_train[rows])
