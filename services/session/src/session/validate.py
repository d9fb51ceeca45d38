"""Account checks per chain; each failure names the field."""

from __future__ import annotations

import re

from swap_runtime.errors import InvalidArgument

_EVM = re.compile(r"0x[0-9a-fA-F]{40}")
# NEAR account ids: 2..64 chars of lower-case alphanumerics separated by single - _ or . characters.
_NEAR = re.compile(r"(?=.{2,64}$)([a-z\d]+[-_])*[a-z\d]+(\.([a-z\d]+[-_])*[a-z\d]+)*")


def account(field: str, chain: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, f"required: an account on {chain}")
    if chain == "base" and not _EVM.fullmatch(value):
        raise InvalidArgument(field, f"is not a BASE address (0x and 40 hex digits): {value!r}")
    if chain == "near" and not _NEAR.fullmatch(value):
        raise InvalidArgument(field, f"is not a NEAR account id: {value!r}")
    return value


def token(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, 'required: a token address / account id, or "native"')
    return value
