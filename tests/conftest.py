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


@pytest.fixture
def install_plugin(tmp_path, monkeypatch):
    """``install_plugin(module, source, entry_points)``: a plugin package as pip would leave it.

    Writes ``module.py`` and a ``.dist-info`` with ``entry_points`` (the text of
    entry_points.txt) into ``tmp_path`` and puts it on ``sys.path``; the module
    is forgotten again after the test.
    """
    import sys

    installed = []

    def install(module: str, source: str, entry_points: str):
        (tmp_path / f"{module}.py").write_text(source)
        dist = tmp_path / f"{module}-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(entry_points)
        monkeypatch.syspath_prepend(str(tmp_path))
        installed.append(module)
        return tmp_path

    yield install
    for module in installed:
        sys.modules.pop(module, None)
