"""Errors a user can cause, and fix, by changing what they passed in.

The CLI turns each into one line on stderr and exit code 2; the Python API
raises them as they are. Messages are built to stay one line whatever the
user passed: values are shown by ``repr`` (which escapes line breaks), cut
short when long.
"""

#: A value longer than this (as shown) is cut in the middle of an error message.
MAX_SHOWN = 200


class SparsebenchError(Exception):
    """Base class of every error caused by a user's input."""


class ConfigError(SparsebenchError, ValueError):
    """A config value, preset, dataset or method name is not allowed."""


class StoreError(SparsebenchError):
    """The store file is not a sparsebench store, is corrupt, too new, or cannot be written."""


class PluginError(SparsebenchError):
    """A user's method failed inside ``select`` or returned something other than a Selection."""


class ResourceError(SparsebenchError):
    """The experiment does not fit this machine (memory), as configured."""


def describe(exc: BaseException) -> str:
    r"""An exception as ``Type: message`` on one line, for errors about the user's code.

    >>> describe(ValueError("no good\nmask"))
    'ValueError: no good mask'
    """
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def show(value: object) -> str:
    """``repr(value)``, one line, at most ``MAX_SHOWN`` characters; never raises.

    >>> show("a\\nb")
    "'a\\\\nb'"
    >>> len(show("x" * 10_000)) <= MAX_SHOWN
    True
    """
    try:
        text = repr(value)
    except (ValueError, RecursionError, MemoryError):  # e.g. an int of more than 4300 digits, deep nesting
        text = f"<{type(value).__name__} too large to show>"
    except Exception:  # a user object whose __repr__ fails
        text = f"<{type(value).__name__}>"
    text = " ".join(text.splitlines())
    if len(text) > MAX_SHOWN:
        half = (MAX_SHOWN - 5) // 2
        text = f"{text[:half]} ... {text[-half:]}"
    return text


def invalid(parameter: str, value: object, allowed: str) -> ConfigError:
    """The one-line error for a bad parameter: what, the value given, what is allowed.

    >>> str(invalid("epochs", 0, "an integer >= 1"))
    'epochs: got 0; allowed: an integer >= 1'
    """
    return ConfigError(f"{parameter}: got {show(value)}; allowed: {allowed}")


class SparsebenchWarning(UserWarning):
    """Something the user should know that does not stop the work (the CLI prints it as one line)."""
