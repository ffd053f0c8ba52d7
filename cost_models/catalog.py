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
from cost_models.files import check_unique_columns, read_text

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


class Column:
    """One catalog column: its name, a converter text -> value, and whether it may be empty."""

    def __init__(self, name: str, convert=str, required: bool = True):
        self.name, self.convert, self.required = name, convert, required


def text(value: str) -> str:
    return value


def number(value: str) -> float:
    try:
        if not value.isascii() or "," in value:  # float() takes Arabic-Indic digits; a comma is ambiguous
            raise ValueError
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
        start = datetime.datetime.strptime(value, fmt).date()
    except ValueError:
        raise ValueError("is not a date (YYYY, YYYY-MM or YYYY-MM-DD)") from None
    # a quote cannot be dated after today (the real clock, a day of slack for time zones): a
    # typo (2062 for 2026) would otherwise make a price look fresh for decades
    if start > datetime.date.today() + datetime.timedelta(days=1):
        raise ValueError("is in the future: a price is quoted on or before today")
    return value


def one_of(*choices):
    def convert(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    convert.__name__ = "one_of"
    return convert


# A cell that starts with one of these is written with a leading ' (OWASP's CSV-injection advice,
# bench.cmd_catalog.csv_safe): the quote is dropped on reading, so `prices --format csv` loads back.
FORMULA_GUARDED = ("=", "+", "-", "@", "\t", "\r")


def at_most(convert, high: float, why: str):
    """A converter that also refuses values above `high` (a plausibility bound, units.PLAUSIBLE)."""
    def bounded(value: str):
        x = convert(value)
        if x > high:
            raise ValueError(f"is above {high:g} ({why})")
        return x

    bounded.__name__ = getattr(convert, "__name__", "bounded")
    return bounded


def load_csv(path: str, columns: list[Column], ignored: tuple = ()) -> list[dict]:
    """Rows of `path` as dicts of converted values (None for an empty optional cell).

    Raises InputError '<path>:<line>: column <c>: <problem>' for a missing file, missing columns,
    a column the schema does not have (a misspelt `regoin` lost every region without a word; the
    `ignored` names, which costbench's own CSV output adds, are read past),
    a short (truncated) row, an empty required cell, a control character or a value its converter rejects; and for what
    cost_models.files refuses (not a regular file, too large, not UTF-8) and what the csv module
    does (a cell over its field limit, a NUL byte). A byte-order mark (Excel's) is dropped.
    """
    content = read_text(path, "CSV file")
    lines = [(i, ln) for i, ln in enumerate(content.splitlines(keepends=True), start=1)
             if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise InputError(f"{path}: empty file, expected a header with columns "
                         f"{', '.join(c.name for c in columns)}")
    reader = csv.reader([ln for _, ln in lines], strict=True)  # strict: an unbalanced quote is an error

    def records():  # (physical line of the record, cells)
        while True:
            start = reader.line_num
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                lineno = lines[min(reader.line_num, len(lines)) - 1][0]
                if "field limit" in str(e):
                    raise InputError(f"{path}:{lineno}: a cell longer than {csv.field_size_limit()} "
                                     f"characters; not a catalog value") from None
                raise InputError(f"{path}:{lineno}: not CSV: {e}") from None
            if reader.line_num - start > 1:  # no catalog value has a line break: an unbalanced quote
                raise InputError(f"{path}:{lines[start][0]}: a quoted cell runs over {reader.line_num - start} "
                                 f"lines (an unbalanced quote?)")
            yield lines[reader.line_num - 1][0], cells

    rows_in = records()
    first = next(rows_in, None)
    header = [h.strip().lstrip("\ufeff") for h in (first[1] if first else [])]
    check_unique_columns(path, header, lines[0][0])
    missing = [c.name for c in columns if c.required and c.name not in header]  # optional: may be absent
    if missing:
        raise InputError(f"{path}:{lines[0][0]}: missing column(s) {', '.join(missing)}")
    names = [c.name for c in columns]
    unknown = [h for h in header if h and h not in names and h not in ignored]   # '' : a trailing comma
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], [n for n in names if n not in header], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise InputError(f"{path}:{lines[0][0]}: unknown column {unknown[0]!r}{hint}; the columns are "
                         f"{', '.join(names)}")
    index = {name: i for i, name in enumerate(header)}
    rows = []
    for lineno, cells in rows_in:
        if len(cells) < len(header):
            raise InputError(f"{path}:{lineno}: {len(cells)} of {len(header)} columns (truncated row?)")
        if any(c.strip() for c in cells[len(header):]):   # every cell shifted? the row cannot be read as meant
            raise InputError(f"{path}:{lineno}: {len(cells)} cells under a header of {len(header)} columns "
                             f"(a decimal comma, or a comma in an unquoted cell?)")
        row = {"_line": lineno}
        for col in columns:
            raw = cells[index[col.name]].strip() if col.name in index else ""
            if raw[:1] == "'" and raw[1:2] in FORMULA_GUARDED:   # what costbench's CSV output guarded, read back
                raw = raw[1:]
            if not raw.isprintable():   # an ESC in a provider's name recoloured the terminal where it was printed
                bad = next(ch for ch in raw if not ch.isprintable())
                raise InputError(f"{path}:{lineno}: column {col.name}: a control character ({bad!r}); not a catalog value")
            if raw == "":
                if col.required:
                    raise InputError(f"{path}:{lineno}: column {col.name}: empty")
                row[col.name] = None
                continue
            try:
                row[col.name] = col.convert(raw)
            except ValueError as e:
                shown = repr(raw) if len(raw) <= 40 else repr(raw[:37]) + "..."
                # a trailing empty cell is tolerated, so `1,5` can shift every value one column on
                shifted = (f" ({len(cells)} cells under a header of {len(header)} columns: a decimal comma, "
                           "or a comma in an unquoted cell?)" if len(cells) > len(header) else "")
                raise InputError(f"{path}:{lineno}: column {col.name}: {shown} {e}{shifted}") from None
        rows.append(row)
    return rows


@functools.lru_cache(maxsize=None)
def _cached(name: str, columns: tuple) -> tuple:
    return tuple(load_csv(os.path.join(DATA_DIR, name), list(columns)))


def load_data(name: str, columns: list[Column]) -> list[dict]:
    """A package catalog (cost_models/data/<name>), parsed once per process."""
    return [dict(r) for r in _cached(name, tuple(columns))]
