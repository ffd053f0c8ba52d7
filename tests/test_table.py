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


def _visible(text: str) -> list[str]:
    import re

    return [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in text.splitlines()]


def test_a_narrow_terminal_never_breaks_an_identifier():
    """rich folded "A100-SXM-80GB" over three lines on a 120-column terminal (models, gpus, whatif)."""
    from bench.table import _rich_table

    headers = ["model", "GPU", "published GPU-h", "layout"] + [f"c{i}" for i in range(6)]
    cells = [["llama3.1-405b", "A100-SXM-80GB", "30.84M", "TP8 PP16 DP128 mb1"] + ["12345"] * 6]
    lines = _visible(_rich_table(headers, cells, [False, False, True, False] + [True] * 6, width=70))
    assert all(len(line) <= 70 for line in lines)
    text = "\n".join(lines)
    assert "llama3.1-405b" in text and "A100-SXM-80GB" in text and "30.84M" in text
    assert "GPU-h" in text and "TP8" in text   # a header or a spaced cell may wrap at its spaces


def test_too_many_columns_become_several_tables_each_led_by_the_first():
    from bench.table import _rich_table

    headers = ["tag"] + [f"column {i}" for i in range(12)]
    cells = [["aws/us-east-1", *(f"{v}.5" for v in range(12))], ["lambda/all", *(f"{v}.25" for v in range(12))]]
    lines = _visible(_rich_table(headers, cells, [False] + [True] * 12, width=60))
    assert all(len(line) <= 60 for line in lines)
    assert sum("aws/us-east-1" in line for line in lines) >= 2   # each part names its rows
    text = "\n".join(lines)
    assert all(f"{v}.5" in text and f"{v}.25" in text for v in range(12))   # nothing dropped


def test_a_few_long_notes_become_numbered_footnotes_whole():
    from bench.table import _rich_table

    note = "catalog parts: attention, tp_comm, dp_comm, pp_comm; CPU run: no price (a --prices row prices it)"
    headers, cells = ["tag", "GPUs", "cost", "note"], [["ci/cpu", "16,384", "-", note], ["b", "8", "$1", note + "!"]]
    lines = _visible(_rich_table(headers, cells, [False, True, True, False], width=45))
    assert all(len(line) <= 45 for line in lines)
    rows = [line for line in lines if line.startswith(" ci/cpu") or line.startswith(" b ")]
    assert rows[0].rstrip().endswith("[1]") and rows[1].rstrip().endswith("[2]")
    joined = " ".join(line.strip() for line in lines)
    assert f"[1] {note}" in joined and f"[2] {note}!" in joined   # the whole text, under the table


def test_many_long_texts_are_cut_and_the_table_says_where_the_whole_is():
    from bench.table import MAX_FOOTNOTES, _rich_table

    headers = ["provider", "$/GPU-h", "source"]
    cells = [[f"p{i}", f"{i}.00", f"SkyPilot catalog row {i} of a very long source text with a commit hash abcdef"]
             for i in range(MAX_FOOTNOTES + 1)]
    lines = _visible(_rich_table(headers, cells, [False, True, False], width=50))
    assert all(len(line) <= 50 for line in lines)
    assert sum("…" in line for line in lines) == MAX_FOOTNOTES + 1   # one line per row, cut
    assert " ".join(line.strip() for line in lines[-2:]) == ("source: cut to the terminal's width; --format csv "
                                                             "or json has the whole text")   # wrapped to 50


def test_a_table_that_fits_is_drawn_as_before():
    from bench.table import _rich_table

    lines = _visible(_rich_table(["provider", "$/GPU-h"], [["nebius", "2.95"]], [False, True], width=80))
    assert [line.strip() for line in lines if line.strip()] == ["provider   $/GPU-h", "─" * 18, "nebius        2.95"]
