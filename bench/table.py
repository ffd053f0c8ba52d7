"""Tables for the terminal: rich (rich.table.Table) when stdout is a terminal, plain text otherwise.

Columns are (key, header, format) triples; format is a str.format spec like ",.1f" or a callable.
Missing values print as "-" rather than being guessed. Numbers are right-aligned either way.

Plain text (columns padded with spaces, a rule of dashes under the header) is what logs, pipes and
CI get: greppable, no escape codes, no box characters. rich is imported only for a terminal: it
costs ~0.1 s of start-up (python -X importtime), which `costbench cost | grep` should not pay.
"""

import sys


def cell(value, fmt) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return printable(fmt(value) if callable(fmt) else format(value, fmt) if fmt else str(value))


def printable(text: str) -> str:
    """Control characters as escapes: a newline or an ESC in a tag from a result file broke a
    table's row in two and recoloured the terminal (hostile tester)."""
    if text.isprintable():   # the common case, at the cost of one scan
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def format_table(rows, columns, terminal: bool | None = None) -> str:
    """rows: list of dicts; columns: list of (key, header, fmt). Returns the table as text: drawn
    by rich if `terminal` (default: sys.stdout is a terminal), else plain."""
    cells = [[cell(r.get(k), f) for k, _, f in columns] for r in rows]
    headers = [h for _, h, _ in columns]
    numeric = [all(_looks_numeric(row[i]) for row in cells) and cells != [] for i in range(len(columns))]
    if terminal is None:
        terminal = hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
    if terminal:
        return _rich_table(headers, cells, numeric)
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]

    def line(values):
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    return "\n".join(out)


def _rich_table(headers, cells, numeric) -> str:
    """The table rendered by rich for the terminal it will be printed on (its width, its colours)."""
    import io
    import shutil

    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for header, num in zip(headers, numeric):
        table.add_column(header, justify="right" if num else "left", overflow="fold")
    for row in cells:   # Text: a cell is never read as markup (a tag "team[/]x" raised MarkupError)
        table.add_row(*(Text(c) for c in row))
    buf = io.StringIO()
    Console(file=buf, force_terminal=True, width=shutil.get_terminal_size().columns).print(table)
    return buf.getvalue().rstrip("\n")


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


def footer_text(lines: list[str], out=None, indent: int = 12) -> str:
    """Footer lines ("label       text") as one text: on a terminal each wrapped to its width with
    the text's indent kept (lines ran to 265 characters); to a pipe or file one line each, greppable."""
    out = out or sys.stdout
    lines = [part for line in lines for part in line.split("\n")]   # an item may hold several lines
    if not (hasattr(out, "isatty") and out.isatty()):
        return "\n".join(lines)
    import shutil
    import textwrap

    width = max(60, shutil.get_terminal_size().columns)
    wrapped = []
    for line in lines:
        wrapped += textwrap.wrap(line, width, subsequent_indent=" " * indent, break_on_hyphens=False) or [""]
    return "\n".join(wrapped)
