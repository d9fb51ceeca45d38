"""Building orders and destination params, sending escrow calls, and asserting custom-error reverts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi.abi import decode
from hexbytes import HexBytes
from swap_devnet.evm import (
    EvmDeployment,
    Order,
    Timelocks,
    latest_timestamp,
    new_secret,
    order_args,
    send_transaction,
    set_next_block_timestamp,
    sha256_hashlock,
    sign_order,
)
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD
from web3.types import TxReceipt

SAFETY_DEPOSIT = 10**15
AMOUNT = 250 * 10**6
TIMELOCKS = Timelocks(withdrawal=60, publicWithdrawal=300, cancellation=900, publicCancellation=1200)


def custom_errors(contract: Contract) -> dict[str, tuple[str, list[str]]]:
    """4-byte selector (0x-hex) -> (error name, argument types), from the contract's ABI."""
    out: dict[str, tuple[str, list[str]]] = {}
    for item in contract.abi:
        if item["type"] == "error":
            types = [str(arg["type"]) for arg in item.get("inputs", [])]
            signature = f"{item['name']}({','.join(types)})"
            out[Web3.keccak(text=signature)[:4].to_0x_hex()] = (str(item["name"]), types)
    return out


def decode_error(contract: Contract, data: str) -> tuple[str, tuple[Any, ...]]:
    raw = HexBytes(data)
    known = custom_errors(contract)
    selector = raw[:4].to_0x_hex()
    if selector not in known:
        raise AssertionError(f"revert data {data} matches no custom error of the contract")
    name, types = known[selector]
    return name, tuple(decode(types, raw[4:]))


def assert_reverts(
    contract: Contract,
    call: ContractFunction,
    private_key: str,
    error: str,
    *args: Any,
    value: int = 0,
) -> None:
    """Sending `call` reverts with the custom error `error` (and `args`, when given)."""
    with pytest.raises(ContractCustomError) as raised:
        send_transaction(contract.w3, private_key, call, value=value)
    data = raised.value.data
    assert isinstance(data, str)
    name, decoded = decode_error(contract, data)
    assert name == error, f"expected {error}, reverted with {name}{decoded}"
    if args:
        assert decoded == args


@dataclass
class SrcOrder:
    order: Order
    secret: bytes
    signature: bytes

    @property
    def args(self) -> dict[str, Any]:
        return order_args(self.order)


def make_order(
    evm: EvmDeployment, w3: Web3, *, nonce: int = 1, sign_with: str | None = None, **fields: Any
) -> SrcOrder:
    secret = new_secret()
    order = Order(
        maker=evm.maker.address,
        resolver=evm.resolver.address,
        token=evm.token,
        amount=AMOUNT,
        hashlock=sha256_hashlock(secret),
        timelocks=TIMELOCKS,
        safetyDeposit=SAFETY_DEPOSIT,
        dstTermsHash=Web3.keccak(text="dst terms"),
        nonce=nonce,
        deadline=latest_timestamp(w3) + 3600,
    )
    order.update(fields)  # type: ignore[typeddict-item]
    signature = sign_order(evm, order, sign_with or evm.maker.private_key)
    return SrcOrder(order=order, secret=secret, signature=signature)


def create_src(evm: EvmDeployment, src: Contract, made: SrcOrder) -> tuple[bytes, TxReceipt]:
    receipt = send_transaction(
        src.w3,
        evm.resolver.private_key,
        src.functions.createSrcEscrow(made.args, made.signature),
        value=made.order["safetyDeposit"],
    )
    (event,) = src.events.EscrowCreated().process_receipt(receipt, errors=DISCARD)
    return bytes(event["args"]["id"]), receipt


def dst_params(
    evm: EvmDeployment,
    *,
    token: str | None = None,
    secret: bytes | None = None,
    salt: int = 0,
    timelocks: Timelocks = TIMELOCKS,
    **fields: Any,
) -> tuple[dict[str, Any], bytes]:
    """DstParams locking AMOUNT for the receiver (native ETH unless `token` is given), and its secret."""
    secret = secret or new_secret()
    params: dict[str, Any] = {
        "beneficiary": evm.receiver.address,
        "token": token or "0x" + "00" * 20,
        "amount": AMOUNT,
        "hashlock": sha256_hashlock(secret),
        "timelocks": dict(timelocks),
        "safetyDeposit": SAFETY_DEPOSIT,
        "salt": salt,
    }
    params.update(fields)
    return params, secret


def dst_value(params: dict[str, Any]) -> int:
    native = int(params["token"], 16) == 0
    return int(params["amount"]) + int(params["safetyDeposit"]) if native else int(params["safetyDeposit"])


def create_dst(evm: EvmDeployment, dst: Contract, params: dict[str, Any]) -> tuple[bytes, TxReceipt]:
    receipt = send_transaction(
        dst.w3, evm.resolver.private_key, dst.functions.createDstEscrow(params), value=dst_value(params)
    )
    (event,) = dst.events.EscrowCreated().process_receipt(receipt, errors=DISCARD)
    return bytes(event["args"]["id"]), receipt


def block_time(w3: Web3, receipt: TxReceipt) -> int:
    return int(w3.eth.get_block(receipt["blockNumber"])["timestamp"])


def at(w3: Web3, timestamp: int) -> None:
    """The next transaction (gas estimation included) runs at exactly `timestamp`."""
    set_next_block_timestamp(w3, timestamp)


def gas_cost(receipt: TxReceipt) -> int:
    return int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])


def eth_balances(w3: Web3, addresses: Sequence[str]) -> list[int]:
    return [int(w3.eth.get_balance(Web3.to_checksum_address(a))) for a in addresses]
