"""Withdraw / cancel on both escrows: every window edge, who may call, and where the funds go.

Each test runs against a source escrow (ERC-20), a native destination escrow and an ERC-20 destination
escrow; the rules live in EscrowBase and must hold for all three.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from swap_devnet.evm import DevAccount, EvmDeployment, send_transaction
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD
from web3.types import TxReceipt

from tests.integration.contracts.helpers import (
    AMOUNT,
    SAFETY_DEPOSIT,
    TIMELOCKS,
    assert_reverts,
    at,
    block_time,
    create_dst,
    create_src,
    dst_params,
    gas_cost,
    make_order,
)

pytestmark = pytest.mark.integration

KINDS = ["src", "dst-native", "dst-erc20"]


@dataclass
class Locked:
    contract: Contract
    token: Contract | None  # None: native ETH
    id: bytes
    secret: bytes
    locked_at: int
    depositor: DevAccount
    beneficiary: DevAccount
    operator: DevAccount

    def opens(self, window: str) -> int:
        return self.locked_at + int(TIMELOCKS[window])  # type: ignore[literal-required]

    def withdraw(self, secret: bytes | None = None) -> ContractFunction:
        return self.contract.functions.withdraw(self.id, self.secret if secret is None else secret)

    def public_withdraw(self, secret: bytes | None = None) -> ContractFunction:
        return self.contract.functions.publicWithdraw(self.id, self.secret if secret is None else secret)

    def cancel(self) -> ContractFunction:
        return self.contract.functions.cancel(self.id)

    def public_cancel(self) -> ContractFunction:
        return self.contract.functions.publicCancel(self.id)

    def state(self) -> int:
        return int(self.contract.functions.getEscrow(self.id).call()[-1])


@pytest.fixture(params=KINDS)
def locked(
    request: pytest.FixtureRequest, evm: EvmDeployment, w3: Web3, src: Contract, dst: Contract, token: Contract
) -> Locked:
    if request.param == "src":
        made = make_order(evm, w3)
        escrow_id, receipt = create_src(evm, src, made)
        return Locked(
            src, token, escrow_id, made.secret, block_time(w3, receipt), evm.maker, evm.resolver, evm.resolver
        )
    native = request.param == "dst-native"
    params, secret = dst_params(evm, token=None if native else evm.token)
    escrow_id, receipt = create_dst(evm, dst, params)
    return Locked(
        dst,
        None if native else token,
        escrow_id,
        secret,
        block_time(w3, receipt),
        evm.resolver,
        evm.receiver,
        evm.resolver,
    )


Send = Callable[[DevAccount, ContractFunction], TxReceipt]


@pytest.fixture
def send(w3: Web3) -> Send:
    def _send(account: DevAccount, call: ContractFunction) -> TxReceipt:
        return send_transaction(w3, account.private_key, call)

    return _send


def reverts(locked: Locked, call: ContractFunction, account: DevAccount, error: str, *args: object) -> None:
    assert_reverts(locked.contract, call, account.private_key, error, *args)


# -- windows ---------------------------------------------------------------------------------------------------


def test_withdraw_opens_at_the_withdrawal_offset(w3: Web3, locked: Locked, send: Send) -> None:
    opens = locked.opens("withdrawal")
    at(w3, opens - 1)
    reverts(locked, locked.withdraw(), locked.operator, "TooEarly", opens)
    at(w3, opens)
    send(locked.operator, locked.withdraw())
    assert locked.state() == 2


def test_withdraw_closes_at_the_cancellation_offset(w3: Web3, locked: Locked, send: Send) -> None:
    closes = locked.opens("cancellation")
    at(w3, closes)
    reverts(locked, locked.withdraw(), locked.operator, "TooLate", closes)
    at(w3, closes - 1)
    send(locked.operator, locked.withdraw())
    assert locked.state() == 2


def test_public_withdraw_opens_at_its_offset(w3: Web3, locked: Locked, send: Send, stranger: DevAccount) -> None:
    opens = locked.opens("publicWithdrawal")
    at(w3, opens - 1)
    reverts(locked, locked.public_withdraw(), stranger, "TooEarly", opens)
    at(w3, opens)
    send(stranger, locked.public_withdraw())
    assert locked.state() == 2


def test_public_withdraw_closes_at_the_cancellation_offset(
    w3: Web3, locked: Locked, send: Send, stranger: DevAccount
) -> None:
    closes = locked.opens("cancellation")
    at(w3, closes)
    reverts(locked, locked.public_withdraw(), stranger, "TooLate", closes)
    at(w3, closes - 1)
    send(stranger, locked.public_withdraw())


def test_cancel_opens_at_the_cancellation_offset(w3: Web3, locked: Locked, send: Send) -> None:
    opens = locked.opens("cancellation")
    at(w3, opens - 1)
    reverts(locked, locked.cancel(), locked.operator, "TooEarly", opens)
    at(w3, opens)
    send(locked.operator, locked.cancel())
    assert locked.state() == 3


def test_public_cancel_opens_at_its_offset(w3: Web3, locked: Locked, send: Send, stranger: DevAccount) -> None:
    opens = locked.opens("publicCancellation")
    at(w3, opens - 1)
    reverts(locked, locked.public_cancel(), stranger, "TooEarly", opens)
    at(w3, opens)
    send(stranger, locked.public_cancel())
    assert locked.state() == 3


def test_operator_may_cancel_long_after_public_cancellation(w3: Web3, locked: Locked, send: Send) -> None:
    at(w3, locked.opens("publicCancellation") + 86_400)
    send(locked.operator, locked.cancel())
    assert locked.state() == 3


# -- callers and secrets ---------------------------------------------------------------------------------------


def test_only_the_operator_withdraws_privately(w3: Web3, locked: Locked, stranger: DevAccount) -> None:
    at(w3, locked.opens("withdrawal"))
    reverts(locked, locked.withdraw(), stranger, "NotOperator")
    if locked.depositor != locked.operator:
        reverts(locked, locked.withdraw(), locked.depositor, "NotOperator")


def test_only_the_operator_cancels_privately(w3: Web3, locked: Locked, stranger: DevAccount) -> None:
    at(w3, locked.opens("cancellation"))
    reverts(locked, locked.cancel(), stranger, "NotOperator")


@pytest.mark.parametrize("public", [False, True], ids=["withdraw", "publicWithdraw"])
def test_wrong_secret_is_rejected(w3: Web3, locked: Locked, stranger: DevAccount, public: bool) -> None:
    at(w3, locked.opens("publicWithdrawal"))
    wrong = bytes(32)
    if public:
        reverts(locked, locked.public_withdraw(wrong), stranger, "InvalidSecret")
    else:
        reverts(locked, locked.withdraw(wrong), locked.operator, "InvalidSecret")
    assert locked.state() == 1


def test_unknown_escrow_is_not_active(w3: Web3, locked: Locked, stranger: DevAccount) -> None:
    unknown = b"\x99" * 32
    functions = locked.contract.functions
    at(w3, locked.opens("publicCancellation"))
    for call in (
        functions.withdraw(unknown, locked.secret),
        functions.publicWithdraw(unknown, locked.secret),
        functions.cancel(unknown),
        functions.publicCancel(unknown),
    ):
        reverts(locked, call, locked.operator, "NotActive", unknown)


# -- terminal states -------------------------------------------------------------------------------------------


def test_withdrawn_escrow_is_final(w3: Web3, locked: Locked, send: Send, stranger: DevAccount) -> None:
    at(w3, locked.opens("withdrawal"))
    send(locked.operator, locked.withdraw())
    reverts(locked, locked.withdraw(), locked.operator, "NotActive", locked.id)
    at(w3, locked.opens("publicCancellation"))
    reverts(locked, locked.public_withdraw(), stranger, "NotActive", locked.id)
    reverts(locked, locked.cancel(), locked.operator, "NotActive", locked.id)
    reverts(locked, locked.public_cancel(), stranger, "NotActive", locked.id)


def test_cancelled_escrow_is_final(w3: Web3, locked: Locked, send: Send, stranger: DevAccount) -> None:
    at(w3, locked.opens("cancellation"))
    send(locked.operator, locked.cancel())
    reverts(locked, locked.cancel(), locked.operator, "NotActive", locked.id)
    reverts(locked, locked.withdraw(), locked.operator, "NotActive", locked.id)
    at(w3, locked.opens("publicCancellation"))
    reverts(locked, locked.public_cancel(), stranger, "NotActive", locked.id)


# -- where the funds go ----------------------------------------------------------------------------------------


class Balances:
    """ETH and locked-asset balances of a set of accounts, to compare before and after one transaction."""

    def __init__(self, w3: Web3, locked: Locked, addresses: list[str]) -> None:
        self.w3, self.locked, self.addresses = w3, locked, addresses
        self.before = self._read()

    def _asset(self, address: str) -> int:
        token = self.locked.token
        if token is None:
            return int(self.w3.eth.get_balance(Web3.to_checksum_address(address)))
        return int(token.functions.balanceOf(address).call())

    def _read(self) -> dict[str, tuple[int, int]]:
        return {a: (int(self.w3.eth.get_balance(Web3.to_checksum_address(a))), self._asset(a)) for a in self.addresses}

    def assert_paid(self, receipt: TxReceipt, caller: str, recipient: str) -> None:
        """`recipient` got the amount, `caller` the safety deposit (minus gas); the escrow holds neither."""
        eth: dict[str, int] = dict.fromkeys(self.addresses, 0)
        asset: dict[str, int] = dict.fromkeys(self.addresses, 0)
        escrow = self.locked.contract.address
        eth[caller] += SAFETY_DEPOSIT - gas_cost(receipt)
        eth[escrow] -= SAFETY_DEPOSIT
        asset[recipient] += AMOUNT
        asset[escrow] -= AMOUNT
        if self.locked.token is None:  # the asset is ETH itself: fold both ledgers into one
            for a in self.addresses:
                eth[a] += asset[a]
                asset[a] = eth[a]
        after = self._read()
        for a in self.addresses:
            assert after[a][0] - self.before[a][0] == eth[a], f"ETH of {a}"
            assert after[a][1] - self.before[a][1] == asset[a], f"asset of {a}"


def _accounts(locked: Locked, stranger: DevAccount) -> list[str]:
    people = {locked.depositor.address, locked.beneficiary.address, locked.operator.address, stranger.address}
    return [*sorted(people), locked.contract.address]


def test_withdraw_pays_beneficiary_and_operator(w3: Web3, locked: Locked, send: Send, stranger: DevAccount) -> None:
    balances = Balances(w3, locked, _accounts(locked, stranger))
    at(w3, locked.opens("withdrawal"))
    receipt = send(locked.operator, locked.withdraw())
    balances.assert_paid(receipt, caller=locked.operator.address, recipient=locked.beneficiary.address)
    (event,) = locked.contract.events.EscrowWithdrawn().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["id"] == locked.id
    assert event["args"]["secret"] == locked.secret
    assert event["args"]["caller"] == locked.operator.address


def test_public_withdraw_pays_the_caller_the_deposit(
    w3: Web3, locked: Locked, send: Send, stranger: DevAccount
) -> None:
    balances = Balances(w3, locked, _accounts(locked, stranger))
    at(w3, locked.opens("publicWithdrawal"))
    receipt = send(stranger, locked.public_withdraw())
    balances.assert_paid(receipt, caller=stranger.address, recipient=locked.beneficiary.address)
    (event,) = locked.contract.events.EscrowWithdrawn().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["caller"] == stranger.address


def test_cancel_refunds_the_depositor(w3: Web3, locked: Locked, send: Send, stranger: DevAccount) -> None:
    balances = Balances(w3, locked, _accounts(locked, stranger))
    at(w3, locked.opens("cancellation"))
    receipt = send(locked.operator, locked.cancel())
    balances.assert_paid(receipt, caller=locked.operator.address, recipient=locked.depositor.address)
    (event,) = locked.contract.events.EscrowCancelled().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["id"] == locked.id
    assert event["args"]["caller"] == locked.operator.address


def test_public_cancel_pays_the_caller_the_deposit(w3: Web3, locked: Locked, send: Send, stranger: DevAccount) -> None:
    balances = Balances(w3, locked, _accounts(locked, stranger))
    at(w3, locked.opens("publicCancellation"))
    receipt = send(stranger, locked.public_cancel())
    balances.assert_paid(receipt, caller=stranger.address, recipient=locked.depositor.address)
    (event,) = locked.contract.events.EscrowCancelled().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["caller"] == stranger.address
