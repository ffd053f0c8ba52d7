"""Plain-text tables for the terminal: right-aligned numbers, a rule under the header.

Columns are (key, header, format) triples; format is a str.format spec like ",.1f" or a callable.
Missing values print as "-" rather than being guessed.
"""


def cell(value, fmt) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if callable(fmt):
        return fmt(value)
    return format(value, fmt) if fmt else str(value)


def format_table(rows, columns) -> str:
    """rows: list of dicts; columns: list of (key, header, fmt). Returns the table as text."""
    cells = [[cell(r.get(k), f) for k, _, f in columns] for r in rows]
    headers = [h for _, h, _ in columns]
    numeric = [all(_looks_numeric(row[i]) for row in cells) and cells != [] for i in range(len(columns))]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]

    def line(values):
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    return "\n".join(out)


def _looks_numeric(text: str) -> bool:
    t = text.replace(",", "").replace("$", "").replace("%", "").replace("x", "").strip()
    if t in ("-", ""):
        return True
    try:
        float(t.rstrip("KMBTkmbt"))
        return True
    except ValueError:
        return False


def si(value: float, digits: int = 3) -> str:
    """A count with a decimal suffix, `digits` significant: 6.11M, 72.5K, 15.6T, 405.9B -> 406B."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g}{suffix}"
    return f"{value:.{digits}g}"
