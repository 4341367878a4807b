"""Issue 11.13: the out-of-memory message is cut at a word, and the progress bar's time left does
not extrapolate the dense parent's cost per network to the sparse groups."""

import re

import pytest

from sparsebench import ExperimentConfig, runner
from sparsebench.cli import main
from sparsebench.models.mlp import MLPSpec
from sparsebench.plan import plan

CUDA_MESSAGE = (
    "CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 15.78 GiB total capacity; 3.20 GiB already allocated; "
    "11.50 GiB free; 3.50 GiB reserved in total by PyTorch) If reserved memory is >> allocated memory try setting "
    "max_split_size_mb to avoid fragmentation. See documentation for Memory Management and PYTORCH_CUDA_ALLOC_CONF"
)


def test_the_out_of_memory_message_is_cut_at_a_word_with_an_ellipsis(tmp_path, capsys, monkeypatch):
    def too_big(*args, **kwargs):
        raise RuntimeError(CUDA_MESSAGE)

    monkeypatch.setattr(runner, "run_group", too_big)
    code = main(["run", "--dataset", "digits", "--hidden", "4", "--seeds", "1", "--sparsities", "0.5", "--candidates", "2",
                 "--epochs", "1", "--no-progress", "--store", str(tmp_path / "m.db")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    quoted = re.search(r"than is free \((.*)\); allowed:", err).group(1)
    assert quoted.endswith("...") and len(quoted) <= 160
    kept = quoted[:-3]
    assert CUDA_MESSAGE.startswith(kept)
    assert CUDA_MESSAGE[len(kept)] in " ;,.)"  # the next character of the message ends a word


@pytest.mark.parametrize(
    "text,limit,expected",
    [
        ("short enough", 20, "short enough"),
        ("one two three four five", 15, "one two..."),
        ("one two three four five", 14, "one two..."),
        ("one two three; four five", 17, "one two three..."),
        ("x" * 30, 10, "xxxxxxx..."),  # one word longer than the limit: cut inside it
        ("a\nmessage  on\tlines", 40, "a message on lines"),
    ],
)
def test_shorten(text, limit, expected):
    assert runner.shorten(text, limit) == expected
    assert len(runner.shorten(text, limit)) <= limit


# Seconds each work group took (mnist1d, 3 seeds; a shared 2-core machine, OMP_NUM_THREADS=1),
# measured when the bar's units were chosen: round 1's quick preset (hidden 256x3, 30 epochs, K=100)
# and a wider parent (hidden 512x3, 5 epochs, K=20).
MEASURED = {
    "quick": (ExperimentConfig(hidden=(256, 256, 256), seeds=(0, 1, 2), epochs=30, batch_size=128, patience=0),
              {"dense": 6.07, "s=0.5": 5.73, "s=0.9": 1.23, "s=0.98": 0.86}),
    "wide": (ExperimentConfig(hidden=(512, 512, 512), seeds=(0, 1, 2), sparsities=(0.5, 0.8, 0.95), epochs=5, candidates=20,
                              batch_size=128, patience=0),
             {"dense": 6.33, "s=0.5": 3.20, "s=0.8": 0.83, "s=0.95": 0.22}),
}


def predicted_after_dense(units: dict[str, float], seconds: dict[str, float]) -> float:
    """The time left the bar shows once the dense group is done: its rate applied to the rest."""
    rate = units["dense"] / seconds["dense"]
    return sum(u for label, u in units.items() if label != "dense") / rate


@pytest.mark.parametrize("name", list(MEASURED))
def test_the_time_left_after_the_dense_group_is_within_a_factor_two_of_the_truth(name):
    cfg, seconds = MEASURED[name]
    spec = MLPSpec(40, cfg.hidden, 10, cfg.activation)  # mnist1d: 40 features, 10 classes
    units = {g.label: runner.work_units(cfg, g, spec) for g in plan(cfg)}
    assert set(units) == set(seconds)
    actual = sum(s for label, s in seconds.items() if label != "dense")
    assert actual / 2 <= predicted_after_dense(units, seconds) <= actual * 2
    if name == "quick":  # counting network-epochs, as the bar did, predicts several times the truth
        net_epochs = {g.label: g.n_trials * cfg.epochs for g in plan(cfg)}
        assert predicted_after_dense(net_epochs, seconds) > actual * 4


def test_the_bar_counts_every_group_and_ends_at_100_percent(tmp_path, tiny_config, capsys):
    runner.run(tiny_config, store=tmp_path / "b.db", progress=True)
    err = capsys.readouterr().err
    assert "training: 100%" in err and "s=0.9" in err
