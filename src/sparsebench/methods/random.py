"""``random``: one mask drawn uniformly at the sparsity — the control every method is compared to."""

from .base import Method, Selection, SelectionContext


class RandomMask(Method):
    def select(self, ctx: SelectionContext) -> Selection:
        (mask,) = ctx.sample(1)
        return Selection(mask=mask)
