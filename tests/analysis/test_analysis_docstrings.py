"""The docstring examples of the analysis modules run and give what they show."""

import doctest
import importlib
import pkgutil

import pytest

import sparsebench.analysis

MODULES = ["sparsebench.analysis"] + [
    f"sparsebench.analysis.{m.name}" for m in pkgutil.iter_modules(sparsebench.analysis.__path__)]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
