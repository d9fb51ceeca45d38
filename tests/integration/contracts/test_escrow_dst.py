"""EscrowDst: the resolver locking native ETH or ERC-20 tokens for the maker's receiving address."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from swap_devnet.evm import EvmDeployment, Timelocks, send_transaction
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from tests.integration.contracts.helpers import (
    AMOUNT,
    SAFETY_DEPOSIT,
    TIMELOCKS,
    assert_reverts,
    block_time,
    create_dst,
    dst_params,
    dst_value,
    gas_cost,
)

pytestmark = pytest.mark.integration

ZERO_ADDRESS = "0x" + "00" * 20


def test_dst_escrow_id_is_keccak_of_the_abi_encoded_params(evm: EvmDeployment, dst: Contract) -> None:
    params, _ = dst_params(evm, token=evm.token, salt=99)
    tl = params["timelocks"]
    encoded = encode(
        ["address", "(address,address,uint256,bytes32,(uint32,uint32,uint32,uint32),uint256,uint256)"],
        [
            evm.resolver.address,
            (
                params["beneficiary"],
                params["token"],
                params["amount"],
                params["hashlock"],
                (tl["withdrawal"], tl["publicWithdrawal"], tl["cancellation"], tl["publicCancellation"]),
                params["safetyDeposit"],
                params["salt"],
            ),
        ],
    )
    assert dst.functions.dstEscrowId(evm.resolver.address, params).call() == Web3.keccak(encoded)


def test_native_lock_holds_amount_and_deposit(evm: EvmDeployment, w3: Web3, dst: Contract) -> None:
    params, _ = dst_params(evm)
    resolver_before = w3.eth.get_balance(evm.resolver.address)

    escrow_id, receipt = create_dst(evm, dst, params)

    assert escrow_id == dst.functions.dstEscrowId(evm.resolver.address, params).call()
    assert w3.eth.get_balance(evm.escrow_dst) == AMOUNT + SAFETY_DEPOSIT
    assert w3.eth.get_balance(evm.resolver.address) == (resolver_before - AMOUNT - SAFETY_DEPOSIT - gas_cost(receipt))
    locked_at = block_time(w3, receipt)
    (event,) = dst.events.EscrowCreated().process_receipt(receipt, errors=DISCARD)
    args = event["args"]
    assert (args["depositor"], args["beneficiary"], args["operator"]) == (
        evm.resolver.address,
        evm.receiver.address,
        evm.resolver.address,
    )
    assert int(args["token"], 16) == 0
    assert (args["amount"], args["safetyDeposit"], args["hashlock"]) == (
        AMOUNT,
        SAFETY_DEPOSIT,
        params["hashlock"],
    )
    assert tuple(args["timelocks"].values()) == tuple(TIMELOCKS.values())
    assert args["lockedAt"] == locked_at
    assert dst.functions.getEscrow(escrow_id).call() == (
        evm.resolver.address,
        evm.receiver.address,
        evm.resolver.address,
        ZERO_ADDRESS,
        AMOUNT,
        SAFETY_DEPOSIT,
        params["hashlock"],
        tuple(TIMELOCKS.values()),
        locked_at,
        1,
    )


def test_erc20_lock_pulls_the_resolvers_tokens(evm: EvmDeployment, w3: Web3, dst: Contract, token: Contract) -> None:
    params, _ = dst_params(evm, token=evm.token)
    tokens_before = token.functions.balanceOf(evm.resolver.address).call()
    eth_before = w3.eth.get_balance(evm.resolver.address)

    escrow_id, receipt = create_dst(evm, dst, params)

    assert token.functions.balanceOf(evm.resolver.address).call() == tokens_before - AMOUNT
    assert token.functions.balanceOf(evm.escrow_dst).call() == AMOUNT
    assert w3.eth.get_balance(evm.escrow_dst) == SAFETY_DEPOSIT
    assert w3.eth.get_balance(evm.resolver.address) == eth_before - SAFETY_DEPOSIT - gas_cost(receipt)
    escrow = dst.functions.getEscrow(escrow_id).call()
    assert escrow[3] == evm.token
    assert escrow[-1] == 1


def test_any_account_may_lock_as_its_own_operator(evm: EvmDeployment, w3: Web3, dst: Contract) -> None:
    params, _ = dst_params(evm)
    receipt = send_transaction(
        w3, evm.maker.private_key, dst.functions.createDstEscrow(params), value=dst_value(params)
    )
    (event,) = dst.events.EscrowCreated().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["depositor"] == evm.maker.address
    assert event["args"]["operator"] == evm.maker.address
    assert event["args"]["id"] == dst.functions.dstEscrowId(evm.maker.address, params).call()


def test_duplicate_id_is_rejected_and_salt_separates(evm: EvmDeployment, dst: Contract) -> None:
    params, secret = dst_params(evm)
    escrow_id, _ = create_dst(evm, dst, params)
    assert_reverts(
        dst,
        dst.functions.createDstEscrow(params),
        evm.resolver.private_key,
        "EscrowExists",
        escrow_id,
        value=dst_value(params),
    )
    salted, _ = dst_params(evm, secret=secret, salt=1)
    other_id, _ = create_dst(evm, dst, salted)
    assert other_id != escrow_id


@pytest.mark.parametrize(
    ("native", "delta"),
    [(True, -1), (True, 1), (True, -SAFETY_DEPOSIT), (False, 1), (False, AMOUNT)],
    ids=["native-short", "native-over", "native-without-deposit", "erc20-over", "erc20-with-amount"],
)
def test_value_must_match(evm: EvmDeployment, dst: Contract, native: bool, delta: int) -> None:
    params, _ = dst_params(evm, token=None if native else evm.token)
    assert_reverts(
        dst,
        dst.functions.createDstEscrow(params),
        evm.resolver.private_key,
        "InvalidDeposit",
        value=dst_value(params) + delta,
    )


def test_erc20_lock_without_deposit_value_is_rejected(evm: EvmDeployment, dst: Contract) -> None:
    params, _ = dst_params(evm, token=evm.token)
    assert_reverts(dst, dst.functions.createDstEscrow(params), evm.resolver.private_key, "InvalidDeposit")


def test_zero_beneficiary_is_rejected(evm: EvmDeployment, dst: Contract) -> None:
    params, _ = dst_params(evm, beneficiary=ZERO_ADDRESS)
    assert_reverts(
        dst,
        dst.functions.createDstEscrow(params),
        evm.resolver.private_key,
        "InvalidBeneficiary",
        value=dst_value(params),
    )


@pytest.mark.parametrize("native", [True, False], ids=["native", "erc20"])
def test_zero_amount_is_rejected(evm: EvmDeployment, dst: Contract, native: bool) -> None:
    params, _ = dst_params(evm, token=None if native else evm.token, amount=0)
    assert_reverts(
        dst,
        dst.functions.createDstEscrow(params),
        evm.resolver.private_key,
        "InvalidAmount",
        value=dst_value(params),
    )


@pytest.mark.parametrize(
    "timelocks",
    [
        Timelocks(withdrawal=301, publicWithdrawal=300, cancellation=900, publicCancellation=1200),
        Timelocks(withdrawal=60, publicWithdrawal=900, cancellation=900, publicCancellation=1200),
        Timelocks(withdrawal=60, publicWithdrawal=300, cancellation=1201, publicCancellation=1200),
    ],
    ids=["withdrawal>public", "public>=cancellation", "cancellation>publicCancellation"],
)
def test_bad_timelocks_are_rejected(evm: EvmDeployment, dst: Contract, timelocks: Timelocks) -> None:
    params, _ = dst_params(evm, timelocks=timelocks)
    assert_reverts(
        dst,
        dst.functions.createDstEscrow(params),
        evm.resolver.private_key,
        "InvalidTimelocks",
        value=dst_value(params),
    )


def test_erc20_lock_without_allowance_fails_the_transfer(
    evm: EvmDeployment, w3: Web3, dst: Contract, token: Contract
) -> None:
    send_transaction(w3, evm.resolver.private_key, token.functions.approve(evm.escrow_dst, 0))
    params, _ = dst_params(evm, token=evm.token)
    assert_reverts(
        dst,
        dst.functions.createDstEscrow(params),
        evm.resolver.private_key,
        "TransferFailed",
        value=dst_value(params),
    )


def test_lock_on_a_token_without_code_is_rejected(evm: EvmDeployment, dst: Contract) -> None:
    params, _ = dst_params(evm, token=evm.receiver.address)
    assert_reverts(
        dst,
        dst.functions.createDstEscrow(params),
        evm.resolver.private_key,
        "InvalidToken",
        value=dst_value(params),
    )
