"""Command-line numbers: 70B, 15T, 6.4M, 70e9."""

import pytest

from cost_models.errors import InputError
from cost_models.units import parse_fraction, parse_number, parse_positive


@pytest.mark.parametrize("text,value", [("70B", 70e9), ("15T", 15e12), ("6.4M", 6.4e6), ("70e9", 70e9),
                                        ("1_000", 1000), ("2k", 2000), ("1.5G", 1.5e9), ("-3", -3)])
def test_parse_number(text, value):
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text,message", [("abc", "is not a number"), ("inf", "not a finite number"),
                                          ("nan", "not a finite number"), ("", "not a number")])
def test_parse_number_rejects(text, message):
    with pytest.raises(InputError, match=message):
        parse_number(text, "--tokens")


def test_positive_and_fraction():
    assert parse_positive("1e-3") == 1e-3
    with pytest.raises(InputError, match="--gpus: '0' must be positive"):
        parse_positive("0", "--gpus")
    assert parse_fraction("1") == 1.0
    for bad in ("0", "1.01", "-0.5"):
        with pytest.raises(InputError, match=r"must be in \(0, 1\]"):
            parse_fraction(bad, "--mfu")
