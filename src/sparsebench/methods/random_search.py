"""``random-search``: the baseline of Farahani (2024).

Sample K masks uniformly at the sparsity, score each untrained sub-network on
the validation split (never the test split), keep the best. All K scores are
returned so the store keeps them, not only the winner's.
"""

from __future__ import annotations

import dataclasses

from ..errors import invalid
from ..names import SCORES
from .base import Method, Selection, SelectionContext, check_count

#: The most probes of one (seed, sparsity): as the flat ``probe`` key allows.
MAX_PROBES = 1 << 12


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
        if score not in SCORES:
            raise invalid("score", score, "one of " + ", ".join(SCORES))
        self.score = score
        if isinstance(probe, bool) or not isinstance(probe, int) or not 0 <= probe <= MAX_PROBES:
            raise invalid("probe", probe, f"an integer in [0, {MAX_PROBES}]")
        if probe > candidates - 1 and probe > 0:
            raise invalid("probe", probe, f"at most candidates - 1 = {candidates - 1}")
        self.probe = probe

    def select(self, ctx: SelectionContext) -> Selection:
        ctx = dataclasses.replace(ctx, candidates=self.candidates, score_name=self.score)
        candidates = ctx.sample(ctx.candidates)
        scores = [float(s) for s in ctx.score(candidates)]
        chosen = 0
        for i, s in enumerate(scores):
            if ctx.better(s, scores[chosen]):
                chosen = i  # strict: ties keep the earliest candidate
        return Selection(mask=candidates[chosen], candidates=candidates, scores=scores, chosen=chosen)
