"""The presets for real images (issue 16, item 8): their values, and that each runs end to end on files in the real
formats (tiny ones, with the preset's parent, optimizer and batch size; fewer seeds, sparsities and epochs)."""

from sparsebench import ExperimentConfig
from sparsebench.config import PRESETS


def test_mnist_mlp_is_lenet_300_100_on_mnist_and_cifar10_cnn_is_conv4_on_cifar10():
    mnist = ExperimentConfig.from_sources(preset="mnist-mlp")
    assert (mnist.dataset, mnist.parent, mnist.hidden, mnist.optimizer, mnist.lr, mnist.batch_size) == ("mnist", "mlp", (300, 100), "adam", 0.0012, 60)
    cifar = ExperimentConfig.from_sources(preset="cifar10-cnn")
    assert (cifar.dataset, cifar.parent, cifar.hidden, cifar.fc, cifar.lr, cifar.batch_size) == ("cifar10", "cnn", (64, 64, 128, 128), (256, 256), 0.0003, 60)
    assert cifar.augment == "crop-flip"  # random crop (4-pixel padding) and horizontal flip, as Conv-4 on CIFAR is usually trained
    for config in (mnist, cifar):  # the quick preset's protocol
        assert config.seeds == tuple(range(10)) and config.sparsities == (0.5, 0.9, 0.98) and config.candidates == 100
    assert {"quick", "paper", "quick-cnn", "mnist-mlp", "cifar10-cnn"} <= set(PRESETS)


SMALL = ["--seeds", "1", "--sparsities", "0.9", "--epochs", "1", "--candidates", "4", "--no-progress"]


def test_mnist_mlp_runs_on_mnist_files(tmp_path, formats, cli):
    formats.mnist(tmp_path / "mnist", gz=True, n_train=240)
    code, out, err = cli("run", "--preset", "mnist-mlp", "--data-dir", str(tmp_path), *SMALL, "--store", str(tmp_path / "s.db"))
    assert code == 0, err
    assert "random-search" in out


def test_cifar10_cnn_runs_on_cifar_files(tmp_path, formats, cli):
    formats.cifar10_bin(tmp_path, per_batch=24, n_test=20)
    code, out, err = cli("run", "--preset", "cifar10-cnn", "--data-dir", str(tmp_path), *SMALL, "--store", str(tmp_path / "s.db"))
    assert code == 0, err
    assert "random-search" in out
