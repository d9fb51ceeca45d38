"""The maker's order as EIP-712 typed data: what wallets sign (eth_signTypedData_v4) and what
EscrowSrc.hashOrder hashes. Its digest is the id of the source escrow the order creates."""

from __future__ import annotations

from typing import Any

from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from chain_base.model import SrcOrder

ESCROW_SRC_NAME = "SwapEscrowSrc"
ESCROW_SRC_VERSION = "1"

TIMELOCKS_FIELDS = (
    ("withdrawal", "uint32"),
    ("publicWithdrawal", "uint32"),
    ("cancellation", "uint32"),
    ("publicCancellation", "uint32"),
)
ORDER_FIELDS = (
    ("maker", "address"),
    ("resolver", "address"),
    ("token", "address"),
    ("amount", "uint256"),
    ("hashlock", "bytes32"),
    ("timelocks", "Timelocks"),
    ("safetyDeposit", "uint256"),
    ("dstTermsHash", "bytes32"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)


def order_message(order: SrcOrder) -> dict[str, Any]:
    t = order.timelocks
    return {
        "maker": order.maker,
        "resolver": order.resolver,
        "token": order.token,
        "amount": order.amount,
        "hashlock": order.hashlock,
        "timelocks": {
            "withdrawal": t.withdrawal,
            "publicWithdrawal": t.public_withdrawal,
            "cancellation": t.cancellation,
            "publicCancellation": t.public_cancellation,
        },
        "safetyDeposit": order.safety_deposit,
        "dstTermsHash": order.dst_terms_hash,
        "nonce": order.nonce,
        "deadline": order.deadline,
    }


def typed_data(chain_id: int, escrow_src: str, message: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe typed data: uint256 as decimal strings (JavaScript loses precision on big numbers),
    bytes32 as 0x-hex, addresses checksummed, uint32 as numbers."""
    out: dict[str, Any] = {}
    for field, kind in ORDER_FIELDS:
        value = message[field]
        if kind == "address":
            out[field] = to_checksum_address(value)
        elif kind == "bytes32":
            out[field] = HexBytes(value).to_0x_hex()
        elif kind == "uint256":
            out[field] = str(int(value))
        else:
            out[field] = {name: int(value[name]) for name, _ in TIMELOCKS_FIELDS}
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Order": [{"name": n, "type": t} for n, t in ORDER_FIELDS],
            "Timelocks": [{"name": n, "type": t} for n, t in TIMELOCKS_FIELDS],
        },
        "primaryType": "Order",
        "domain": {
            "name": ESCROW_SRC_NAME,
            "version": ESCROW_SRC_VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(escrow_src),
        },
        "message": out,
    }


def digest(typed: dict[str, Any]) -> bytes:
    """The EIP-712 digest: what the maker signs, and the source escrow's id."""
    signable = encode_typed_data(full_message=typed)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)
