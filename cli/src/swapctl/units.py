"""Amounts and assets as typed on the command line, and amounts as shown back.

The API speaks decimal strings of base units only; swapctl converts with the decimals of the gateway's
token list (GET /api/v1/assets, swapctl.assets), so a user never types them.
"""

from __future__ import annotations

import re
from decimal import Decimal

CHAINS = ("base", "near")
NATIVE = "native"

_BASE_UNITS = re.compile(r"^[0-9]+$")
_HUMAN = re.compile(r"^(?P<int>[0-9]*)(?:\.(?P<frac>[0-9]*))?$")
_MAX_DECIMALS = 77  # the quote service's bound: uint256 has 78 digits


class InputError(ValueError):
    """A value the user typed that cannot be used; the message says what to type instead."""


def parse_amount(text: str, decimals: int | None) -> int:
    """Token units (e.g. "25.5") with the token's `decimals`; whole base units when `decimals` is None."""
    raw = text.strip().replace("_", "")
    if decimals is None:
        if not _BASE_UNITS.match(raw):
            if _HUMAN.match(raw) and raw not in ("", "."):
                raise InputError(
                    f"{text!r} is not a whole number of base units; leave out --base-units to type token units"
                )
            raise InputError(f"{text!r} is not an amount: expected a whole number of base units")
        value = int(raw)
    else:
        if not 0 <= decimals <= _MAX_DECIMALS:
            raise InputError(f"the token's decimals ({decimals}) must be between 0 and {_MAX_DECIMALS}")
        match = _HUMAN.match(raw)
        if not match or raw in ("", "."):
            raise InputError(f"{text!r} is not an amount: expected token units such as 25 or 25.5")
        frac = (match.group("frac") or "").rstrip("0")
        if len(frac) > decimals:
            raise InputError(f"{text!r} has more than {decimals} decimal places (the token has {decimals} decimals)")
        value = int(match.group("int") or "0") * 10**decimals + int(frac.ljust(decimals, "0") or "0")
    if value <= 0:
        raise InputError("the amount must be greater than zero")
    return value


def format_units(base_units: str | int | None, decimals: int | None) -> str:
    """`25500000` with 6 decimals -> `25.5 (25500000)`; without decimals just the base units."""
    if base_units is None or base_units == "":
        return "-"
    text = str(base_units)
    if decimals is None or not _BASE_UNITS.match(text):
        return text
    human = Decimal(int(text)).scaleb(-decimals)
    shown = f"{human:f}"
    if "." in shown:
        shown = shown.rstrip("0").rstrip(".")
    return f"{shown} ({text})"


def check_amount(text: str, base_units: bool) -> None:
    """The amount's syntax, before anything is sent (its decimals come with the gateway's token list)."""
    parse_amount(text, None if base_units else _MAX_DECIMALS)


def parse_asset(text: str) -> dict[str, str]:
    """`base:TUSD`, `base:0x5FbD...`, `near:token.test.near`, or just `base` / `near` for the native coin."""
    chain, sep, token = text.strip().partition(":")
    chain = chain.lower()
    if chain not in CHAINS:
        raise InputError(f"{text!r}: the chain must be one of {', '.join(CHAINS)} (as in base:TUSD or near:NEAR)")
    token = token.strip() if sep else NATIVE
    if not token:
        raise InputError(f"{text!r}: the token is missing after ':' (a symbol, an address, an account id, or native)")
    return {"chain": chain, "token": token}


def describe_asset(asset: object) -> str:
    if isinstance(asset, dict):
        return f"{asset.get('chain', '?')}:{asset.get('token', '?')}"
    return "-"
