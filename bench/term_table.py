"""A table laid out for the terminal it is printed on, drawn by rich (bench.table decides when).

rich alone, given a table wider than the terminal, folds every column to fit: "A100-SXM-80GB" came
out over three lines at 120 columns, "16,384" as "16,/384". Here the widths are chosen first:

- no column is narrower than its longest word (a GPU, a region, a number never breaks), and a
  column whose cells have spaces (a layout "TP8 PP2 DP1024 mb1") wraps to at most about two lines;
- a long text (a note, a source: PROSE characters with a space) is wrapped down to PROSE_MIN, then,
  where that still does not fit, numbered: the cell shows "[n]" and the text follows the table,
  whole; with more than MAX_FOOTNOTES distinct texts (a catalog's sources) its column is cut to
  the room left, with a line saying where the whole text is. The first column, the rows' key, is
  never numbered or cut;
- columns that still do not fit print as several tables, as pandas prints a wide frame, each led
  by the first column, or by a row number where the first column does not tell the rows apart
  (cost's providers, priced twice with --pricing all).

Widths are display cells (rich.cells.cell_len: "日本" takes four). An output that cannot encode
the box rule or the ellipsis (an ASCII terminal) gets "-" and "...".
"""

import io
import re
import shutil
import sys

from rich.cells import cell_len

PROSE = 40          # a cell this long with a space in it is prose (a note, a source)
PROSE_MIN = 30      # the narrowest a prose column is wrapped to before its long texts leave the table
MAX_FOOTNOTES = 12  # more distinct long texts than this are cut to the width instead (a catalog's sources)
CUT_MIN = 10        # the narrowest a cut column is left
GAP = 3             # between two columns: padding, the (blank) divider, padding (box.SIMPLE_HEAD, pad_edge=False)


def render(headers: list[str], cells: list[list[str]], numeric: list[bool], width: int | None = None,
           ascii_only: bool | None = None) -> str:
    """The rows (cells: already formatted strings) as one or more rich tables `width` wide, notes under them."""
    width = max(8, width or shutil.get_terminal_size().columns)
    ascii_only = _ascii_only() if ascii_only is None else ascii_only
    if ascii_only:   # measured as printed: "日" becomes "\u65e5", six cells, not two
        headers = [_ascii(h) for h in headers]
        cells = [[_ascii(c) for c in row] for row in cells]
    cols = [[row[i] for row in cells] for i in range(len(headers))]
    prose = [i > 0 and any(_long(c) for c in col) for i, col in enumerate(cols)]
    hard = [_hard_min(h, col, p, width) for h, col, p in zip(headers, cols, prose)]
    natural = [max(map(cell_len, [h, *col])) for h, col in zip(headers, cols)]
    soft = [_soft_min(n, m, p) for n, m, p in zip(natural, hard, prose)]
    cut, tail = [False] * len(headers), []
    if _span(soft) > width and any(prose):
        texts = list(dict.fromkeys(c for col, p in zip(cols, prose) if p for c in col if _long(c)))
        if len(texts) <= MAX_FOOTNOTES:   # a few: numbered under the table, whole
            number = {t: n for n, t in enumerate(texts, 1)}
            for i in (i for i, p in enumerate(prose) if p):
                cols[i] = [f"[{number[c]}]" if c in number else c for c in cols[i]]
                natural[i] = max(map(cell_len, [headers[i], *cols[i]]))
                hard[i] = soft[i] = _hard_min(headers[i], cols[i], False, width)
            tail = [f"[{n}] {t}" for t, n in number.items()]
        else:   # many: cut to the room the other columns leave
            for i in (i for i, p in enumerate(prose) if p):
                cut[i], hard[i] = True, min(natural[i], max(cell_len(headers[i]), CUT_MIN))
                soft[i] = hard[i]
            tail = [f"{', '.join(h for h, p in zip(headers, prose) if p)}: cut to the terminal's width; "
                    "--format csv or json has the whole text"]
    numbers = None
    if _span(soft) <= width:
        groups = [(list(range(len(headers))), True)]
    else:   # several tables, each column as wide as it likes: splitting should spare cells their wrapping
        liked = [max(s, min(n, PROSE_MIN) if p else n) for n, s, p in zip(natural, soft, prose)]
        if cells and (len(set(cols[0])) < len(cols[0]) or liked[0] > width // 2):   # no key, or too wide to lead
            numbers = [str(r) for r in range(1, len(cells) + 1)]
        # no rows: nothing to number and no key, so no lead (number_width 0 and no '#' drawn)
        groups = _groups(liked, hard, width, cell_len(numbers[-1]) if numbers else None if cells else 0)
    parts = []
    for g, led in groups:
        heads, rows = [headers[i] for i in g], [[cols[i][r] for i in g] for r in range(len(cells))]
        nums, nat, least, cuts = ([numeric[i] for i in g], [natural[i] for i in g], [hard[i] for i in g],
                                  [cut[i] for i in g])
        if led and numbers:   # the row number leads the table
            heads, nums, cuts, rows = ["#", *heads], [True, *nums], [False, *cuts], [[n, *r] for n, r in zip(numbers, rows)]
            nat, least = [cell_len(numbers[-1]), *nat], [cell_len(numbers[-1]), *least]
        lead_cells = (cell_len(numbers[-1]) if led and numbers else least[0] if 0 in g else 0)
        room = width - _span([lead_cells, 0]) if len(heads) > 1 else width - 2   # beside the lead
        least = [least[0], *(min(m, room) for m in least[1:])] if len(heads) > 1 else [min(least[0], room)]
        parts.append(_draw(heads, rows, nums, _fit(nat, least, width), cuts, width, ascii_only))
    return "\n\n".join(parts) + "".join("\n" + wrap(line, width, 4) for line in tail)


def _long(text: str) -> bool:
    return " " in text and cell_len(text) > PROSE


def _hard_min(header: str, col: list[str], prose: bool, width: int) -> int:
    """The narrowest a column may be: its header's and cells' longest word (a cell without a space is
    one word), a prose column PROSE_MIN (or its longest text, if shorter); never past the terminal
    (a 178-character URL folds: nothing else can be done with it)."""
    head = max(map(cell_len, header.split() or [""]))
    if prose:   # PROSE_MIN, but never narrower than its longest word (a URL broke inside at 120 columns)
        words = [cell_len(w) for c in col for w in c.split()]
        least = max(min(PROSE_MIN, max(map(cell_len, col), default=0)), head, max(words, default=0))
    else:
        least = max([head] + [cell_len(w) for c in col for w in (c.split() if " " in c else [c])])
    return max(1, min(least, width - 4))   # a word wider than the terminal folds: nothing else fits it


def _soft_min(natural: int, hard: int, prose: bool) -> int:
    """The narrowest a column goes in a single table: a spaced cell on at most about two lines."""
    return hard if prose else max(hard, -(-natural // 2))


def _span(widths) -> int:
    return sum(widths) + GAP * (len(widths) - 1) + 2   # + the box's two edges


def _groups(liked, hard, width, number_width) -> list[tuple[list[int], bool]]:
    """(column indices, led) per table, each fitting `width`. led: the table starts with the lead, a
    row number `number_width` wide if given, else the first column (index 0, in the first table as
    itself). A column too wide to sit beside the lead as it likes gets a table of its own beside it,
    narrowed to the room left (render folds it): every table keeps the rows' key."""
    numbered = number_width is not None
    lead, first = (number_width, []) if numbered else (liked[0], [0])
    groups, current = [], list(first)
    for i in range(0 if numbered else 1, len(liked)):
        if _span([lead] + [liked[j] for j in current if j not in first] + [liked[i]]) <= width:
            current.append(i)
            continue
        if current != first:
            groups.append((current, True))
            current = list(first)
        if _span([lead, liked[i]]) <= width:
            current.append(i)
        else:   # a table of its own beside the lead, narrowed (render folds what does not fit)
            groups.append(([*first, i], True))
    if current != first:
        groups.append((current, True))
    elif not any(led for _, led in groups):   # the first column, alone: before the columns that follow it
        groups.insert(0, (current, True))
    return groups


def _fit(natural, mins, width) -> list[int]:
    """Column widths that fit `width`: the natural ones, the widest narrowed first, none below its minimum."""
    widths = list(natural)
    for _ in range(max(0, _span(widths) - width)):
        i = max(range(len(widths)), key=lambda j: (widths[j] > mins[j], widths[j]))
        if widths[i] <= mins[i]:
            break
        widths[i] -= 1
    return widths


def _draw(headers, cells, numeric, widths, cut, width, ascii_only) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    rule = box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n") if ascii_only else box.SIMPLE_HEAD
    table = Table(box=rule, header_style="bold", pad_edge=False, safe_box=False)
    for header, num, w in zip(headers, numeric, widths):
        table.add_column(header, justify="right" if num else "left", width=w, overflow="fold")
    for row in cells:   # Text: a cell is never read as markup (a tag "team[/]x" raised MarkupError)
        table.add_row(*(Text(_cut(c, w, ascii_only) if k else c) for c, w, k in zip(row, widths, cut)))
    buf = io.StringIO()
    Console(file=buf, force_terminal=True, width=width).print(table)
    return buf.getvalue().rstrip("\n")


def _cut(text: str, width: int, ascii_only: bool) -> str:
    mark = "..." if ascii_only else "…"
    if cell_len(text) <= width:
        return text
    return _head(text, width - len(mark)) + mark


def _ascii(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii")


def _ascii_only() -> bool:
    try:
        "─…".encode(getattr(sys.stdout, "encoding", None) or "ascii")
        return False
    except (UnicodeEncodeError, LookupError):
        return True


def wrap(line: str, width: int, indent: int) -> str:
    """One line of prose wrapped to `width` display cells at its spaces (runs of spaces kept: a
    footer's "label       text" stays aligned), continuations indented `indent`; a word too long
    for a line of its own is broken, as textwrap does, but by cells ("日本" is four)."""
    width = max(1, width)
    indent = min(indent, width // 2)   # a continuation always has room for text
    lines, current = [], ""
    for token in re.split(r"( +)", line):
        if token.startswith(" ") or not token:
            current += token
            continue
        if current.strip() and cell_len(current + token) > width and cell_len(" " * indent + token) <= width:
            lines.append(current.rstrip())   # the word fits the next line whole
            current = " " * indent
        while cell_len(current + token) > width:   # too long for any line: fill this one, go on
            head = _head(token, width - cell_len(current))
            if not head:   # not even one character fits after the indent
                if not current.strip():
                    head = token[0]
                else:
                    lines.append(current.rstrip())
                    current = " " * indent
                    continue
            lines.append(current + head)
            current, token = " " * indent, token[len(head):]
        current += token
    lines.append(current.rstrip())
    return "\n".join(lines)


def _head(text: str, cells: int) -> str:
    """The longest start of `text` that takes at most `cells` display cells."""
    out = ""
    for ch in text:
        if cell_len(out + ch) > cells:
            break
        out += ch
    return out
