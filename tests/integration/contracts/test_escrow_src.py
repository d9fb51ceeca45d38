"""EscrowSrc: creating a source escrow from the maker's signed EIP-712 order."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from swap_devnet.evm import (
    DevAccount,
    EvmDeployment,
    Timelocks,
    order_digest,
    order_type_string,
    order_typed_data,
    send_transaction,
)
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD

from tests.integration.contracts.helpers import (
    AMOUNT,
    SAFETY_DEPOSIT,
    TIMELOCKS,
    SrcOrder,
    assert_reverts,
    at,
    block_time,
    create_src,
    eth_balances,
    make_order,
)

pytestmark = pytest.mark.integration

ECRECOVER = Web3.to_checksum_address("0x" + "00" * 19 + "01")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _create(src: Contract, made: SrcOrder, *, signature: bytes | None = None) -> ContractFunction:
    return src.functions.createSrcEscrow(made.args, made.signature if signature is None else signature)


def test_order_type_string_is_the_documented_one() -> None:
    assert order_type_string() == (
        "Order(address maker,address resolver,address token,uint256 amount,bytes32 hashlock,"
        "Timelocks timelocks,uint256 safetyDeposit,bytes32 dstTermsHash,uint256 nonce,uint256 deadline)"
        "Timelocks(uint32 withdrawal,uint32 publicWithdrawal,uint32 cancellation,uint32 publicCancellation)"
    )


def test_domain_separator_matches_eip712(evm: EvmDeployment, w3: Web3, src: Contract) -> None:
    made = make_order(evm, w3)
    signable = encode_typed_data(full_message=order_typed_data(evm.chain_id, evm.escrow_src, made.order))
    # SignableMessage.header is the domain separator of EIP-712 typed data.
    assert src.functions.DOMAIN_SEPARATOR().call() == signable.header


def test_hash_order_is_the_eip712_digest(evm: EvmDeployment, w3: Web3, src: Contract) -> None:
    made = make_order(evm, w3, nonce=7, amount=123_456_789)
    digest = order_digest(evm.chain_id, evm.escrow_src, made.order)
    assert src.functions.hashOrder(made.args).call() == digest
    signable = encode_typed_data(full_message=order_typed_data(evm.chain_id, evm.escrow_src, made.order))
    signed = Account.sign_message(signable, evm.maker.private_key)
    assert bytes(signed.message_hash) == digest
    assert Account.recover_message(signable, signature=made.signature) == evm.maker.address


def test_create_locks_the_makers_tokens(evm: EvmDeployment, w3: Web3, src: Contract, token: Contract) -> None:
    made = make_order(evm, w3)
    maker_before = token.functions.balanceOf(evm.maker.address).call()
    resolver_eth_before = w3.eth.get_balance(evm.resolver.address)

    escrow_id, receipt = create_src(evm, src, made)

    locked_at = block_time(w3, receipt)
    assert escrow_id == src.functions.hashOrder(made.args).call()
    assert escrow_id == order_digest(evm.chain_id, evm.escrow_src, made.order)
    assert token.functions.balanceOf(evm.maker.address).call() == maker_before - AMOUNT
    assert token.functions.balanceOf(evm.escrow_src).call() == AMOUNT
    assert w3.eth.get_balance(evm.escrow_src) == SAFETY_DEPOSIT
    gas = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert w3.eth.get_balance(evm.resolver.address) == resolver_eth_before - SAFETY_DEPOSIT - gas
    assert src.functions.nonceUsed(evm.maker.address, 1).call() is True
    assert src.functions.nonceUsed(evm.maker.address, 2).call() is False

    (event,) = src.events.EscrowCreated().process_receipt(receipt, errors=DISCARD)
    args = event["args"]
    assert args["depositor"] == evm.maker.address
    assert args["beneficiary"] == evm.resolver.address
    assert args["operator"] == evm.resolver.address
    assert args["token"] == evm.token
    assert args["amount"] == AMOUNT
    assert args["safetyDeposit"] == SAFETY_DEPOSIT
    assert args["hashlock"] == made.order["hashlock"]
    assert tuple(args["timelocks"].values()) == tuple(TIMELOCKS.values())
    assert args["lockedAt"] == locked_at

    escrow = src.functions.getEscrow(escrow_id).call()
    assert escrow == (
        evm.maker.address,
        evm.resolver.address,
        evm.resolver.address,
        evm.token,
        AMOUNT,
        SAFETY_DEPOSIT,
        made.order["hashlock"],
        tuple(TIMELOCKS.values()),
        locked_at,
        1,
    )


def test_unknown_escrow_is_absent(src: Contract) -> None:
    escrow = src.functions.getEscrow(b"\x42" * 32).call()
    assert escrow[-1] == 0
    assert escrow[4] == 0
    assert int(escrow[0], 16) == 0


def test_replayed_order_is_rejected(evm: EvmDeployment, w3: Web3, src: Contract) -> None:
    made = make_order(evm, w3)
    create_src(evm, src, made)
    assert_reverts(src, _create(src, made), evm.resolver.private_key, "NonceUsed", value=SAFETY_DEPOSIT)


def test_order_is_valid_until_its_deadline_inclusive(evm: EvmDeployment, w3: Web3, src: Contract) -> None:
    deadline = w3.eth.get_block("latest")["timestamp"] + 100
    made = make_order(evm, w3, deadline=deadline)
    at(w3, deadline + 1)
    assert_reverts(src, _create(src, made), evm.resolver.private_key, "OrderExpired", value=SAFETY_DEPOSIT)
    at(w3, deadline)
    create_src(evm, src, made)


@pytest.mark.parametrize("submitter", ["maker", "receiver"])
def test_only_the_named_resolver_may_submit(evm: EvmDeployment, w3: Web3, src: Contract, submitter: str) -> None:
    made = make_order(evm, w3)
    account: DevAccount = getattr(evm, submitter)
    assert_reverts(src, _create(src, made), account.private_key, "WrongResolver", value=SAFETY_DEPOSIT)


def test_signature_by_another_key_is_rejected(evm: EvmDeployment, w3: Web3, src: Contract) -> None:
    made = make_order(evm, w3, sign_with=evm.receiver.private_key)
    assert_reverts(src, _create(src, made), evm.resolver.private_key, "InvalidSignature", value=SAFETY_DEPOSIT)


def test_tampered_order_is_rejected(evm: EvmDeployment, w3: Web3, src: Contract) -> None:
    made = make_order(evm, w3)
    made.order["amount"] = AMOUNT * 2
    assert_reverts(src, _create(src, made), evm.resolver.private_key, "InvalidSignature", value=SAFETY_DEPOSIT)


def test_high_s_signature_is_rejected(evm: EvmDeployment, w3: Web3, src: Contract) -> None:
    made = make_order(evm, w3)
    r, s, v = made.signature[:32], int.from_bytes(made.signature[32:64]), made.signature[64]
    # (r, n - s) with the other parity recovers the same signer: the malleable twin of a valid signature.
    twin = r + (SECP256K1_N - s).to_bytes(32) + bytes([55 - v])
    # The twin passes the bare ecrecover precompile, so only the contract's low-s rule stops it.
    digest = order_digest(evm.chain_id, evm.escrow_src, made.order)
    recovered = w3.eth.call({"to": ECRECOVER, "data": digest + (55 - v).to_bytes(32) + twin[:64]})
    assert Web3.to_checksum_address(recovered[12:]) == evm.maker.address
    assert_reverts(
        src,
        _create(src, made, signature=twin),
        evm.resolver.private_key,
        "InvalidSignature",
        value=SAFETY_DEPOSIT,
    )


@pytest.mark.parametrize("v", [0, 1, 29, 255])
def test_bad_v_is_rejected(evm: EvmDeployment, w3: Web3, src: Contract, v: int) -> None:
    made = make_order(evm, w3)
    signature = made.signature[:64] + bytes([v])
    assert_reverts(
        src,
        _create(src, made, signature=signature),
        evm.resolver.private_key,
        "InvalidSignature",
        value=SAFETY_DEPOSIT,
    )


@pytest.mark.parametrize("length", [0, 64, 66])
def test_wrong_signature_length_is_rejected(evm: EvmDeployment, w3: Web3, src: Contract, length: int) -> None:
    made = make_order(evm, w3)
    signature = (made.signature + b"\x00")[:length]
    assert_reverts(
        src,
        _create(src, made, signature=signature),
        evm.resolver.private_key,
        "InvalidSignature",
        value=SAFETY_DEPOSIT,
    )


@pytest.mark.parametrize("value", [0, SAFETY_DEPOSIT - 1, SAFETY_DEPOSIT + 1])
def test_value_must_equal_the_safety_deposit(evm: EvmDeployment, w3: Web3, src: Contract, value: int) -> None:
    made = make_order(evm, w3)
    assert_reverts(src, _create(src, made), evm.resolver.private_key, "InvalidDeposit", value=value)


def test_zero_safety_deposit_is_allowed(evm: EvmDeployment, w3: Web3, src: Contract) -> None:
    made = make_order(evm, w3, safetyDeposit=0)
    send_transaction(w3, evm.resolver.private_key, _create(src, made))


@pytest.mark.parametrize(
    "timelocks",
    [
        Timelocks(withdrawal=301, publicWithdrawal=300, cancellation=900, publicCancellation=1200),
        Timelocks(withdrawal=60, publicWithdrawal=900, cancellation=900, publicCancellation=1200),
        Timelocks(withdrawal=60, publicWithdrawal=300, cancellation=1201, publicCancellation=1200),
        Timelocks(withdrawal=0, publicWithdrawal=0, cancellation=0, publicCancellation=0),
    ],
    ids=["withdrawal>public", "public>=cancellation", "cancellation>publicCancellation", "all-zero"],
)
def test_bad_timelocks_are_rejected(evm: EvmDeployment, w3: Web3, src: Contract, timelocks: Timelocks) -> None:
    made = make_order(evm, w3, timelocks=timelocks)
    assert_reverts(src, _create(src, made), evm.resolver.private_key, "InvalidTimelocks", value=SAFETY_DEPOSIT)


def test_timelock_bounds_may_touch(evm: EvmDeployment, w3: Web3, src: Contract) -> None:
    timelocks = Timelocks(withdrawal=0, publicWithdrawal=0, cancellation=1, publicCancellation=1)
    create_src(evm, src, make_order(evm, w3, timelocks=timelocks))


def test_zero_amount_is_rejected(evm: EvmDeployment, w3: Web3, src: Contract) -> None:
    made = make_order(evm, w3, amount=0)
    assert_reverts(src, _create(src, made), evm.resolver.private_key, "InvalidAmount", value=SAFETY_DEPOSIT)


def test_native_token_is_rejected(evm: EvmDeployment, w3: Web3, src: Contract) -> None:
    made = make_order(evm, w3, token="0x" + "00" * 20)
    assert_reverts(src, _create(src, made), evm.resolver.private_key, "InvalidToken", value=SAFETY_DEPOSIT)


def test_missing_allowance_fails_the_transfer(evm: EvmDeployment, w3: Web3, src: Contract, token: Contract) -> None:
    send_transaction(w3, evm.maker.private_key, token.functions.approve(evm.escrow_src, AMOUNT - 1))
    made = make_order(evm, w3)
    assert_reverts(src, _create(src, made), evm.resolver.private_key, "TransferFailed", value=SAFETY_DEPOSIT)
    assert src.functions.nonceUsed(evm.maker.address, 1).call() is False


def test_insufficient_balance_fails_the_transfer(evm: EvmDeployment, w3: Web3, src: Contract, token: Contract) -> None:
    balance = token.functions.balanceOf(evm.maker.address).call()
    made = make_order(evm, w3, amount=balance + 1)
    assert_reverts(src, _create(src, made), evm.resolver.private_key, "TransferFailed", value=SAFETY_DEPOSIT)


def test_escrow_holds_deposits_of_several_orders(evm: EvmDeployment, w3: Web3, src: Contract) -> None:
    first, _ = create_src(evm, src, make_order(evm, w3, nonce=1))
    second, _ = create_src(evm, src, make_order(evm, w3, nonce=2))
    assert first != second
    assert eth_balances(w3, [evm.escrow_src]) == [2 * SAFETY_DEPOSIT]
