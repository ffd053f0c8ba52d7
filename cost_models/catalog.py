"""Load the CSV catalogs in cost_models/data/ with validation that names file, line and column.

SkyPilot-style: the data lives in CSV files apart from the code that queries it, and a user can
hand us a file with the same columns (e.g. negotiated prices). Only the stdlib csv module is used
here so `costbench cost` stays fast to start; the package catalogs are parsed once and cached.
"""

import csv
import datetime
import functools
import math
import os

from cost_models.errors import InputError

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


class Column:
    """One catalog column: its name, a converter text -> value, and whether it may be empty."""

    def __init__(self, name: str, convert=str, required: bool = True):
        self.name, self.convert, self.required = name, convert, required


def text(value: str) -> str:
    return value


def number(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise ValueError("is not a number") from None
    if not math.isfinite(x):
        raise ValueError("is not a finite number")
    return x


def non_negative(value: str) -> float:
    x = number(value)
    if x < 0:
        raise ValueError("must not be negative")
    return x


def positive(value: str) -> float:
    x = number(value)
    if x <= 0:
        raise ValueError("must be positive")
    return x


def fraction(value: str) -> float:
    x = number(value)
    if not 0 < x <= 1:
        raise ValueError("must be in (0, 1]")
    return x


def as_of_date(value: str) -> str:
    """YYYY, YYYY-MM or YYYY-MM-DD (catalog dates are often only known to the month)."""
    formats = {4: "%Y", 7: "%Y-%m", 10: "%Y-%m-%d"}
    fmt = formats.get(len(value))
    try:
        if fmt is None:
            raise ValueError
        datetime.datetime.strptime(value, fmt)
    except ValueError:
        raise ValueError("is not a date (YYYY, YYYY-MM or YYYY-MM-DD)") from None
    return value


def one_of(*choices):
    def convert(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    convert.__name__ = "one_of"
    return convert


def load_csv(path: str, columns: list[Column]) -> list[dict]:
    """Rows of `path` as dicts of converted values (None for an empty optional cell).

    Raises InputError '<path>:<line>: column <c>: <problem>' for a missing file, missing columns,
    a short (truncated) row, an empty required cell or a value its converter rejects.
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = [(i, ln) for i, ln in enumerate(f, start=1) if ln.strip() and not ln.startswith("#")]
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e.__class__.__name__}: {e})") from None
    if not lines:
        raise InputError(f"{path}: empty file, expected a header with columns "
                         f"{', '.join(c.name for c in columns)}")
    reader = csv.reader([ln for _, ln in lines])
    header = [h.strip() for h in next(reader)]
    missing = [c.name for c in columns if c.required and c.name not in header]  # optional: may be absent
    if missing:
        raise InputError(f"{path}:{lines[0][0]}: missing column(s) {', '.join(missing)}")
    index = {name: i for i, name in enumerate(header)}
    rows = []
    for (lineno, _), cells in zip(lines[1:], reader):
        if len(cells) < len(header):
            raise InputError(f"{path}:{lineno}: {len(cells)} of {len(header)} columns (truncated row?)")
        row = {"_line": lineno}
        for col in columns:
            raw = cells[index[col.name]].strip() if col.name in index else ""
            if raw == "":
                if col.required:
                    raise InputError(f"{path}:{lineno}: column {col.name}: empty")
                row[col.name] = None
                continue
            try:
                row[col.name] = col.convert(raw)
            except ValueError as e:
                raise InputError(f"{path}:{lineno}: column {col.name}: {raw!r} {e}") from None
        rows.append(row)
    return rows


@functools.lru_cache(maxsize=None)
def _cached(name: str, columns: tuple) -> tuple:
    return tuple(load_csv(os.path.join(DATA_DIR, name), list(columns)))


def load_data(name: str, columns: list[Column]) -> list[dict]:
    """A package catalog (cost_models/data/<name>), parsed once per process."""
    return [dict(r) for r in _cached(name, tuple(columns))]
