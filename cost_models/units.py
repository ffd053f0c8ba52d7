"""Human-friendly numbers on the command line: 70e9, 70B, 15T, 6.4M, 1_000; and what is plausible.

Suffixes are decimal SI-style multipliers as used for parameter and token counts
(K=1e3, M=1e6, B or G=1e9, T=1e12, P=1e15), case-insensitive.

What is refused, and why (README "What costbench refuses" is the user-facing copy):
- a comma: "1,5T" is 1.5T in half the world and 15T (or 1500T) in the other half, and a wrong
  guess is a 10x-1000x error in a cost, so no comma is accepted; write 1.5T, 1500 or 1_500.
- underscores only as Python writes them, between digits ("1_000", "1_0_0"), not "_1" or "1__0".
- only ASCII: float() would take Arabic-Indic or full-width digits, which nobody types on purpose.
- nan, inf and anything that overflows a float ("1e400"); more than 64 characters.
- "-0" is 0 (and so not positive).
Bounds: every parser takes optional `low`/`high` (inclusive); PLAUSIBLE holds the limits of
values that parse but cannot be meant (no hardware or budget reaches them), keyed by the
argparse destination name, so one table serves every command (bench.cli applies it).
"""

import math
import re

from cost_models.errors import InputError

_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12, "p": 1e15}
_MAX_LEN = 64
# sign, digits with Python-style underscores, optional fraction and exponent: what float() takes,
# minus its words (nan, inf, infinity) and its non-ASCII digits
_NUMBER = re.compile(r"[+-]?(\d(_?\d)*(\.(\d(_?\d)*)?)?|\.\d(_?\d)*)([eE][+-]?\d(_?\d)*)?")
EXAMPLES = "examples: 70e9, 70B, 15T, 6.4M, 1_000"


def _fmt(x: float) -> str:
    return f"{x:g}"


def check_bounds(value: float, what: str, text, low: float | None = None, high: float | None = None,
                 why: str | tuple = "") -> float:
    """InputError unless low <= value <= high (each bound optional, inclusive). `why` explains the
    upper bound, or is (why low, why high): a reason is only given for the bound it explains."""
    why_low, why_high = why if isinstance(why, tuple) else ("", why)
    if low is not None and value < low:
        raise InputError(f"{what}: {text!r} is below {_fmt(low)}" + (f" ({why_low})" if why_low else ""))
    if high is not None and value > high:
        raise InputError(f"{what}: {text!r} is above {_fmt(high)}" + (f" ({why_high})" if why_high else ""))
    return value


def parse_number(text: str, what: str = "number", low: float | None = None, high: float | None = None) -> float:
    """Parse '70B' -> 7e10. Raises InputError naming `what` for anything not a finite number,
    and for a value outside [low, high] when bounds are given."""
    raw = str(text)
    if len(raw) > _MAX_LEN:
        raise InputError(f"{what}: {raw[:20]!r}... is {len(raw)} characters long, not a number")
    s = raw.strip()
    if not s:
        raise InputError(f"{what}: {raw!r} is empty, not a number ({EXAMPLES})")
    if not s.isascii():
        raise InputError(f"{what}: {raw!r} is not a number: use ASCII digits ({EXAMPLES})")
    if "," in s:
        raise InputError(f"{what}: {raw!r}: commas are ambiguous (decimal point or thousands?); "
                         f"write 1.5T, 1500 or 1_500")
    mult = 1.0
    if s[-1].lower() in _SUFFIX:
        mult = _SUFFIX[s[-1].lower()]
        s = s[:-1]
    if not _NUMBER.fullmatch(s):
        if s.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise InputError(f"{what}: {raw!r} is not a finite number")
        raise InputError(f"{what}: {raw!r} is not a number ({EXAMPLES})")
    value = float(s) * mult
    if not math.isfinite(value):
        raise InputError(f"{what}: {raw!r} is too large to be a number costbench can use")
    value = value + 0.0  # -0.0 -> 0.0
    return check_bounds(value, what, raw, low, high)


def parse_positive(text: str, what: str = "number", low: float | None = None, high: float | None = None) -> float:
    """Like parse_number but the value must be > 0."""
    value = parse_number(text, what)
    if value <= 0:
        raise InputError(f"{what}: {text!r} must be positive")
    return check_bounds(value, what, text, low, high)


def parse_fraction(text: str, what: str = "fraction") -> float:
    """A fraction in (0, 1], e.g. an efficiency or MFU."""
    value = parse_number(text, what)
    if not 0 < value <= 1:
        raise InputError(f"{what}: {text!r} must be in (0, 1]")
    return value


# ---- plausibility -------------------------------------------------------------------------------
# name -> (low, high, why). Inclusive. A value outside parses but cannot be meant: a user is
# better served by this word than by a 40-digit answer. The reasons say where each limit comes from.
_LARGEST = "1000x the largest model trained to date (~2T parameters)"
PLAUSIBLE = {
    "params": (1e3, 1e15, _LARGEST),
    "active_params": (1e3, 1e15, _LARGEST),
    "tokens": (1e3, 1e17, "~1000x the largest training set to date (~36T tokens)"),
    "gpus": (1, 1e7, "more GPUs than exist"),
    "gpu_hours": (1e-3, 1e12, "1e12 GPU-hours is 10 million GPUs for 11 years"),
    "layers": (1, 1e5, "today's deepest models have ~130 layers"),
    "hidden": (1, 1e7, "today's widest models have ~25k"),
    "heads": (1, 1e6, ""), "kv_heads": (1, 1e6, ""),
    "ffn": (1, 1e8, ""), "vocab": (1, 1e9, ""),
    "seq": (1, 1e9, "a billion-token context"),
    "tp": (1, 1e7, "at most the number of GPUs"), "pp": (1, 1e7, "at most the number of GPUs"),
    "micro_batch": (1, 1e9, ""), "global_batch": (1, 1e9, ""),
    "mfu": (1e-3, 1, ("an MFU below 0.1% is not a training run", "")),
    "efficiency": (1e-3, 1, ("below 0.1% of MAMF is not a training run", "")),
    "goodput": (1e-2, 1, ("below 1% of wall-clock time productive is not a training run", "")),
    "usd_per_gpu_hour": (1e-3, 1000, ("a tenth of a cent an hour is no price", "no GPU rents for more than $1000 an hour")),
    "capex": (0, 1e7, "ten million dollars per GPU (its share of server and network included)"),
    "life_years": (0.1, 100, ""),
    "utilization": (1e-3, 1, ("below 0.1% of the year (9 hours) is not a cluster that is run", "")),
    "rental_price": (1e-3, 1000, ("a free GPU never pays back", "no GPU rents for more than $1000 an hour")),
    "power_kw": (0.01, 20, ("a GPU with its server share draws ~0.3-2 kW",) * 2),
    "usd_per_kwh": (0, 10, ("retail electricity is $0.05-0.50 per kWh",) * 2),
    "pue": (1, 5, ("facility power / IT power: 1.1-2 in practice",) * 2),
    "opex_usd_per_gpu_year": (0, 1e7, "ten million dollars a year per GPU"),
    "stale_months": (0, 1200, "a hundred years"),
    "max_bytes": (4, 1 << 40, "a 1 TiB message is more memory than any GPU holds"),
}


def check_plausible(name: str, value, what: str | None = None) -> None:
    """InputError when `value` of the quantity `name` (a PLAUSIBLE key) cannot be meant.
    Unknown names and None pass: the table is a floor of sense, not a schema."""
    if isinstance(value, (list, tuple)):  # a comma list (--rental-price 2,6.16): each value
        for v in value:
            check_plausible(name, v, what)
        return
    if value is None or name not in PLAUSIBLE or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    low, high, why = PLAUSIBLE[name]
    # the value in full ('10000001', not '1e+07', which reads as the bound itself)
    # (an int past 16 digits is a float's rounding: 1e30 read '1000000000000000019884624838656')
    shown = f"{value:d}" if isinstance(value, int) and abs(value) < 1e16 else f"{value:.15g}"
    check_bounds(value, what or name, shown, low, high, why)
