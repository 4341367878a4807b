"""Mask-choosing methods: one module each, registered by name.

A user's method is one class implementing ``Method.select``; select it with
``--methods mypkg.mymodule:MyMethod``, ``register_method``, or an entry point in
the group ``sparsebench.methods``.
"""

from .base import Method, Selection, SelectionContext
from .registry import get_method, method_names, register_method

__all__ = ["Method", "Selection", "SelectionContext", "get_method", "method_names", "register_method"]
