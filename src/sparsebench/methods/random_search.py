"""``random-search``: the baseline of Farahani (2024).

Sample K masks uniformly at the sparsity, score each untrained sub-network on
the validation split (never the test split), keep the best. All K scores are
returned so the store keeps them, not only the winner's.
"""

from .base import Method, Selection, SelectionContext


class RandomSearch(Method):
    def select(self, ctx: SelectionContext) -> Selection:
        candidates = ctx.sample(ctx.candidates)
        scores = [float(s) for s in ctx.score(candidates)]
        chosen = 0
        for i, s in enumerate(scores):
            if ctx.better(s, scores[chosen]):
                chosen = i  # strict: ties keep the earliest candidate
        return Selection(mask=candidates[chosen], candidates=candidates, scores=scores, chosen=chosen)
