"""The swap's NEAR hash-time-locked contract, the counterpart of the BASE EscrowSrc/EscrowDst contracts.

Funds (native NEAR or a NEP-141 token) are locked for a beneficiary against the SHA-256 hash of a secret.
The operator may withdraw with the secret from `withdrawal`, anyone from `public_withdrawal`, until
`cancellation`; after that the funds go back to the depositor, on the operator's call from `cancellation`
and anyone's from `public_cancellation`. Every window is an offset in nanoseconds from `locked_at`, the
timestamp of the block that created the lock. The caller who completes a withdrawal or refund earns the
safety deposit. docs/near-htlc.md is the full interface.

A payout is a promise (a Transfer, or `ft_transfer` on the token) followed by the `on_payout` callback:
the lock turns withdrawn/refunded at once, so no second withdrawal or refund can race the payout, and the
callback either confirms it (event, safety deposit to the caller) or, when the payout failed, puts the lock
back to active with the funds still in it.
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import insort
from typing import Any

from swap_devnet.near.contracts.base import (
    MAX_U64,
    Args,
    Contract,
    ContractPanic,
    PromiseRef,
    call,
    parse_uint,
    register,
    view,
)
from swap_devnet.near.fees import TGAS
from swap_devnet.near.ids import is_valid_account_id

HTLC_STANDARD = "swap_htlc"
HTLC_VERSION = "1.0.0"
NATIVE = "native"
GAS_FOR_FT_TRANSFER = 10 * TGAS
GAS_FOR_ON_PAYOUT = 20 * TGAS
# Enough for the payout promise, its callback and the callback's safety-deposit transfer.
MIN_GAS_FOR_PAYOUT = 50 * TGAS
MAX_NONCE_LEN = 64
DEFAULT_PAGE = 100
MAX_PAGE = 1000

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_LOCK = b"lock:"
_ACTIVE = b"active"
_EVENT = b"event:"
_EVENTS_COUNT = b"events_count"
_LOCKS_COUNT = b"locks_count"
_NATIVE_BALANCE = b"native:"
_OWNER = b"owner"
_TOKENS = b"token_allowlist"

TIMELOCK_FIELDS = ("withdrawal", "public_withdrawal", "cancellation", "public_cancellation")


def lock_id_for(depositor: str, nonce: str) -> str:
    return hashlib.sha256(f"{depositor}:{nonce}".encode()).hexdigest()


@register
class SwapHtlc(Contract):
    code_id = "swap_htlc"

    # Storage ------------------------------------------------------------------------------------------------

    def _lock(self, lock_id: str) -> dict[str, Any] | None:
        record: dict[str, Any] | None = self.read_json(_LOCK + lock_id.encode())
        return record

    def _active_lock(self, lock_id: str) -> dict[str, Any]:
        lock = self._lock(lock_id)
        if lock is None:
            raise ContractPanic("lock not found")
        if lock["state"] != "active":
            raise ContractPanic("lock is not active")
        return lock

    def _save(self, lock: dict[str, Any]) -> None:
        self.write_json(_LOCK + lock["lock_id"].encode(), lock)

    def _active_entries(self) -> list[list[Any]]:
        """[creation sequence, lock id] of the active locks, in creation order."""
        entries: list[list[Any]] | None = self.read_json(_ACTIVE)
        return entries or []

    def _set_active(self, lock: dict[str, Any], active: bool) -> None:
        entries = [entry for entry in self._active_entries() if entry[1] != lock["lock_id"]]
        if active:
            insort(entries, [lock["seq"], lock["lock_id"]])
        self.write_json(_ACTIVE, entries)

    def _native_balance(self, account_id: str) -> int:
        raw = self.ctx.storage_read(_NATIVE_BALANCE + account_id.encode())
        return 0 if raw is None else int(raw)

    def _set_native_balance(self, account_id: str, amount: int) -> None:
        key = _NATIVE_BALANCE + account_id.encode()
        if amount:
            self.ctx.storage_write(key, str(amount).encode())
        else:
            self.ctx.storage_remove(key)

    def _count(self, key: bytes) -> int:
        raw = self.ctx.storage_read(key)
        return 0 if raw is None else int(raw)

    def _owner(self) -> str:
        owner: str | None = self.read_json(_OWNER)
        return owner or self.ctx.current_account_id

    def _record_event(self, event: str, data: dict[str, Any]) -> None:
        index = self._count(_EVENTS_COUNT)
        self.write_json(
            _EVENT + f"{index:012d}".encode(),
            {
                "index": index,
                "event": event,
                "data": data,
                "block_height": self.ctx.block_height,
                "block_timestamp": str(self.ctx.block_timestamp),
                "receipt_id": self.ctx.receipt_id,
            },
        )
        self.ctx.storage_write(_EVENTS_COUNT, str(index + 1).encode())
        self.emit_event(HTLC_STANDARD, HTLC_VERSION, event, [data])

    # Creating locks -----------------------------------------------------------------------------------------

    def _create(self, *, depositor: str, token: str, amount: int, safety_deposit: int, terms: Args) -> dict[str, Any]:
        nonce = terms.string("nonce")
        if not 1 <= len(nonce) <= MAX_NONCE_LEN:
            raise ContractPanic("invalid nonce: 1 to 64 characters")
        beneficiary = terms.string("beneficiary")
        if not is_valid_account_id(beneficiary):
            raise ContractPanic("invalid beneficiary")
        operator = terms.optional_string("operator") or depositor
        if not is_valid_account_id(operator):
            raise ContractPanic("invalid operator")
        hashlock = terms.string("hashlock")
        if not _HEX64.fullmatch(hashlock):
            raise ContractPanic("invalid hashlock: 64 hex characters")
        timelocks = _parse_timelocks(terms)
        if amount <= 0:
            raise ContractPanic("amount must be positive")
        lock_id = lock_id_for(depositor, nonce)
        if self._lock(lock_id) is not None:
            raise ContractPanic("lock already exists")
        seq = self._count(_LOCKS_COUNT)
        self.ctx.storage_write(_LOCKS_COUNT, str(seq + 1).encode())
        lock: dict[str, Any] = {
            "lock_id": lock_id,
            "depositor": depositor,
            "operator": operator,
            "beneficiary": beneficiary,
            "token": token,
            "amount": str(amount),
            "safety_deposit": str(safety_deposit),
            "hashlock": hashlock.lower(),
            "timelocks": {name: str(timelocks[name]) for name in TIMELOCK_FIELDS},
            "locked_at": str(self.ctx.block_timestamp),
            "locked_height": self.ctx.block_height,
            "state": "active",
            "secret": None,
            "seq": seq,
        }
        self._save(lock)
        self._set_active(lock, active=True)
        self._record_event("lock_created", _lock_view(lock))
        return lock

    @call(payable=True)
    def lock_native(self, args: Args) -> str:
        """Lock the attached deposit minus `safety_deposit` for `beneficiary`; returns the lock id."""
        safety_deposit = _safety_deposit(args)
        deposit = self.ctx.attached_deposit
        if deposit <= safety_deposit:
            raise ContractPanic("amount must be positive")
        lock = self._create(
            depositor=self.ctx.predecessor_account_id,
            token=NATIVE,
            amount=deposit - safety_deposit,
            safety_deposit=safety_deposit,
            terms=args,
        )
        return str(lock["lock_id"])

    @call()
    def ft_on_transfer(self, args: Args) -> str:
        """NEP-141 receiver: `msg` holds the lock terms. A panic here makes the token refund the sender."""
        token = self.ctx.predecessor_account_id
        allowlist: list[str] | None = self.read_json(_TOKENS)
        if allowlist is not None and token not in allowlist:
            raise ContractPanic(f"token not accepted: {token}")
        sender_id = args.account_id("sender_id")
        amount = args.u128("amount")
        try:
            terms = json.loads(args.string("msg"))
        except ValueError:
            raise ContractPanic("invalid msg: expected the lock terms as JSON") from None
        if not isinstance(terms, dict):
            raise ContractPanic("invalid msg: expected the lock terms as JSON")
        terms_args = Args(terms)
        safety_deposit = _safety_deposit(terms_args)
        if safety_deposit:
            balance = self._native_balance(sender_id)
            if balance < safety_deposit:
                raise ContractPanic(f"insufficient native balance for the safety deposit: {balance} < {safety_deposit}")
            self._set_native_balance(sender_id, balance - safety_deposit)
        self._create(depositor=sender_id, token=token, amount=amount, safety_deposit=safety_deposit, terms=terms_args)
        return "0"

    # Native balance for the safety deposits of token locks ----------------------------------------------------

    @call(payable=True)
    def deposit_native(self, args: Args) -> str:
        if self.ctx.attached_deposit <= 0:
            raise ContractPanic("attach a deposit")
        account_id = self.ctx.predecessor_account_id
        balance = self._native_balance(account_id) + self.ctx.attached_deposit
        self._set_native_balance(account_id, balance)
        return str(balance)

    @call()
    def withdraw_native(self, args: Args) -> str:
        account_id = self.ctx.predecessor_account_id
        amount = args.u128("amount")
        balance = self._native_balance(account_id)
        if amount <= 0 or amount > balance:
            raise ContractPanic(f"insufficient native balance: {balance}")
        self._set_native_balance(account_id, balance - amount)
        self.ctx.promise_transfer(account_id, amount)
        return str(balance - amount)

    @view
    def native_balance_of(self, args: Args) -> str:
        return str(self._native_balance(args.account_id("account_id")))

    # Withdraw and refund ------------------------------------------------------------------------------------

    @call()
    def withdraw(self, args: Args) -> PromiseRef:
        lock = self._active_lock(args.string("lock_id"))
        secret = args.string("secret")
        caller = self.ctx.predecessor_account_id
        now = self.ctx.block_timestamp
        locked_at = int(lock["locked_at"])
        timelocks = {name: int(value) for name, value in lock["timelocks"].items()}
        private_opens = locked_at + timelocks["withdrawal"]
        public_opens = locked_at + timelocks["public_withdrawal"]
        closes = locked_at + timelocks["cancellation"]
        if now >= closes:
            raise ContractPanic(f"too late: closed at {closes}")
        if caller == lock["operator"]:
            if now < private_opens:
                raise ContractPanic(f"too early: opens at {private_opens}")
        elif now < public_opens:
            if now >= private_opens:
                raise ContractPanic(f"only the operator can withdraw until {public_opens}")
            raise ContractPanic(f"too early: opens at {public_opens}")
        if not _HEX64.fullmatch(secret) or hashlib.sha256(bytes.fromhex(secret)).hexdigest() != lock["hashlock"]:
            raise ContractPanic("invalid secret")
        lock["state"] = "withdrawn"
        lock["secret"] = secret.lower()
        return self._pay_out(lock, lock["beneficiary"], "withdraw", caller)

    @call()
    def refund(self, args: Args) -> PromiseRef:
        lock = self._active_lock(args.string("lock_id"))
        caller = self.ctx.predecessor_account_id
        now = self.ctx.block_timestamp
        locked_at = int(lock["locked_at"])
        private_opens = locked_at + int(lock["timelocks"]["cancellation"])
        public_opens = locked_at + int(lock["timelocks"]["public_cancellation"])
        if caller == lock["operator"]:
            if now < private_opens:
                raise ContractPanic(f"too early: opens at {private_opens}")
        elif now < public_opens:
            if now >= private_opens:
                raise ContractPanic(f"only the operator can refund until {public_opens}")
            raise ContractPanic(f"too early: opens at {public_opens}")
        lock["state"] = "refunded"
        return self._pay_out(lock, lock["depositor"], "refund", caller)

    def _pay_out(self, lock: dict[str, Any], recipient: str, action: str, caller: str) -> PromiseRef:
        if self.ctx.prepaid_gas < MIN_GAS_FOR_PAYOUT:
            raise ContractPanic(f"not enough gas: attach at least {MIN_GAS_FOR_PAYOUT // TGAS} TGas")
        self._save(lock)
        self._set_active(lock, active=False)
        amount = int(lock["amount"])
        if lock["token"] == NATIVE:
            payout = self.ctx.promise_transfer(recipient, amount)
        else:
            payout = self.ctx.promise_function_call(
                lock["token"],
                "ft_transfer",
                _json_bytes({"receiver_id": recipient, "amount": str(amount), "memo": f"{action} {lock['lock_id']}"}),
                1,
                GAS_FOR_FT_TRANSFER,
                gas_weight=0,
            )
        callback = self.ctx.promise_then(
            payout,
            self.ctx.current_account_id,
            "on_payout",
            _json_bytes({"lock_id": lock["lock_id"], "action": action, "caller": caller}),
            0,
            GAS_FOR_ON_PAYOUT,
            gas_weight=0,
        )
        return PromiseRef(callback)

    @call(private=True)
    def on_payout(self, args: Args) -> bool:
        lock_id = args.string("lock_id")
        action = args.string("action")
        caller = args.account_id("caller")
        lock = self._lock(lock_id)
        if lock is None:
            raise ContractPanic("lock not found")
        results = self.ctx.promise_results()
        if results and results[0] is not None:
            event = "lock_withdrawn" if action == "withdraw" else "lock_refunded"
            self._record_event(event, {**_lock_view(lock), "caller": caller})
            safety_deposit = int(lock["safety_deposit"])
            if safety_deposit:
                self.ctx.promise_transfer(caller, safety_deposit)
            return True
        # The payout bounced (unregistered or missing recipient): the funds are still here, so is the lock.
        lock["state"] = "active"
        lock["secret"] = None
        self._save(lock)
        self._set_active(lock, active=True)
        self.ctx.log(f"{action} of lock {lock_id} failed to pay out; the lock is active again")
        return False

    # Administration -----------------------------------------------------------------------------------------

    @call()
    def new(self, args: Args) -> None:
        if self.ctx.storage_read(_OWNER) is not None:
            raise ContractPanic("The contract has already been initialized")
        if self.ctx.predecessor_account_id != self.ctx.current_account_id:
            raise ContractPanic("Method new is private")
        self.write_json(_OWNER, args.optional_account_id("owner_id") or self.ctx.current_account_id)
        self._set_allowlist(args)

    @call()
    def set_token_allowlist(self, args: Args) -> None:
        """Owner only: the NEP-141 contracts ft_on_transfer accepts; null accepts any."""
        if self.ctx.predecessor_account_id != self._owner():
            raise ContractPanic("only the owner can change the token allowlist")
        self._set_allowlist(args)

    def _set_allowlist(self, args: Args) -> None:
        tokens = args.raw.get("token_allowlist")
        if tokens is None:
            self.ctx.storage_remove(_TOKENS)
            return
        if not isinstance(tokens, list) or not all(isinstance(t, str) and is_valid_account_id(t) for t in tokens):
            raise ContractPanic("invalid token_allowlist: a list of account ids or null")
        self.write_json(_TOKENS, tokens)

    @view
    def token_allowlist(self, args: Args) -> Any:
        return self.read_json(_TOKENS)

    # Views --------------------------------------------------------------------------------------------------

    @view
    def lock_id_for(self, args: Args) -> str:
        return lock_id_for(args.account_id("depositor"), args.string("nonce"))

    @view
    def get_lock(self, args: Args) -> dict[str, Any] | None:
        lock = self._lock(args.string("lock_id"))
        return None if lock is None else _lock_view(lock)

    @view
    def list_active(self, args: Args) -> list[dict[str, Any]]:
        start = args.integer("from_index", 0)
        limit = min(args.integer("limit", DEFAULT_PAGE), MAX_PAGE)
        views: list[dict[str, Any]] = []
        for _, lock_id in self._active_entries()[start : start + limit]:
            lock = self._lock(lock_id)
            if lock is not None:
                views.append(_lock_view(lock))
        return views

    @view
    def get_events(self, args: Args) -> list[Any]:
        start = args.integer("from_index", 0)
        limit = min(args.integer("limit", DEFAULT_PAGE), MAX_PAGE)
        end = min(self._count(_EVENTS_COUNT), start + limit)
        return [self.read_json(_EVENT + f"{index:012d}".encode()) for index in range(start, end)]

    @view
    def events_count(self, args: Args) -> int:
        return self._count(_EVENTS_COUNT)


def _lock_view(lock: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in lock.items() if key != "seq"}


def _parse_timelocks(terms: Args) -> dict[str, int]:
    raw = terms.obj("timelocks")

    def invalid() -> ContractPanic:
        return ContractPanic("invalid timelocks")

    values: dict[str, int] = {}
    for name in TIMELOCK_FIELDS:
        if not raw.has(name):
            raise invalid()
        value = raw.raw[name]
        # U64 strings per the interface; plain non-negative numbers are accepted as well.
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        values[name] = parse_uint(value, MAX_U64, invalid)
    if not (
        values["withdrawal"] <= values["public_withdrawal"] < values["cancellation"] <= values["public_cancellation"]
    ):
        raise invalid()
    return values


def _safety_deposit(terms: Args) -> int:
    if not terms.has("safety_deposit"):
        return 0
    return terms.u128("safety_deposit")


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
