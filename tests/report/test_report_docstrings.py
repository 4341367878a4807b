"""The docstring examples of the report modules run and give what they show."""

import doctest
import importlib
import pkgutil

import pytest

import sparsebench.report

MODULES = [f"sparsebench.report.{m.name}" for m in pkgutil.iter_modules(sparsebench.report.__path__)]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
