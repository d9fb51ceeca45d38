"""Turns an escrow's custom-error revert into the domain error a caller can act on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode
from eth_utils.crypto import keccak
from swap_runtime.errors import DomainError, FailedPrecondition, InvalidArgument

from chain_base import abi


@dataclass(frozen=True)
class _Err:
    name: str
    types: list[str]


def _selectors() -> dict[bytes, _Err]:
    table: dict[bytes, _Err] = {}
    for contract in ("EscrowSrc", "EscrowDst", "TestToken"):
        for item in abi.load(contract):
            if item.get("type") != "error":
                continue
            types = [i["type"] for i in item["inputs"]]
            selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
            table[selector] = _Err(item["name"], types)
    return table


_SELECTORS = _selectors()

# Custom error -> (field when the caller's input is at fault, reason, message).
_MEANING: dict[str, tuple[str | None, str, str]] = {
    "InvalidAmount": ("terms.amount", "INVALID_AMOUNT", "must be greater than zero"),
    "InvalidTimelocks": ("terms.timelocks", "INVALID_TIMELOCKS", "must be ordered"),
    "InvalidDeposit": ("terms.safety_deposit", "INVALID_DEPOSIT", "does not match the value sent"),
    "InvalidToken": ("terms.token", "INVALID_TOKEN", "source escrows hold ERC-20 tokens only"),
    "InvalidBeneficiary": ("terms.beneficiary", "INVALID_BENEFICIARY", "must be a nonzero address"),
    "InvalidSecret": ("secret", "INVALID_SECRET", "does not match the lock's hashlock"),
    "InvalidSignature": (
        "maker_order.signature",
        "INVALID_SIGNATURE",
        "is not the maker's signature of the order",
    ),
    "EscrowExists": (None, "LOCK_EXISTS", "an escrow with these terms already exists"),
    "NotActive": (None, "LOCK_NOT_ACTIVE", "the escrow is no longer active"),
    "NotOperator": (None, "NOT_OPERATOR", "only the escrow's operator may act in this window"),
    "TooEarly": (None, "WINDOW_NOT_OPEN", "the window has not opened yet"),
    "TooLate": (None, "WINDOW_CLOSED", "the window has closed"),
    "OrderExpired": (None, "ORDER_EXPIRED", "the order's deadline has passed"),
    "NonceUsed": (None, "ORDER_NONCE_USED", "the order's nonce was used already"),
    "WrongResolver": (None, "WRONG_RESOLVER", "the order names another resolver"),
    "TransferFailed": (None, "TRANSFER_FAILED", "the token transfer failed (balance or allowance too low)"),
}


def decode_revert(data: Any) -> tuple[str, tuple[Any, ...]] | None:
    raw = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data or b"")
    err = _SELECTORS.get(raw[:4])
    if err is None:
        return None
    return err.name, tuple(decode(err.types, raw[4:]))


def to_domain_error(data: Any, action: str) -> DomainError:
    decoded = decode_revert(data)
    if decoded is None:
        return FailedPrecondition(f"{action} reverted", reason="REVERTED")
    name, args = decoded
    field, reason, message = _MEANING.get(name, (None, name.upper(), name))
    if name in ("TooEarly", "TooLate") and args:
        message = f"{message} (at unix time {args[0]})"
    if field is not None:
        return InvalidArgument(field, message)
    return FailedPrecondition(f"{action}: {message}", reason=reason, metadata={"error": name})
