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
    from bench.term_table import render as _rich_table

    headers = ["model", "GPU", "published GPU-h", "layout"] + [f"c{i}" for i in range(6)]
    cells = [["llama3.1-405b", "A100-SXM-80GB", "30.84M", "TP8 PP16 DP128 mb1"] + ["12345"] * 6]
    lines = _visible(_rich_table(headers, cells, [False, False, True, False] + [True] * 6, width=70))
    assert all(len(line) <= 70 for line in lines)
    text = "\n".join(lines)
    assert "llama3.1-405b" in text and "A100-SXM-80GB" in text and "30.84M" in text
    assert "GPU-h" in text and "TP8" in text   # a header or a spaced cell may wrap at its spaces


def test_too_many_columns_become_several_tables_each_led_by_the_first():
    from bench.term_table import render as _rich_table

    headers = ["tag"] + [f"column {i}" for i in range(12)]
    cells = [["aws/us-east-1", *(f"{v}.5" for v in range(12))], ["lambda/all", *(f"{v}.25" for v in range(12))]]
    lines = _visible(_rich_table(headers, cells, [False] + [True] * 12, width=60))
    assert all(len(line) <= 60 for line in lines)
    assert sum("aws/us-east-1" in line for line in lines) >= 2   # each part names its rows
    text = "\n".join(lines)
    assert all(f"{v}.5" in text and f"{v}.25" in text for v in range(12))   # nothing dropped


def test_a_few_long_notes_become_numbered_footnotes_whole():
    from bench.term_table import render as _rich_table

    note = "catalog parts: attention, tp_comm, dp_comm, pp_comm; CPU run: no price (a --prices row prices it)"
    headers, cells = ["tag", "GPUs", "cost", "note"], [["ci/cpu", "16,384", "-", note], ["b", "8", "$1", note + "!"]]
    lines = _visible(_rich_table(headers, cells, [False, True, True, False], width=45))
    assert all(len(line) <= 45 for line in lines)
    rows = [line for line in lines if line.startswith(" ci/cpu") or line.startswith(" b ")]
    assert rows[0].rstrip().endswith("[1]") and rows[1].rstrip().endswith("[2]")
    joined = " ".join(line.strip() for line in lines)
    assert f"[1] {note}" in joined and f"[2] {note}!" in joined   # the whole text, under the table


def test_many_long_texts_are_cut_and_the_table_says_where_the_whole_is():
    from bench.term_table import MAX_FOOTNOTES, render as _rich_table

    headers = ["provider", "$/GPU-h", "source"]
    cells = [[f"p{i}", f"{i}.00", f"SkyPilot catalog row {i} of a very long source text with a commit hash abcdef"]
             for i in range(MAX_FOOTNOTES + 1)]
    lines = _visible(_rich_table(headers, cells, [False, True, False], width=50))
    assert all(len(line) <= 50 for line in lines)
    assert sum("…" in line for line in lines) == MAX_FOOTNOTES + 1   # one line per row, cut
    assert " ".join(line.strip() for line in lines[-2:]) == ("source: cut to the terminal's width; --format csv "
                                                             "or json has the whole text")   # wrapped to 50


def test_a_table_that_fits_is_drawn_as_before():
    from bench.term_table import render as _rich_table

    lines = _visible(_rich_table(["provider", "$/GPU-h"], [["nebius", "2.95"]], [False, True], width=80))
    assert [line.strip() for line in lines if line.strip()] == ["provider   $/GPU-h", "─" * 18, "nebius        2.95"]


def test_a_first_column_too_wide_to_lead_gives_way_to_row_numbers():
    """A 55-character path leading every split table squeezed the others to 1-4 characters ("16,/384")."""
    from bench.term_table import render

    path = "results/reference/20261207T125035Z-cpu-ci-cpu-17b6.json"
    headers = ["value", "GPU", "GPUs", "GPU-hours", "days", "cost min"]
    cells = [[path, "cpu", "16,384", "11.5M", "29.3", "$39.2M"], ["b.json", "cpu", "16,384", "9.1M", "23.0", "$31.0M"]]
    lines = _visible(render(headers, cells, [False, False, True, True, True, True], width=62))
    assert all(len(line) <= 62 for line in lines)
    text = "\n".join(lines)
    assert path in text and "16,384" in text and "$39.2M" in text and "GPU-hours" in text   # none folded
    # the path is a table of its own beside the row number; every table is led by it
    assert [line.split()[:2] for line in lines if line.split()[:1] == ["#"]] == [["#", "value"], ["#", "GPU"]]
    narrow = _visible(render(headers, cells, [False, False, True, True, True, True], width=50))
    assert all(len(line) <= 50 for line in narrow) and sum(line.split()[:1] == ["#"] for line in narrow) >= 2


def test_rows_the_first_column_does_not_tell_apart_are_numbered_when_split():
    from bench.term_table import render

    headers = ["provider", "pricing", "region", "$/GPU-h", "as of", "a long header here", "another one"]
    cells = [["aws", "spot", "us-west-2", "1.17", "2026-07", "x", "y"], ["aws", "on-demand", "us-east-1", "6.88",
                                                                          "2026-07", "x", "y"]]
    lines = _visible(render(headers, cells, [False] * 3 + [True] + [False] * 3, width=40))
    assert all(len(line) <= 40 for line in lines)
    heads = [line.split() for line in lines if line.strip().startswith("#")]
    assert len(heads) >= 2   # every part starts with '#', so its rows can be matched
    assert any(line.split()[:2] == ["2", "aws"] for line in lines)


def test_the_first_column_is_never_numbered_and_wide_characters_count_double():
    from bench.term_table import render

    tag = "さくら/東京 日本語のタグ とても長い名前のタグです 本当に"
    note = "catalog parts: attention, tp_comm, dp_comm, pp_comm; 日本語の注記もここにあります"
    lines = _visible(render(["tag", "GPUs", "note"], [[tag, "8", note]], [False, True, False], width=50))
    from rich.cells import cell_len

    assert all(cell_len(line) <= 50 for line in lines)   # display cells, not characters
    assert "[1]" not in lines[3].split()[0] and "さくら/東京" in lines[3]
    assert any(line.startswith("[1] catalog parts:") for line in lines)


def test_an_ascii_terminal_gets_an_ascii_rule_and_cut_mark():
    from bench.term_table import MAX_FOOTNOTES, render

    cells = [[f"p{i}", f"source text number {i} that is long enough to be prose, and more"] for i in range(MAX_FOOTNOTES + 1)]
    text = render(["provider", "source"], cells, [False, False], width=40, ascii_only=True)
    text.encode("ascii")   # nothing an ASCII terminal cannot show
    assert "-----" in text and "..." in text


def test_footers_wrap_by_display_width_to_any_terminal(monkeypatch):
    from rich.cells import cell_len

    from bench.table import footer_text

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("shutil.get_terminal_size", lambda *a: os.terminal_size((30, 24)))
    lines = ["prices      日本のクラウド事業者 の行 " * 4, "claim       evil\x1b[41mRED text " * 3]
    out = footer_text(lines, Tty()).splitlines()
    assert all(cell_len(line) <= 30 for line in out) and len(out) > 4   # narrower than the old 60 floor
    assert "\x1b" not in "".join(out) and "\\x1b[41mRED" in "".join(out)
    assert out[0].startswith("prices      ") and out[1].startswith(" " * 12)   # the label's spacing kept


def test_an_empty_table_keeps_its_columns_in_order():
    from bench.term_table import render

    lines = _visible(render(["a very long header indeed and more", "b" * 30, "c" * 30], [], [False] * 3, width=40))
    heads = [line.strip() for line in lines if line.strip() and not line.strip().startswith("─")]
    assert heads[0].startswith("a very long") and heads[-2:] == ["b" * 30, "c" * 30]
    assert all(len(line) <= 40 for line in lines)


def test_wrap_gives_a_continuation_room_and_never_overflows():
    from rich.cells import cell_len

    from bench.term_table import wrap

    for line, width, indent in (("a b c d e f", 5, 10), ("abc 日本 語の", 4, 3), ("x" * 30, 7, 2)):
        out = wrap(line, width, indent).splitlines()
        assert all(cell_len(x) <= width for x in out) and "".join(out).replace(" ", "") == line.replace(" ", "")


def test_a_prose_column_keeps_its_longest_word_whole_and_ascii_measures_escapes():
    from bench.term_table import render

    url = "cloud.google.com/compute/docs/gpus/gpu-network-bandwidth,"
    lines = _visible(render(["net", "source"], [["gcp-a3-high", f"GCP A3 High: up to 1,000 Gbps ({url} read 2026-12)"]],
                            [False, False], width=100))
    assert any(url in line for line in lines)
    text = render(["tag", "GPUs"], [["日本語のタグ", "8"]], [False, True], width=40, ascii_only=True)
    assert all(len(line) <= 40 for line in _visible(text)) and "\\u65e5" in text


def test_days_drop_the_tenth_past_a_hundred():
    from bench.table import days

    assert [days(v) for v in (15.06, 99.94, 271.14, 248649.3, None)] == ["15.1", "99.9", "271", "248,649", "-"]
