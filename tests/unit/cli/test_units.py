"""Amounts and assets as typed on the command line."""

from __future__ import annotations

import pytest
from swapctl.units import InputError, format_units, parse_amount, parse_asset


@pytest.mark.parametrize(
    ("text", "decimals", "expected"),
    [
        ("25500000", None, 25_500_000),
        ("25_500_000", None, 25_500_000),
        ("25", 6, 25_000_000),
        ("25.5", 6, 25_500_000),
        ("0.000001", 6, 1),
        (".5", 6, 500_000),
        ("1.500000", 6, 1_500_000),
        ("7", 0, 7),
        ("1.0", 0, 1),
        ("3", 24, 3 * 10**24),
    ],
)
def test_amounts(text: str, decimals: int | None, expected: int) -> None:
    assert parse_amount(text, decimals) == expected


@pytest.mark.parametrize(
    ("text", "decimals", "says"),
    [
        ("25.5", None, "--base-units"),
        ("abc", None, "not an amount"),
        ("-5", None, "not an amount"),
        ("0", None, "greater than zero"),
        ("0.0000001", 6, "more than 6 decimal places"),
        ("1e6", 6, "not an amount"),
        ("", 6, "not an amount"),
        (".", 6, "not an amount"),
        ("0.000", 6, "greater than zero"),
        ("1", 99, "must be between 0 and 77"),
    ],
)
def test_bad_amounts(text: str, decimals: int | None, says: str) -> None:
    with pytest.raises(InputError, match=says.replace(".", r"\.").replace("-", r"\-")):
        parse_amount(text, decimals)


def test_format_units() -> None:
    assert format_units("25500000", 6) == "25.5 (25500000)"
    assert format_units("25000000", 6) == "25 (25000000)"
    assert format_units("1", 6) == "0.000001 (1)"
    assert format_units("25500000", None) == "25500000"
    assert format_units(None, 6) == "-"
    assert format_units("n/a", 6) == "n/a"


def test_assets() -> None:
    assert parse_asset("base:0xAbC") == {"chain": "base", "token": "0xAbC"}
    assert parse_asset("NEAR:token.test.near") == {"chain": "near", "token": "token.test.near"}
    assert parse_asset("near") == {"chain": "near", "token": "native"}
    assert parse_asset("base:TUSD") == {"chain": "base", "token": "TUSD"}  # a symbol, resolved by swapctl.assets
    with pytest.raises(InputError, match="chain must be one of base, near"):
        parse_asset("eth:0x1")
    with pytest.raises(InputError, match="token is missing"):
        parse_asset("base:")
