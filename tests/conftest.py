"""Shared fixtures: tiny configs that train in well under a second."""

import pytest

from sparsebench import ExperimentConfig
from sparsebench.cli import main

TINY = dict(
    dataset="digits",
    hidden=(24, 24),
    seeds=(0, 1),
    sparsities=(0.5, 0.9),
    candidates=6,
    epochs=2,
    batch_size=64,
)


@pytest.fixture
def tiny_config() -> ExperimentConfig:
    return ExperimentConfig(**TINY)


@pytest.fixture
def tiny_dict() -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in TINY.items()}


@pytest.fixture
def cli(capsys):
    """Run the command line in-process: ``cli("run", ...) -> (exit code, stdout, stderr)``.

    argparse's SystemExit counts as the exit code the shell would see.
    """

    def call(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return call
