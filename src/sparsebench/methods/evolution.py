"""``evolution``: regularized (aging) evolution over masks at a fixed sparsity (Real et al. 2019, AAAI,
*Regularized Evolution for Image Classifier Architecture Search*, Algorithm 1).

A population of P masks is drawn uniformly at the sparsity and scored. Then, until K candidates have been
scored: S members are sampled from the population (with replacement, as Algorithm 1 samples), the best of them
by the score is the parent, its child is the parent with one kept node swapped for one dropped node of the same
layer, the child is scored and joins the population, and the **oldest** member leaves it (aging: a mask
survives by being re-discovered through its children, not by having scored well once). The mask returned is
the best scored over the whole history, as in the paper.

The budget is that of ``random-search``: K scored sub-networks in all (the P of the first population
included), and every one of them is returned in the Selection, in the order it was scored, so the store keeps
them as it keeps random-search's K. The score is any of ``names.SCORES``, taken through
``SelectionContext.score`` and ranked by ``SelectionContext.better``.

Children are scored in batches without changing the algorithm: nothing random depends on a score (a
tournament draws positions in the population, whose members are always the last P scored; a mutation draws
one swap among kept x dropped pairs, the same count for every mask at one sparsity), so children are made as
long as each tournament draws only members already scored, and scored together when one draws a child not yet
scored. Every tournament sees exactly what it sees when each child is scored at once; the draws come in the
same order. One call per child would cost little on one idle thread (measured, MNIST-1D's 250 validation rows:
MLP 256x3, 0.5 ms a mask alone vs 0.5 ms in a batch of 16 at s=0.5, 0.3 vs 0.04 ms at s=0.9), but on a loaded
machine a call's fixed cost grows: in the issue's check (2 threads, load ~15) scoring 13 children one at a time
took 3.4 s against random-search's 0.5 s for 16 in one call. With P=20, S=5 a batch holds 2.5 children on
average (measured over 200 seeds; a tournament of 5 avoids the newest child with probability (19/20)^5),
at K=16 (P=3, S=2) 1.5.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Generic, Iterable, TypeVar

import torch

from ..errors import invalid
from ..models.mask import NodeMask
from .base import Method, Selection, SelectionContext, check_count, check_probe, check_score

T = TypeVar("T")


def default_population(candidates: int) -> int:
    """P when none is given: a fifth of the budget, at least 2, at most the budget.

    A fifth leaves four fifths of the evaluations to evolution (80 cycles at K=100, P=20; 13 at K=16,
    P=3), and a population small enough that aging turns it over several times.

    >>> default_population(100), default_population(16), default_population(1)
    (20, 3, 1)
    """
    return min(candidates, max(2, candidates // 5))


def default_sample(population: int) -> int:
    """S when none is given: a quarter of the population, at least 2 (a tournament that compares), at most P.

    >>> default_sample(20), default_sample(3), default_sample(1)
    (5, 2, 1)
    """
    return min(population, max(2, population // 4))


def swaps_per_layer(mask: NodeMask) -> list[int]:
    """How many (kept, dropped) node pairs each layer of ``mask`` can swap: kept x dropped."""
    return [k * (w - k) for k, w in zip(mask.kept_per_layer, mask.widths)]


def mutate(mask: NodeMask, generator: torch.Generator) -> NodeMask:
    """``mask`` with one kept node swapped for one dropped node of the same layer: every layer keeps its count.

    The swap is drawn uniformly among all of the mask's one-swap neighbours, so a layer is chosen with
    probability proportional to kept x dropped (equal widths: each layer equally often; a layer that keeps
    every node, or one, of one node, is never chosen). One draw from ``generator`` per mutation. A mask with
    no swap anywhere (every layer full) is returned as it is.

    >>> m = NodeMask.from_indices([[0, 1], [2]], (4, 3))
    >>> child = mutate(m, torch.Generator().manual_seed(0))
    >>> child.kept_per_layer, child != m
    ((2, 1), True)
    """
    swaps = swaps_per_layer(mask)
    total = sum(swaps)
    if total == 0:
        return mask
    pick = int(torch.randint(total, (1,), generator=generator))
    layer = 0
    while pick >= swaps[layer]:
        pick -= swaps[layer]
        layer += 1
    kept = mask.kept[layer]
    kept_set = set(kept)
    dropped = [i for i in range(mask.widths[layer]) if i not in kept_set]
    out, into = kept[pick // len(dropped)], dropped[pick % len(dropped)]
    new_layer = tuple(sorted([i for i in kept if i != out] + [into]))
    return NodeMask(mask.kept[:layer] + (new_layer,) + mask.kept[layer + 1:], mask.widths)


class Evolution(Method):
    """Regularized evolution over masks. Parameters: ``candidates`` K, the sub-networks scored in all (default:
    the config's flat ``candidates``, random-search's budget); ``population`` P (default ``K // 5``, at least 2,
    at most K: 20 at K=100, 3 at K=16); ``sample`` S, the tournament size (default ``P // 4``, at least 2, at
    most P: 5 at P=20, 2 at P=3); ``score``, how candidates are ranked (default: the config's flat ``score``);
    ``probe``, how many of the other scored candidates are also trained (default 0, at most K - 1; not the flat
    ``probe``, which is random-search's). Probes are drawn among the positions of the history, so a mask that
    evolution scored twice (a swap undone by a later one) may be drawn twice, even as the winner's twin: each
    is a scored candidate.

    >>> Evolution(candidates=100)
    Evolution(candidates=100, population=20, sample=5, score='loss', probe=0)
    """

    CONFIG_DEFAULTS = {"candidates": "candidates", "score": "score"}

    def __init__(self, candidates: int = 100, population: int | None = None, sample: int | None = None,
                 score: str = "loss", probe: int = 0):
        self.candidates = check_count("candidates", candidates)
        if population is None:
            population = default_population(candidates)
        if isinstance(population, bool) or not isinstance(population, int) or not 1 <= population <= candidates:
            raise invalid("population", population, f"a whole number in [1, candidates = {candidates}]")
        self.population = population
        if sample is None:
            sample = default_sample(population)
        if isinstance(sample, bool) or not isinstance(sample, int) or not 1 <= sample <= population:
            raise invalid("sample", sample, f"a whole number in [1, population = {population}]")
        self.sample = sample
        self.score = check_score(score)
        self.probe = check_probe(probe, self.candidates)

    def select(self, ctx: SelectionContext) -> Selection:
        ctx = dataclasses.replace(ctx, candidates=self.candidates, score_name=self.score)
        history = evolve(ctx.sample(self.population), self.candidates, self.sample,
                         mutate=lambda mask: mutate(mask, ctx.generator),
                         score=lambda masks: [float(s) for s in ctx.score(masks)],
                         better=ctx.better, generator=ctx.generator)
        chosen = best(range(len(history.members)), history.scores, ctx.better)
        return Selection(mask=history.members[chosen], candidates=history.members, scores=history.scores,
                         chosen=chosen)


@dataclass
class History(Generic[T]):
    """Everything one evolution evaluated, in order (the first population first); per cycle the index of the
    parent its tournament chose (``members[P + c]`` is the child of ``members[parents[c]]``); and how many
    members each call of ``score`` scored."""

    members: list[T]
    scores: list[float]
    parents: list[int] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)


def evolve(first: list[T], budget: int, sample: int, *, mutate: Callable[[T], T],
           score: Callable[[list[T]], list[float]], better: Callable[[float, float], bool],
           generator: torch.Generator) -> History[T]:
    """Algorithm 1 of Real et al. (2019): score the first population, then cycle until ``budget`` members are
    scored.

    Each cycle draws ``sample`` members of the current population uniformly with replacement (one draw from
    ``generator``), takes the best of them as the parent (ties: the oldest), adds its child (``mutate``) and
    removes the oldest member. The population is always the last ``len(first)`` members, so cycle c's parent is
    one of members c .. c + len(first) - 1. Children wait to be scored (``score``: a list of members to their
    scores) until a tournament draws one of them, or the budget is spent; ``mutate`` may draw from
    ``generator`` but not ``score``, so the draws and the choices are those of scoring each child at once.

    >>> h = evolve([0, 10], 4, 2, mutate=lambda m: m + 1, score=lambda ms: [float(m) for m in ms],
    ...            better=lambda a, b: a < b, generator=torch.Generator().manual_seed(0))
    >>> len(h.members), all(c <= p < c + 2 for c, p in enumerate(h.parents)), sum(h.batches)
    (4, True, 4)
    """
    history: History[T] = History(list(first), [])

    def score_waiting() -> None:
        waiting = history.members[len(history.scores):]
        if waiting:
            history.scores += score(waiting)
            history.batches.append(len(waiting))

    score_waiting()
    population = deque(range(len(first)))  # indices into history, oldest first: aging evicts from the left
    while len(history.members) < budget:
        drawn = [population[i] for i in torch.randint(len(population), (sample,), generator=generator).tolist()]
        if max(drawn) >= len(history.scores):  # this tournament needs a child not yet scored
            score_waiting()
        parent = best(drawn, history.scores, better)
        history.parents.append(parent)
        history.members.append(mutate(history.members[parent]))
        population.append(len(history.members) - 1)
        population.popleft()
    score_waiting()
    return history


def best(members: Iterable[int], scores: list[float], better: Callable[[float, float], bool]) -> int:
    """The member (an index into ``scores``) with the best score; ties go to the oldest (lowest index).

    >>> best([3, 1, 2], [0.0, 5.0, 1.0, 5.0], lambda a, b: a > b)
    1
    """
    chosen = None
    for m in members:
        if chosen is None or better(scores[m], scores[chosen]) or (scores[m] == scores[chosen] and m < chosen):
            chosen = m
    return chosen
