"""Numbers as the report prints them: accuracies in %, differences in pp, p-values.

Negative numbers use the typographic minus sign (U+2212), as in print.

>>> pp(0.003), pp(-0.0123), percent(0.9137), pvalue(0.01234), pvalue(0.00047), pvalue(float("nan"))
('+0.3 pp', '−1.2 pp', '91.4', '0.012', '4.7e-04', 'n/a')
"""

from __future__ import annotations

import math

MINUS = "\u2212"


def _finite(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def signed(value: float, digits: int = 1) -> str:
    """``+1.2`` / ``−1.2`` / ``n/a``; zero prints as ``+0.0``."""
    if not _finite(value):
        return "n/a"
    text = f"{value:+.{digits}f}"
    return text.replace("-", MINUS)


def pp(difference: float, digits: int = 1) -> str:
    """An accuracy difference (fraction) in percentage points, signed."""
    return f"{signed(difference * 100, digits)} pp" if _finite(difference) else "n/a"


def percent(accuracy: float, digits: int = 1) -> str:
    """An accuracy (fraction) in percent, without the sign."""
    return f"{accuracy * 100:.{digits}f}".replace("-", MINUS) if _finite(accuracy) else "n/a"


def ci_pp(low: float, high: float, digits: int = 1) -> str:
    """A 95% interval of an accuracy difference in pp: ``[−0.4, +1.0]``."""
    if not (_finite(low) and _finite(high)):
        return "n/a"
    return f"[{signed(low * 100, digits)}, {signed(high * 100, digits)}]"


def ci_plain(low: float, high: float, digits: int = 2) -> str:
    """An interval in the metric's own units (loss, epochs, rho): ``[−0.12, +0.05]``."""
    if not (_finite(low) and _finite(high)):
        return "n/a"
    return f"[{signed(low, digits)}, {signed(high, digits)}]"


def pvalue(p: float) -> str:
    """Two significant digits; scientific below 0.001 (no '<' so it survives Markdown)."""
    if not _finite(p):
        return "n/a"
    return f"{p:.1e}" if p < 0.001 else f"{p:.2g}"


def fixed(value, digits: int = 2) -> str:
    """A number with a fixed count of decimals (a correlation: ``−0.40``), or ``n/a``."""
    if not _finite(value):
        return "n/a"
    return f"{float(value):.{digits}f}".replace("-", MINUS)


def number(value, digits: int = 3) -> str:
    """A plain number with up to ``digits`` significant digits, or ``n/a``."""
    if not _finite(value):
        return "n/a"
    return f"{float(value):.{digits}g}".replace("-", MINUS)


def sparsity(value: float) -> str:
    """Sparsity as given in the config (0.9, 0.98)."""
    return f"{float(value):g}"
