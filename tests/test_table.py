"""bench.table.format_table: plain text when stdout is not a terminal (logs stay greppable), rich on one."""

import contextlib
import io

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
