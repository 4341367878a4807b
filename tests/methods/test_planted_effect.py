"""A planted effect: a deliberately bad node-level method, built on the context's per-node activations, is
detected as worse than ``random`` by the paired comparison. If the harness could not see this, it could not see
a real method's gain either."""

from __future__ import annotations

import time

import sparsebench
from sparsebench.analysis import paired_comparison
from sparsebench.methods import registry
from sparsebench.methods.node_scores import NodeScoreMethod


class LeastActive(NodeScoreMethod):
    """Keeps the nodes least active on the training data: many of them are dead ReLUs that never learn."""

    def __init__(self, batches: int = 2):
        self.batches = batches

    def node_scores(self, ctx):
        return [-a for a in ctx.activations(batches=self.batches)]


def test_keeping_the_least_active_nodes_is_detected_as_worse_than_random(tmp_path, monkeypatch):
    monkeypatch.setitem(registry._METHODS, "least-active", LeastActive)
    # Deep and narrow after pruning (13 nodes a layer kept of 256), trained briefly: the least active nodes of
    # the deeper layers are nearly dead at initialization, and a sub-network of them carries almost no signal.
    config = dict(dataset="digits", hidden=[256, 256, 256], seeds=list(range(10)), sparsities=[0.95],
                  methods=["random", "least-active"], epochs=3, batch_size=64, lr=1e-2)
    start = time.perf_counter()
    trials = sparsebench.run(config, store=tmp_path / "s.db", progress=False)
    table = paired_comparison(trials)
    row = table[table.method == "least-active"].iloc[0]
    assert row.n == 10
    assert row.verdict == "worse", row.to_dict()
    assert row.mean_diff < -0.05  # measured: -0.22 (random 0.67, least-active 0.46)
    assert time.perf_counter() - start < 120
