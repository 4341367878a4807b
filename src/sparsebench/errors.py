"""Errors a user can cause, and fix, by changing what they passed in.

The CLI turns each into one line on stderr and exit code 2; the Python API
raises them as they are.
"""


class SparsebenchError(Exception):
    """Base class of every error caused by a user's input."""


class ConfigError(SparsebenchError, ValueError):
    """A config value, preset, dataset or method name is not allowed."""


class StoreError(SparsebenchError):
    """The store file is not a sparsebench store, is corrupt, or is too new."""


def invalid(parameter: str, value: object, allowed: str) -> ConfigError:
    """The one-line error for a bad parameter: what, the value given, what is allowed.

    >>> str(invalid("epochs", 0, "an integer >= 1"))
    'epochs: got 0; allowed: an integer >= 1'
    """
    return ConfigError(f"{parameter}: got {value!r}; allowed: {allowed}")
