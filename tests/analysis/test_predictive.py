import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sparsebench.analysis import score_predictiveness
from sparsebench.analysis.predictive import fisher_interval, scored_candidates


def candidates(sparsity, scores, accs, seed=0, winner=0, method="random-search", **extra):
    return pd.DataFrame([dict(experiment_id=1, method=method, status="done", sparsity=sparsity, seed=seed,
                              role="selected" if i == winner else "probe", candidate=i,
                              score_name="loss", init_score=s, final_test_acc=a, **extra)
                         for i, (s, a) in enumerate(zip(scores, accs))])


SCORES = [2.1, 2.3, 2.2, 2.5, 2.4, 2.6, 2.0]
ACCS = [0.80, 0.78, 0.81, 0.74, 0.77, 0.75, 0.79]


def test_spearman_and_fisher_interval_match_scipy_and_hand_values():
    table = score_predictiveness(candidates(0.9, SCORES, ACCS))
    row = table[table["scope"] == "sparsity"].iloc[0]
    expected = stats.spearmanr(SCORES, ACCS)
    assert row["n"] == 7
    assert row["rho"] == pytest.approx(expected.statistic) and row["p"] == pytest.approx(expected.pvalue)
    z, se = math.atanh(expected.statistic), math.sqrt(1.06 / 4)
    assert row["ci_low"] == pytest.approx(math.tanh(z - 1.959964 * se), rel=1e-5)
    assert row["ci_high"] == pytest.approx(math.tanh(z + 1.959964 * se), rel=1e-5)
    assert row["rho_useful"] == pytest.approx(-row["rho"])  # loss score: negative rho is useful


def test_only_probes_and_the_scored_winner_count():
    data = pd.concat([
        candidates(0.9, SCORES, ACCS),
        candidates(0.9, [9.0], [0.1], method="random"),  # another method
        candidates(0.9, [1.0], [math.nan], winner=-1).assign(status="diverged"),  # diverged probe
        candidates(0.9, [1.0, 2.0], [0.5, 0.6], winner=0).assign(candidate=-1, role="selected"),
    ])
    chosen = scored_candidates(data)
    assert len(chosen) == 7 and set(chosen["role"]) == {"selected", "probe"}


def test_fewer_than_three_points_give_nan_rows():
    table = score_predictiveness(candidates(0.9, [2.0, 2.1], [0.8, 0.7]))
    row = table.iloc[0]
    assert row["n"] == 2 and math.isnan(row["rho"]) and math.isnan(row["ci_low"])
    three = score_predictiveness(candidates(0.9, [2.0, 2.1, 2.2], [0.8, 0.7, 0.75])).iloc[0]
    assert math.isfinite(three["rho"]) and math.isnan(three["ci_low"])  # interval needs n >= 4


def test_constant_scores_do_not_crash():
    row = score_predictiveness(candidates(0.9, [2.0] * 5, ACCS[:5])).iloc[0]
    assert math.isnan(row["rho"])


def test_pooled_combines_per_sparsity_rhos_on_the_z_scale():
    rng = np.random.default_rng(0)
    a = candidates(0.5, rng.normal(size=12), rng.normal(size=12))
    b = candidates(0.9, SCORES, ACCS)
    table = score_predictiveness(pd.concat([a, b]))
    per = table[table["scope"] == "sparsity"].set_index("sparsity")
    weights = np.array([12 - 3, 7 - 3])
    z = np.arctanh(per["rho"].to_numpy())
    pooled = table[table["scope"] == "pooled"].iloc[0]
    assert pooled["n"] == 19 and math.isnan(pooled["sparsity"])
    assert pooled["rho"] == pytest.approx(np.tanh((weights * z).sum() / weights.sum()))
    assert (pooled["ci_low"], pooled["ci_high"]) == pytest.approx(fisher_interval(pooled["rho"], [12, 7]))


def test_no_probes_gives_an_empty_table():
    winners_only = pd.concat([candidates(0.9, [2.0], [0.8], seed=seed) for seed in range(5)])
    table = score_predictiveness(winners_only)
    assert table.empty and "rho" in table.columns


def confounded(seeds=8, per_group=6, random_state=0):
    """Within every seed a lower loss gives a higher accuracy (a useful score), but seeds whose
    parent starts at a higher loss train to a much higher accuracy: pooled, the signs flip."""
    rng = np.random.default_rng(random_state)
    frames = []
    for seed in range(seeds):
        scores = 2.0 + 0.2 * seed + np.sort(rng.uniform(0, 0.05, per_group))
        accs = 0.6 + 0.05 * seed - 0.2 * (scores - scores.mean()) + rng.normal(0, 0.002, per_group)
        for sparsity in (0.5, 0.9):
            frames.append(candidates(sparsity, scores, accs, seed=seed, winner=0))
    return pd.concat(frames, ignore_index=True)


def test_within_seed_and_pooled_correlations_can_have_opposite_signs():
    from sparsebench.analysis import winner_vs_probes, within_seed_predictiveness

    trials = confounded()
    pooled = score_predictiveness(trials).query("scope == 'pooled'").iloc[0]
    assert pooled["rho"] > 0.5  # pooled: "anti-predictive", and wrongly so
    within = within_seed_predictiveness(trials)
    overall = within[within["scope"] == "overall"].iloc[0]
    assert overall["mean_rho"] < -0.5 and overall["mean_rho_useful"] > 0.5
    assert overall["ci_high"] < 0 and overall["p"] < 0.05
    assert overall["n_groups"] == 16 and overall["n_seeds"] == 8 and overall["n_candidates"] == 96
    # by hand: the seeds' rhos, each averaged over its two sparsities, then a t interval over seeds
    per_group = [stats.spearmanr(g["init_score"], g["final_test_acc"]).statistic
                 for _, g in trials.groupby(["seed", "sparsity"])]
    per_seed = np.mean(np.reshape(per_group, (8, 2)), axis=1)
    assert overall["mean_rho"] == pytest.approx(per_seed.mean())
    assert overall["p"] == pytest.approx(stats.ttest_1samp(per_seed, 0).pvalue)
    assert len(within[within["scope"] == "sparsity"]) == 2
    winner = winner_vs_probes(trials).query("scope == 'overall'").iloc[0]
    assert winner["mean_diff"] > 0 and winner["ci_low"] > 0 and winner["n_groups"] == 16


def test_within_seed_skips_groups_without_a_correlation_and_is_empty_without_probes():
    from sparsebench.analysis import winner_vs_probes, within_seed_predictiveness

    two = pd.concat([candidates(0.9, [2.0, 2.1], [0.8, 0.7], seed=s) for s in range(3)])
    assert within_seed_predictiveness(two).empty  # 2 candidates per group: no rho
    assert winner_vs_probes(two).iloc[-1]["mean_diff"] == pytest.approx(0.1)
    winners_only = pd.concat([candidates(0.9, [2.0], [0.8], seed=seed) for seed in range(5)])
    assert within_seed_predictiveness(winners_only).empty and winner_vs_probes(winners_only).empty
    assert "mean_rho" in within_seed_predictiveness(winners_only).columns
