"""``evolution``: regularized evolution over masks (Real et al. 2019) at a fixed sparsity."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import sparsebench
from sparsebench.errors import ConfigError
from sparsebench.methods.base import SelectionContext
from sparsebench.methods.evolution import Evolution, evolve, mutate
from sparsebench.methods.registry import canonical_params, make_method
from sparsebench.models.mask import NodeMask, random_masks


@pytest.mark.parametrize("widths, sparsity", [((10, 8), 0.5), ((256, 256, 256), 0.9), ((6, 5), 0.98), ((7, 1, 9), 0.3)])
def test_any_number_of_mutations_keeps_every_layers_count_and_swaps_one_node_in_one_layer(widths, sparsity):
    g = torch.Generator().manual_seed(3)
    (mask,) = random_masks(widths, sparsity, 1, g)
    expected = mask.kept_per_layer
    for _ in range(500):
        child = mutate(mask, g)
        child.check()  # sorted, distinct, in range
        assert child.kept_per_layer == expected
        changed = [i for i, (a, b) in enumerate(zip(mask.kept, child.kept)) if a != b]
        if any(0 < k < w for k, w in zip(expected, widths)):
            assert len(changed) == 1
            a, b = set(mask.kept[changed[0]]), set(child.kept[changed[0]])
            assert len(a - b) == 1 and len(b - a) == 1  # one kept node out, one dropped node in
        mask = child


def test_a_layer_that_keeps_every_node_never_mutates_and_a_full_mask_stays_as_it_is():
    g = torch.Generator().manual_seed(0)
    mask = NodeMask.from_indices([[0, 1], [0, 1, 2]], (4, 3))
    for _ in range(100):
        mask = mutate(mask, g)
        assert mask.kept[1] == (0, 1, 2)
    full = NodeMask.full((3, 2))
    assert mutate(full, g) == full


def test_a_layer_is_chosen_in_proportion_to_its_possible_swaps():
    # kept x dropped: 5 x 5 = 25 swaps in layer 0, 2 x 2 = 4 in layer 1: each one-swap neighbour equally likely.
    g = torch.Generator().manual_seed(1)
    mask = NodeMask.from_indices([range(5), range(2)], (10, 4))
    layer0 = sum(mutate(mask, g).kept[0] != mask.kept[0] for _ in range(3000)) / 3000
    assert abs(layer0 - 25 / 29) < 0.02, layer0


def test_aging_evicts_the_oldest_even_when_it_is_the_best():
    # Member 0 scores best of all and every child worse: an evolution that evicted the worst would keep choosing 0
    # as parent; aging removes it after the first cycle, and cycle c chooses among members c .. c+P-1 only.
    first = {0: 0.0, 1: 5.0, 2: 6.0}
    history = evolve([0, 1, 2], budget=12, sample=20, mutate=lambda m: m + 100,
                     score=lambda ms: [first.get(m, 9.0 + m / 1000) for m in ms], better=lambda a, b: a < b,
                     generator=torch.Generator().manual_seed(0))
    assert len(history.members) == 12 and len(history.parents) == 9
    assert history.parents[0] == 0
    assert 0 not in history.parents[1:]
    assert all(c <= p < c + 3 for c, p in enumerate(history.parents)), history.parents
    # each child is its parent's mutation
    assert all(history.members[3 + c] == history.members[p] + 100 for c, p in enumerate(history.parents))


def test_the_tournament_picks_the_best_sampled_member_ties_to_the_oldest():
    # Every member scores the same: the tournament's winner is always the oldest member it drew.
    g = torch.Generator().manual_seed(5)
    history = evolve(list(range(4)), budget=30, sample=2, mutate=lambda m: m, score=lambda ms: [1.0] * len(ms),
                     better=lambda a, b: a < b, generator=g)
    g = torch.Generator().manual_seed(5)
    population = list(range(4))
    for parent in history.parents:
        drawn = torch.randint(4, (2,), generator=g).tolist()
        assert parent == min(population[i] for i in drawn)
        population = population[1:] + [len(population) + population[0]]


def sequential_evolution(first, budget, sample, mutate, score, better, g):
    """Algorithm 1 as written: every child scored at once. Returns (members, scores, parents)."""
    members, scores, parents = list(first), [score(m) for m in first], []
    population = list(range(len(first)))
    while len(members) < budget:
        drawn = [population[i] for i in torch.randint(len(population), (sample,), generator=g).tolist()]
        parent = drawn[0]
        for m in drawn:
            if better(scores[m], scores[parent]) or (scores[m] == scores[parent] and m < parent):
                parent = m
        parents.append(parent)
        members.append(mutate(members[parent]))
        scores.append(score(members[-1]))
        population = population[1:] + [len(members) - 1]
    return members, scores, parents


@pytest.mark.parametrize("population, sample, budget", [(20, 5, 100), (3, 2, 16), (4, 1, 30), (5, 25, 60), (6, 6, 6)])
@pytest.mark.parametrize("seed", range(5))
def test_scoring_children_in_batches_changes_nothing_of_the_sequential_algorithm(population, sample, budget, seed):
    def score(m):  # a score with many ties and no order to exploit
        return float((m * 2654435761) % 97 // 8)

    def run(batched):
        g = torch.Generator().manual_seed(seed)
        mutate_ = lambda m: m * 31 + int(torch.randint(1000, (1,), generator=g))  # noqa: E731 (draws from g too)
        better = lambda a, b: a > b  # noqa: E731
        first = list(range(100, 100 + population))
        if batched:
            h = evolve(first, budget, sample, mutate=mutate_, score=lambda ms: [score(m) for m in ms],
                       better=better, generator=g)
            return (h.members, h.scores, h.parents), h.batches
        return sequential_evolution(first, budget, sample, mutate_, score, better, g), None

    (batched, batches), (sequential, _) = run(True), run(False)
    assert batched == sequential
    assert batches[0] == population and sum(batches) == budget
    if (population, sample) == (20, 5):
        assert len(batches) - 1 < (budget - population) / 2  # measured: 2.5 children a call on average


def count_scored(monkeypatch) -> list[int]:
    """How many masks each ``SelectionContext.score`` call scores, from now on (in call order)."""
    calls: list[int] = []
    original = SelectionContext.score

    def counted(self, masks):
        calls.append(len(masks))
        return original(self, masks)

    monkeypatch.setattr(SelectionContext, "score", counted)
    return calls


@pytest.mark.parametrize("name", ["mlp", "cnn1d"])
@pytest.mark.parametrize("candidates, population, sample", [(16, None, None), (9, 4, 3), (5, 5, 2), (1, None, None)])
def test_evolution_scores_exactly_its_budget_returns_every_candidate_and_keeps_the_best(
        make_context, monkeypatch, name, candidates, population, sample):
    ctx = make_context(name, sparsity=0.7)
    method = Evolution(candidates=candidates, population=population, sample=sample)
    calls = count_scored(monkeypatch)
    selection = method.select(ctx)
    assert calls[0] == method.population and sum(calls) == candidates  # the first population in one call
    assert len(selection.candidates) == len(selection.scores) == candidates
    assert selection.cost() == (candidates, 0)
    assert all(m.kept_per_layer == ctx.kept() for m in selection.candidates)
    best = min(selection.scores)
    assert selection.chosen == selection.scores.index(best) and selection.mask == selection.candidates[selection.chosen]
    # the scores stored are each candidate's own score
    rescored = make_context(name, sparsity=0.7).score(selection.candidates)
    torch.testing.assert_close(torch.tensor(selection.scores), rescored.float())


def test_evolution_is_deterministic_and_its_stream_decides_it(make_context):
    a = Evolution(candidates=20).select(make_context("mlp", sparsity=0.6))
    b = Evolution(candidates=20).select(make_context("mlp", sparsity=0.6))
    assert a.candidates == b.candidates and a.scores == b.scores and a.chosen == b.chosen
    other = Evolution(candidates=20).select(make_context("mlp", sparsity=0.6, method="other"))
    assert other.candidates != a.candidates


def test_evolution_ranks_by_its_own_score_in_its_direction(make_context):
    ctx = make_context("mlp", sparsity=0.5)
    selection = Evolution(candidates=12, score="accuracy").select(ctx)
    assert selection.scores[selection.chosen] == max(selection.scores)
    rescored = dataclasses.replace(make_context("mlp", sparsity=0.5), score_name="accuracy").score(selection.candidates)
    torch.testing.assert_close(torch.tensor(selection.scores), rescored.float())


def test_evolution_improves_on_its_first_population_where_the_score_rewards_it():
    # A score that counts kept nodes of low index: the best first member is beaten by its mutants within the budget.
    from sparsebench.methods.evolution import best

    g = torch.Generator().manual_seed(0)
    first = random_masks((40, 40), 0.5, 5, g)

    def score(mask):
        return float(sum(sum(layer) for layer in mask.kept))

    history = evolve(first, 200, 2, mutate=lambda m: mutate(m, g), score=lambda ms: [score(m) for m in ms],
                     better=lambda a, b: a < b, generator=g)
    assert min(history.scores) < min(history.scores[:5]) - 100
    assert best(range(200), history.scores, lambda a, b: a < b) == history.scores.index(min(history.scores))


@pytest.mark.parametrize("candidates, expected", [(100, (20, 5)), (16, (3, 2)), (128, (25, 6)), (2, (2, 2)), (1, (1, 1))])
def test_default_population_and_tournament_follow_the_budget(candidates, expected):
    method = Evolution(candidates=candidates)
    assert (method.population, method.sample) == expected


@pytest.mark.parametrize("params, message", [
    ({"population": 17}, "parameter population: got 17; allowed: a whole number in [1, candidates = 16]"),
    ({"population": 0}, "parameter population: got 0; allowed: a whole number in [1, candidates = 16]"),
    ({"population": 4, "sample": 5}, "parameter sample: got 5; allowed: a whole number in [1, population = 4]"),
    ({"sample": True}, "parameter sample: got True; allowed: a whole number in [1, population = 3]"),
    ({"score": "nope"}, "parameter score: got 'nope'; allowed: one of "),
    ({"candidates": 0}, "parameter candidates: got 0; allowed: a whole number >= 1"),
])
def test_bad_parameters_are_refused_in_one_line(params, message):
    with pytest.raises(ConfigError) as err:
        canonical_params("evo", "evolution", params, {"candidates": 16, "score": "loss"})
    assert str(err.value).startswith("method 'evo' (evolution) " + message), str(err.value)
    assert "\n" not in str(err.value)


def test_budget_and_score_default_to_the_flat_keys():
    method = make_method("evolution", "evolution", "{}", {"candidates": 16, "score": "accuracy", "probe": 0})
    assert (method.candidates, method.population, method.sample, method.score) == (16, 3, 2, "accuracy")


def test_evolution_runs_from_the_command_line_and_stores_every_candidate(tmp_path, cli):
    db = tmp_path / "e.db"
    code, _, err = cli("run", "--dataset", "digits", "--hidden", "16,16", "--seeds", "2", "--sparsities", "0.5",
                       "--epochs", "1", "--candidates", "7", "--methods", "random,evolution,evo4=evolution",
                       "--method-param", "evo4.population=4", "--method-param", "evo4.score=accuracy",
                       "--store", str(db))
    assert code == 0, err
    trials = sparsebench.load_results(db)
    rows = trials[trials["method"].isin(["evolution", "evo4"])].set_index(["method", "seed"])
    assert (rows["candidate_evaluations"] == 7).all() and (rows["candidates"] == 7).all()
    assert (rows["search_epochs"] == 0).all()
    assert set(rows.loc["evo4", "score_name"]) == {"accuracy"}
    # A trial's initial score is its mask's score by the method's own score (here accuracy, not the flat loss).
    chosen = sparsebench.load_candidates(db).query("chosen == 1").set_index(["method", "seed"])["score"]
    for key in rows.index:
        assert rows.loc[key, "init_score"] == pytest.approx(chosen.loc[key], abs=1e-6), key
    code, out, _ = cli("list", "--names")
    assert "evolution" in out and "trained-search" in out
