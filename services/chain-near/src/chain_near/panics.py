"""Turns a panic of the HTLC (or of a token contract) into the domain error a caller can act on.

The reasons are the ones chain-base gives for the same situations on BASE, so the session service
handles both chains with one table. The contract's message is matched by the stable phrase it contains
and passed on; a secret the failed call carried is cut out of it first, should a contract ever echo it.
"""

from __future__ import annotations

import re

from swap_runtime.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound

_PANIC_PREFIX = re.compile(r"^(Smart contract panicked:\s*|panicked at [^:]*:\s*)", re.IGNORECASE)
_WINDOW_AT = re.compile(r"(?:opens|closed) at (\d+)")
_NS_PER_S = 10**9

# Phrase in the panic -> (field when the caller's input is at fault, reason, message). First match wins, so
# the specific phrases come before the general ones.
_MEANING: list[tuple[str, str | None, str, str]] = [
    ("too early", None, "WINDOW_NOT_OPEN", "the window has not opened yet"),
    ("too late", None, "WINDOW_CLOSED", "the window has closed"),
    ("only the operator", None, "NOT_OPERATOR", "only the lock's operator may act in this window"),
    ("not active", None, "LOCK_NOT_ACTIVE", "the lock is no longer active"),
    ("lock already exists", None, "LOCK_EXISTS", "a lock with this nonce already exists"),
    ("lock not found", None, "LOCK_NOT_FOUND", "no such lock"),
    ("invalid secret", "secret", "INVALID_SECRET", "does not match the lock's hashlock"),
    ("invalid nonce", "resolver.salt", "INVALID_NONCE", "must be 1 to 64 characters"),
    ("invalid hashlock", "terms.hashlock", "INVALID_HASHLOCK", "must be 32 bytes"),
    ("invalid timelocks", "terms.timelocks", "INVALID_TIMELOCKS", "must be ordered"),
    ("invalid beneficiary", "terms.beneficiary", "INVALID_BENEFICIARY", "is not a valid account id"),
    ("token not accepted", "terms.token", "TOKEN_NOT_ACCEPTED", "the HTLC does not accept this token"),
    ("amount must be positive", "terms.amount", "INVALID_AMOUNT", "must be greater than zero"),
    ("below the minimum lock amount", "terms.amount", "INVALID_AMOUNT", "is below the HTLC's minimum lock amount"),
    ("insufficient native balance", None, "INSUFFICIENT_BALANCE", "the prepaid safety deposit is too low"),
    ("enough balance", None, "INSUFFICIENT_BALANCE", "the resolver's token balance is too low"),
    ("is not registered", None, "TOKEN_NOT_REGISTERED", "an account is not registered with the token"),
]


def panic_message(failure: str) -> str:
    return _PANIC_PREFIX.sub("", failure.strip()).strip()


def _clean(failure: str, hide: bytes | None) -> str:
    text = panic_message(failure)
    if hide:
        text = re.sub(re.escape(hide.hex()), "<secret>", text, flags=re.IGNORECASE)
    return text


def payout_failed(failure: str | None, action: str, *, hide: bytes | None = None) -> FailedPrecondition:
    """The HTLC took the call but its payout bounced (an unregistered or missing recipient): the funds
    are still in the lock, which is active again."""
    text = _clean(failure or "", hide)
    return FailedPrecondition(
        f"{action}: the payout bounced and the lock is active again ({text or 'no reason given'})",
        reason="PAYOUT_FAILED",
        metadata={"panic": text},
    )


def to_domain_error(failure: str, action: str, *, hide: bytes | None = None) -> DomainError:
    text = _clean(failure, hide)
    lowered = text.lower()
    for phrase, field, reason, message in _MEANING:
        if phrase not in lowered:
            continue
        if reason == "LOCK_NOT_FOUND":
            return NotFound(f"{action}: {message}", reason=reason, metadata={"panic": text})
        if field is not None:
            return InvalidArgument(field, f"{message} ({text})")
        at = _WINDOW_AT.search(text)
        detail = f"at unix time {int(at.group(1)) // _NS_PER_S}" if at is not None else text
        return FailedPrecondition(f"{action}: {message} ({detail})", reason=reason, metadata={"panic": text})
    return FailedPrecondition(f"{action} failed: {text}", reason="REVERTED", metadata={"panic": text})
