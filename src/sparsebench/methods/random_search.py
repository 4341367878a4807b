"""``random-search``: the baseline of Farahani (2024).

Sample K masks uniformly at the sparsity, score each untrained sub-network on
the validation split (never the test split), keep the best. All K scores are
returned so the store keeps them, not only the winner's.
"""

from __future__ import annotations

import dataclasses

from .base import MAX_PROBES, Method, Selection, SelectionContext, check_count, check_probe, check_score

__all__ = ["MAX_PROBES", "RandomSearch"]


class RandomSearch(Method):
    """Parameters (each defaults to the config's flat key of the same name): ``candidates`` K, the masks
    sampled and scored; ``score``, how they are ranked at initialization: any score of ``sparsebench.scores``
    ("loss", lower is better, the default; "accuracy"; the training-free "naswot", "jacob-cov", "grad-norm",
    "synflow", higher is better), each candidate's value stored as the score defines it (naswot and synflow
    as natural logs); ``probe``, how many of the other scored candidates are also trained (at most K - 1).

    >>> RandomSearch(candidates=8, score="accuracy")
    RandomSearch(candidates=8, score='accuracy', probe=0)
    """

    CONFIG_DEFAULTS = {"candidates": "candidates", "score": "score", "probe": "probe"}

    def __init__(self, candidates: int = 100, score: str = "loss", probe: int = 0):
        self.candidates = check_count("candidates", candidates)
        self.score = check_score(score)
        self.probe = check_probe(probe, self.candidates)

    def select(self, ctx: SelectionContext) -> Selection:
        ctx = dataclasses.replace(ctx, candidates=self.candidates, score_name=self.score)
        candidates = ctx.sample(ctx.candidates)
        scores = [float(s) for s in ctx.score(candidates)]
        chosen = 0
        for i, s in enumerate(scores):
            if ctx.better(s, scores[chosen]):
                chosen = i  # strict: ties keep the earliest candidate
        return Selection(mask=candidates[chosen], candidates=candidates, scores=scores, chosen=chosen)
