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


def warn(command: str, line: str) -> None:
    """`costbench COMMAND: warning: LINE` on stderr, control characters escaped (a file name's ESC)."""
    print(f"costbench {command}: warning: {printable(line)}", file=sys.stderr)


def format_table(rows, columns, terminal: bool | None = None) -> str:
    """rows: list of dicts; columns: list of (key, header, fmt). Returns the table as text: drawn
    by rich if `terminal` (default: sys.stdout is a terminal), else plain."""
    cells = [[cell(r.get(k), f) for k, _, f in columns] for r in rows]
    headers = [h for _, h, _ in columns]
    numeric = [all(_looks_numeric(row[i]) for row in cells) and cells != [] for i in range(len(columns))]
    if terminal is None:
        terminal = hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
    if terminal:
        from bench.term_table import render   # rich, imported only for a terminal

        return render(headers, cells, numeric)
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


def days(value) -> str:
    """Wall-clock days as a person reads them: 15.1, 271, 248,649 (a tenth of a day is noise past 100)."""
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def si(value: float, digits: int = 3) -> str:
    """A count with a decimal suffix, `digits` significant: 6.11M, 72.5K, 15.6T, 405.9B -> 406B."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g}{suffix}"
    return f"{value:.{digits}g}"


def footer_text(lines: list[str], out=None, indent: int | None = 12) -> str:
    """Footer lines ("label       text") as one text, control characters escaped (a file name or a
    provider from the user's file must not recolour the terminal): on a terminal each wrapped to its
    width, by display cells, with the text's indent kept (lines ran to 265 characters); to a pipe or
    file one line each, greppable. indent None: each line's continuation indented 4 past its own
    leading spaces (tco's lines)."""
    out = out or sys.stdout
    lines = [printable(part) for line in lines for part in line.split("\n")]   # an item may hold several lines
    if not (hasattr(out, "isatty") and out.isatty()):
        return "\n".join(lines)
    import shutil

    from bench.term_table import wrap

    width = max(8, shutil.get_terminal_size().columns)
    return "\n".join(wrap(line, width, indent if indent is not None else len(line) - len(line.lstrip(" ")) + 4)
                     for line in lines)
