"""bench.table.format_table: plain text when stdout is not a terminal (logs stay greppable), rich on one."""

import contextlib
import io
import os

from bench.table import format_table

ROWS = [{"provider": "nebius", "usd": 2.95, "cost": None}, {"provider": "coreweave", "usd": 6.16, "cost": 39.4}]
COLUMNS = [("provider", "provider", ""), ("usd", "$/GPU-h", ".2f"), ("cost", "cost $M", ".1f")]


def test_not_a_terminal_gives_plain_aligned_text():
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):  # what a pipe or a log file looks like
        text = format_table(ROWS, COLUMNS)
    assert text.splitlines() == [
        "provider   $/GPU-h  cost $M",
        "---------  -------  -------",
        "nebius        2.95        -",
        "coreweave     6.16     39.4",
    ]
    assert "\x1b" not in text


def test_terminal_draws_with_rich_same_cells():
    text = format_table(ROWS, COLUMNS, terminal=True)
    assert "\x1b[" in text and "─" in text  # rich's styling and rule
    for value in ("nebius", "coreweave", "2.95", "6.16", "39.4", "$/GPU-h"):
        assert value in text
    nebius = next(line for line in text.splitlines() if "nebius" in line)
    assert nebius.rstrip().endswith("-")  # the missing value shown as "-", right-aligned


def test_control_characters_in_a_cell_are_escaped():
    """A tag with a newline and an ESC (from a result file) split a row in two and recoloured the terminal."""
    rows = [{"tag": "me/east\nFAKE ROW\x1b[31m 日本", "v": 1.0}]
    for terminal in (False, True):
        text = format_table(rows, [("tag", "tag", ""), ("v", "v", ".1f")], terminal=terminal)
        if not terminal:
            assert "\x1b" not in text
        assert "me/east\\nFAKE ROW\\x1b[31m 日本" in text
        assert len([line for line in text.splitlines() if "FAKE" in line]) == 1


def test_footer_lines_wrap_on_a_terminal_only(monkeypatch):
    from bench.table import footer_text

    lines = ["scope       " + "word " * 40, "short       x\nspot        y"]   # an item of two lines
    pipe = io.StringIO()
    assert footer_text(lines, pipe) == "\n".join(lines)   # a pipe or file: one line each

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("shutil.get_terminal_size", lambda *a: os.terminal_size((80, 24)))
    text = footer_text(lines, Tty())
    assert all(len(line) <= 80 for line in text.splitlines()) and len(text.splitlines()) > 2
    assert all(line.startswith(" " * 12) for line in text.splitlines()[1:-2])
    assert text.splitlines()[-2:] == ["short       x", "spot        y"]   # kept apart, not run together


def test_a_cell_is_never_read_as_rich_markup():
    """A tag "team[/]x" crashed compare on a terminal (MarkupError); "[link=...]" wrote a hyperlink."""
    rows = [{"tag": "team[/]x"}, {"tag": "aws/[link=http://evil]x"}, {"tag": "me/[bold]y[/bold]"}]
    text = format_table(rows, [("tag", "tag", "")], terminal=True)
    assert "team[/]x" in text and "[link=http://evil]x" in text and "me/[bold]y[/bold]" in text
    assert "\x1b]8" not in text
