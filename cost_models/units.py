"""Human-friendly numbers on the command line: 70e9, 70B, 15T, 6.4M, 1_000.

Suffixes are decimal SI-style multipliers as used for parameter and token counts
(K=1e3, M=1e6, B or G=1e9, T=1e12, P=1e15), case-insensitive.
"""

import math

from cost_models.errors import InputError

_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12, "p": 1e15}


def parse_number(text: str, what: str = "number") -> float:
    """Parse '70B' -> 7e10. Raises InputError naming `what` for anything not a finite number."""
    s = str(text).strip().replace("_", "").replace(",", "")
    mult = 1.0
    if s and s[-1].lower() in _SUFFIX:
        mult = _SUFFIX[s[-1].lower()]
        s = s[:-1]
    try:
        value = float(s) * mult
    except ValueError:
        raise InputError(f"{what}: {text!r} is not a number (examples: 70e9, 70B, 15T, 6.4M)") from None
    if not math.isfinite(value):
        raise InputError(f"{what}: {text!r} is not a finite number")
    return value


def parse_positive(text: str, what: str = "number") -> float:
    """Like parse_number but the value must be > 0."""
    value = parse_number(text, what)
    if value <= 0:
        raise InputError(f"{what}: {text!r} must be positive")
    return value


def parse_fraction(text: str, what: str = "fraction") -> float:
    """A fraction in (0, 1], e.g. an efficiency or MFU."""
    value = parse_number(text, what)
    if not 0 < value <= 1:
        raise InputError(f"{what}: {text!r} must be in (0, 1]")
    return value
