"""The dispatcher's contract: top-level help, unknown commands, one-line errors, table layout."""

import argparse
import subprocess
import sys

import pytest

from bench import cli
from bench.table import format_table, si


def test_top_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert f"  {name}" in out


def test_unknown_command_is_one_line_with_close_match(capsys):
    assert cli.main(["csot"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unknown command 'csot'" in err and "cost" in err


def test_argparse_error_is_one_line_exit_2(capsys):
    # The parser's error() is overridden: no usage block, just the error line.
    parser = cli.ArgumentParser(prog="costbench x")
    parser.add_argument("--n", type=cli.positive)
    with pytest.raises(SystemExit) as e:
        parser.parse_args(["--n", "-5"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--n" in err and "positive" in err


@pytest.mark.parametrize("text,value", [("70B", 70e9), ("15T", 15e12), ("6.4M", 6.4e6), ("70e9", 70e9)])
def test_positive_accepts_suffixes(text, value):
    assert cli.positive(text) == pytest.approx(value)


def test_positive_int_rejects_fractions():
    import argparse
    with pytest.raises(argparse.ArgumentTypeError):
        cli.positive_int("2.5")
    assert cli.positive_int("1K") == 1000


def test_csv_list():
    assert cli.csv_list("a, b ,c") == ["a", "b", "c"]
    for typo in ("a,,c", "a,b,", ",a", " , "):   # a dropped item hid a typo (`--ops matmul,,membw`)
        with pytest.raises(argparse.ArgumentTypeError):
            cli.csv_list(typo)


def test_byte_size_reads_numbers_as_the_readme_does():
    assert cli.byte_size("1_024") == 1024 and cli.byte_size("4e3") == 4000 and cli.byte_size("1T") == 1 << 40
    assert cli.byte_size("4GiB") == 4 << 30 and cli.byte_size(" 64k ") == 65536 and cli.byte_size("1.5K") == 1536
    for bad in ("\u0664K", "4X", "1__0", "nan", "inf", "-4", "2T", "1e400"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.byte_size(bad)


def test_version_via_python_m_bench():
    out = subprocess.run([sys.executable, "-m", "bench", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("costbench ")


def test_format_table_aligns_numbers_right_and_text_left():
    rows = [{"name": "a", "v": 1.5}, {"name": "bbb", "v": 22.25}, {"name": "c", "v": None}]
    text = format_table(rows, [("name", "Name", None), ("v", "Value", ".2f")])
    lines = text.splitlines()
    assert lines[0] == "Name  Value"
    assert lines[1] == "----  -----"
    assert lines[2] == "a      1.50"
    assert lines[3] == "bbb   22.25"
    assert lines[4] == "c         -"  # missing values print as '-', never guessed


@pytest.mark.parametrize("value,text", [(6.11e6, "6.11M"), (72_000, "72K"), (15.6e12, "15.6T"),
                                        (405.9e9, "406B"), (950, "950")])
def test_si(value, text):
    assert si(value) == text


def test_only_rank_0_says_interrupted(monkeypatch, capsys):
    """torchrun's agent SIGTERMs the other ranks when rank 0 refuses a flag: rank 1's "interrupted"
    read as the cause (hostile tester round 6). The status stays 130."""
    monkeypatch.setattr(cli, "_main", lambda command, argv: (_ for _ in ()).throw(KeyboardInterrupt()))
    for rank, said in (("1", False), ("0", True), ("", True)):
        monkeypatch.setenv("RANK", rank)
        assert cli.main(["prices"]) == 130
        assert ("costbench: interrupted" in capsys.readouterr().err) is said


def test_help_command_shows_that_commands_help(capsys):
    """`costbench help run` printed the top-level help, as if `run` were not there."""
    from bench import cli as cli_mod

    assert cli_mod.main(["help", "run"]) == 0
    assert capsys.readouterr().out.startswith("usage: costbench run ")
    code = cli_mod.main(["help", "rn"])
    assert code == 2 and "unknown command 'rn'; did you mean run?" in capsys.readouterr().err
