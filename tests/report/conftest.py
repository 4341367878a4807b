"""One synthetic report, written once per test session and shared by the report tests."""

import pytest

from sparsebench.analysis import synthetic_results
from sparsebench.report import write_report

from .sample import CONFIG, HOSTILE_METHOD, SPARSITIES


@pytest.fixture(scope="session")
def results():
    return synthetic_results(
        seeds=12, sparsities=SPARSITIES, epochs=8, probes=3, score_coupling=0.05,
        methods=("dense", "random", "random-search", HOSTILE_METHOD), effects={HOSTILE_METHOD: -0.02},
        diverged=[("random", 0.9, 1)])


@pytest.fixture(scope="session")
def report_paths(results, tmp_path_factory):
    trials, curves = results
    return write_report(trials, curves, CONFIG, tmp_path_factory.mktemp("report"))
