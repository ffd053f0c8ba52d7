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


PROSE = 40          # a cell this long with a space in it is prose (a note, a source): it may wrap anywhere
PROSE_MIN = 30      # the narrowest a prose column is wrapped to before it leaves the table
MAX_FOOTNOTES = 12  # more distinct prose texts than this are cut to the width instead (a catalog's sources)
GAP = 3             # between two columns: padding, the (blank) divider, padding (box.SIMPLE_HEAD, pad_edge=False)


def _rich_table(headers, cells, numeric, width: int | None = None) -> str:
    """The table rendered by rich for the terminal it will be printed on (its width, its colours).

    On a narrow terminal an identifier (a GPU, a model, a region's word) is never broken inside
    (rich's default folded "A100-SXM-80GB" over three lines): each column is at least as wide as
    its longest word. What does not fit then goes, in this order: a prose column (a note, a source)
    is wrapped down to PROSE_MIN, then becomes numbered footnotes under the table (or, with more
    than MAX_FOOTNOTES distinct texts, is cut with an ellipsis and a line says where the whole
    text is); and if the columns still do not fit, the table is printed as several, each with the
    first column again, as pandas prints a wide frame."""
    import shutil

    from rich.cells import cell_len

    width = width or shutil.get_terminal_size().columns
    cols = [[row[i] for row in cells] for i in range(len(headers))]
    prose = [any(" " in c and cell_len(c) > PROSE for c in col) for col in cols]
    mins = [_min_width(h, col, p) for h, col, p in zip(headers, cols, prose)]
    cut, tail = [False] * len(headers), []
    if _span(mins) > width and any(prose):
        texts = list(dict.fromkeys(c for col, p in zip(cols, prose) if p for c in col if c != "-"))
        if len(texts) <= MAX_FOOTNOTES:   # a few notes: numbered under the table, whole
            number = {t: n + 1 for n, t in enumerate(texts)}
            for i in (i for i, p in enumerate(prose) if p):
                cols[i] = [f"[{number[c]}]" if c in number else c for c in cols[i]]
                mins[i] = max(_min_width(headers[i], cols[i], False), 3)
            tail = [f"[{n}] {t}" for t, n in number.items()]
        else:   # many (a catalog's sources): cut to the room the other columns leave, at least 10 wide
            for i in (i for i, p in enumerate(prose) if p):
                cut[i], mins[i] = True, max(len(headers[i]), 10)
            tail = [f"{', '.join(h for h, p in zip(headers, prose) if p)}: cut to the terminal's width; "
                    "--format csv or json has the whole text"]
    natural = [max(map(cell_len, [h, *col])) for h, col in zip(headers, cols)]
    # one table if the narrowest widths fit; else several, each column as wide as it likes (a
    # prose column PROSE_MIN), since splitting should at least spare the cells their wrapping
    liked = [min(n, PROSE_MIN) if p else n for n, p in zip(natural, prose)]
    groups = [list(range(len(headers)))] if _span(mins) <= width else _column_groups(liked, width)
    parts = [_render([headers[i] for i in g], [[cols[i][r] for i in g] for r in range(len(cells))],
                     [numeric[i] for i in g], _fit([natural[i] for i in g], [mins[i] for i in g], width),
                     [cut[i] for i in g], width) for g in groups]
    return "\n\n".join(parts) + "".join("\n" + _wrapped(line, width) for line in tail)


def _min_width(header: str, col: list[str], prose: bool) -> int:
    """The narrowest a column may be: its header's and its cells' longest word (a cell without a
    space is one word); a prose column PROSE_MIN (or its longest text, if shorter)."""
    from rich.cells import cell_len   # display width: "日本" takes four columns, not two

    words = header.split() + [w for c in col for w in (c.split() if " " in c else [c])]
    longest = max(map(cell_len, words), default=1)
    return max(min(PROSE_MIN, max(map(cell_len, col), default=0)), *map(cell_len, header.split() or [""])) \
        if prose else longest


def _span(widths) -> int:
    return sum(widths) + GAP * (len(widths) - 1) + 2   # + the box's two edges


def _column_groups(mins, width) -> list[list[int]]:
    """Column indices in groups that each fit `width` at their narrowest, the first column in every one."""
    groups, current = [], [0]
    for i in range(1, len(mins)):
        if current != [0] and _span([mins[j] for j in current + [i]]) > width:
            groups.append(current)
            current = [0]
        current.append(i)
    return groups + [current]


def _fit(natural, mins, width) -> list[int]:
    """Column widths that fit `width`: the natural ones, the widest narrowed first, none below its minimum."""
    widths = list(natural)
    for _ in range(_span(widths) - width):
        i = max(range(len(widths)), key=lambda j: (widths[j] > mins[j], widths[j]))
        if widths[i] <= mins[i]:
            break
        widths[i] -= 1
    return widths


def _render(headers, cells, numeric, widths, cut, width) -> str:
    import io

    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for header, num, w, c in zip(headers, numeric, widths, cut):
        table.add_column(header, justify="right" if num else "left", width=w, no_wrap=c,
                         overflow="ellipsis" if c else "fold")
    for row in cells:   # Text: a cell is never read as markup (a tag "team[/]x" raised MarkupError)
        table.add_row(*(Text(c) for c in row))
    buf = io.StringIO()
    Console(file=buf, force_terminal=True, width=width).print(table)
    return buf.getvalue().rstrip("\n")


def _wrapped(line: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(line, width, subsequent_indent="    ", break_on_hyphens=False) or [""])


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


def footer_text(lines: list[str], out=None, indent: int | None = 12) -> str:
    """Footer lines ("label       text") as one text: on a terminal each wrapped to its width with
    the text's indent kept (lines ran to 265 characters); to a pipe or file one line each, greppable.
    indent None: each line's continuation indented 4 past its own leading spaces (tco's lines)."""
    out = out or sys.stdout
    lines = [part for line in lines for part in line.split("\n")]   # an item may hold several lines
    if not (hasattr(out, "isatty") and out.isatty()):
        return "\n".join(lines)
    import shutil
    import textwrap

    width = max(60, shutil.get_terminal_size().columns)
    wrapped = []
    for line in lines:
        hang = indent if indent is not None else len(line) - len(line.lstrip(" ")) + 4
        wrapped += textwrap.wrap(line, width, subsequent_indent=" " * hang, break_on_hyphens=False) or [""]
    return "\n".join(wrapped)
