"""``dense``: the parent itself, nothing removed; trained once per seed."""

from .base import Method, Selection, SelectionContext
from .registry import register_method


@register_method("dense")
class Dense(Method):
    def select(self, ctx: SelectionContext) -> Selection:
        return Selection(mask=None)
