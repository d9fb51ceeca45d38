"""Input checks that need no chain; each failure names the field. Accounts are checked by their chain's
service (CheckAccount), so this service names no chain."""

from __future__ import annotations

from swap_runtime.errors import InvalidArgument


def token(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, 'required: a token address / account id, or "native"')
    return value
