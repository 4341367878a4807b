"""``SelectionContext.train``: brief training of candidates, as the experiment trains, without the test split."""

from __future__ import annotations

import math

import pytest
import torch

from sparsebench.data.registry import DatasetSplits
from sparsebench.engine.common import TrainSettings
from sparsebench.engine.families import engine_for
from sparsebench.errors import ConfigError

SETTINGS = TrainSettings(epochs=9, batch_size=16, optimizer="adam", lr=1e-2, patience=1)


@pytest.mark.parametrize("name", ["mlp", "cnn1d-bn-fc"])
def test_train_equals_the_reference_trainer_on_each_mask(name, make_context):
    ctx = make_context(name, sparsity=0.5)
    ctx.training = SETTINGS
    masks = ctx.sample(3)
    results = ctx.train(masks, epochs=2)
    engine = engine_for(ctx.family)
    data = DatasetSplits("d", ctx.x_train, ctx.y_train, ctx.x_val, ctx.y_val, ctx.x_val[:0], ctx.y_val[:0], n_classes=3)
    plain = TrainSettings(epochs=2, batch_size=16, optimizer="adam", lr=1e-2)
    for mask, result in zip(masks, results):
        expected = engine.train_reference(ctx.parent.weights, mask, ctx.seed, data, plain)
        assert len(result.val_acc) == 2 and len(result.train_loss) == 2  # epochs given, no early stop
        torch.testing.assert_close(torch.tensor(result.val_loss), torch.tensor(expected.val_loss), rtol=1e-3, atol=1e-5)
        torch.testing.assert_close(torch.tensor(result.train_loss), torch.tensor(expected.train_loss), rtol=1e-3, atol=1e-5)
        assert math.isnan(result.final_test_acc)  # the test split is never given
    assert len({tuple(r.val_loss) for r in results}) == 3


def test_train_without_training_settings_gives_one_line(make_context):
    ctx = make_context("mlp")
    with pytest.raises(ConfigError, match="^train: this selection context has no training settings"):
        ctx.train(ctx.sample(1), epochs=1)
    ctx.training = SETTINGS
    with pytest.raises(ConfigError, match="^epochs: got 0; allowed: a whole number >= 1$"):
        ctx.train(ctx.sample(1), epochs=0)


TRAINED_SEARCH = '''
from sparsebench.methods import Method, Selection

class BrieflyTrained(Method):
    """Trains 3 sampled candidates for one epoch each and keeps the best validation accuracy."""
    def select(self, ctx):
        masks = ctx.sample(3)
        results = ctx.train(masks, epochs=1)
        scores = [r.val_acc[-1] for r in results]
        best = max(range(3), key=lambda i: (scores[i], -i))
        return Selection(masks[best], masks, scores, best, search_epochs=3)
'''


def test_ctx_train_runs_inside_a_real_run_with_the_experiments_settings(tmp_path, monkeypatch, cli):
    import sparsebench

    (tmp_path / "trained_search.py").write_text(TRAINED_SEARCH)
    monkeypatch.syspath_prepend(str(tmp_path))
    db = tmp_path / "t.db"
    code, _, err = cli("run", "--dataset", "digits", "--hidden", "16,16", "--seeds", "1", "--sparsities", "0.5",
                       "--epochs", "2", "--methods", "random,trained_search:BrieflyTrained", "--store", str(db))
    assert code == 0, err
    trials = sparsebench.load_results(db)
    row = trials[trials["method"] == "trained_search:BrieflyTrained"].iloc[0]
    assert row["search_epochs"] == 3 and row["candidate_evaluations"] == 3
