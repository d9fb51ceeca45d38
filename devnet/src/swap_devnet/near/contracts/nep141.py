"""A NEP-141 fungible token with NEP-145 storage management, behaving like near-contract-standards'
FungibleToken (same panics, same `ft_transfer_call` -> `ft_on_transfer` -> `ft_resolve_transfer` flow,
same NEP-297 events), plus an owner-only `mint` for development."""

from __future__ import annotations

import json
from typing import Any

from swap_devnet.near.contracts.base import Args, Contract, ContractPanic, PromiseRef, call, register, view
from swap_devnet.near.fees import TGAS

NEP141_STANDARD = "nep141"
NEP141_VERSION = "1.0.0"
# 125 bytes of account entry at 10^19 yoctoNEAR per byte, the amount near-contract-standards asks for.
STORAGE_BALANCE_MIN = 1_250_000_000_000_000_000_000
GAS_FOR_RESOLVE_TRANSFER = 5 * TGAS
GAS_FOR_FT_TRANSFER_CALL = 25 * TGAS + GAS_FOR_RESOLVE_TRANSFER

_META = b"metadata"
_OWNER = b"owner"
_SUPPLY = b"total_supply"
_BALANCE = b"balance:"


@register
class FungibleToken(Contract):
    code_id = "nep141"

    # Storage ------------------------------------------------------------------------------------------------

    def _require_init(self) -> None:
        if self.ctx.storage_read(_META) is None:
            raise ContractPanic("The contract is not initialized")

    def _balance(self, account_id: str) -> int | None:
        raw = self.ctx.storage_read(_BALANCE + account_id.encode())
        return None if raw is None else int(raw)

    def _set_balance(self, account_id: str, amount: int) -> None:
        self.ctx.storage_write(_BALANCE + account_id.encode(), str(amount).encode())

    def _registered_balance(self, account_id: str) -> int:
        balance = self._balance(account_id)
        if balance is None:
            raise ContractPanic(f"The account {account_id} is not registered")
        return balance

    def _supply(self) -> int:
        raw = self.ctx.storage_read(_SUPPLY)
        return 0 if raw is None else int(raw)

    def _transfer(self, sender_id: str, receiver_id: str, amount: int, memo: str | None) -> None:
        if sender_id == receiver_id:
            raise ContractPanic("Sender and receiver should be different")
        if amount <= 0:
            raise ContractPanic("The amount should be a positive number")
        sender_balance = self._registered_balance(sender_id)
        if sender_balance < amount:
            raise ContractPanic("The account doesn't have enough balance")
        receiver_balance = self._registered_balance(receiver_id)
        self._set_balance(sender_id, sender_balance - amount)
        self._set_balance(receiver_id, receiver_balance + amount)
        self._emit_transfer(sender_id, receiver_id, amount, memo)

    def _emit_transfer(self, old_owner_id: str, new_owner_id: str, amount: int, memo: str | None) -> None:
        event: dict[str, Any] = {"old_owner_id": old_owner_id, "new_owner_id": new_owner_id, "amount": str(amount)}
        if memo is not None:
            event["memo"] = memo
        self.emit_event(NEP141_STANDARD, NEP141_VERSION, "ft_transfer", [event])

    def _storage_balance(self, account_id: str) -> dict[str, str] | None:
        if self._balance(account_id) is None:
            return None
        return {"total": str(STORAGE_BALANCE_MIN), "available": "0"}

    # Initialisation and metadata -----------------------------------------------------------------------------

    @call()
    def new(self, args: Args) -> None:
        if self.ctx.storage_read(_META) is not None:
            raise ContractPanic("The contract has already been initialized")
        owner_id = args.account_id("owner_id")
        total_supply = args.u128("total_supply") if args.has("total_supply") else 0
        metadata = dict(args.raw.get("metadata") or {})
        metadata.setdefault("spec", "ft-1.0.0")
        metadata.setdefault("name", "Token")
        metadata.setdefault("symbol", "TOKEN")
        metadata.setdefault("icon", None)
        metadata.setdefault("reference", None)
        metadata.setdefault("reference_hash", None)
        metadata.setdefault("decimals", 24)
        if not isinstance(metadata["decimals"], int) or not 0 <= metadata["decimals"] <= 255:
            raise ContractPanic("Invalid metadata: decimals")
        self.write_json(_META, metadata)
        self.write_json(_OWNER, owner_id)
        self._set_balance(owner_id, total_supply)
        self.ctx.storage_write(_SUPPLY, str(total_supply).encode())
        if total_supply:
            self.emit_event(
                NEP141_STANDARD,
                NEP141_VERSION,
                "ft_mint",
                [{"owner_id": owner_id, "amount": str(total_supply), "memo": "new tokens are minted"}],
            )

    @view
    def ft_metadata(self, args: Args) -> Any:
        self._require_init()
        return self.read_json(_META)

    @view
    def ft_total_supply(self, args: Args) -> str:
        self._require_init()
        return str(self._supply())

    @view
    def ft_balance_of(self, args: Args) -> str:
        self._require_init()
        return str(self._balance(args.account_id("account_id")) or 0)

    @view
    def owner_id(self, args: Args) -> Any:
        self._require_init()
        return self.read_json(_OWNER)

    # NEP-145 storage management -----------------------------------------------------------------------------

    @view
    def storage_balance_bounds(self, args: Args) -> dict[str, str]:
        return {"min": str(STORAGE_BALANCE_MIN), "max": str(STORAGE_BALANCE_MIN)}

    @view
    def storage_balance_of(self, args: Args) -> dict[str, str] | None:
        self._require_init()
        return self._storage_balance(args.account_id("account_id"))

    @call(payable=True)
    def storage_deposit(self, args: Args) -> dict[str, str] | None:
        self._require_init()
        amount = self.ctx.attached_deposit
        account_id = args.optional_account_id("account_id") or self.ctx.predecessor_account_id
        if self._balance(account_id) is not None:
            self.ctx.log("The account is already registered, refunding the deposit")
            if amount > 0:
                self.ctx.promise_transfer(self.ctx.predecessor_account_id, amount)
        else:
            if amount < STORAGE_BALANCE_MIN:
                raise ContractPanic("The attached deposit is less than the minimum storage balance")
            self._set_balance(account_id, 0)
            refund = amount - STORAGE_BALANCE_MIN
            if refund > 0:
                self.ctx.promise_transfer(self.ctx.predecessor_account_id, refund)
        return self._storage_balance(account_id)

    # Transfers ----------------------------------------------------------------------------------------------

    @call(payable=True)
    def ft_transfer(self, args: Args) -> None:
        self._require_init()
        self.assert_one_yocto()
        receiver_id = args.account_id("receiver_id")
        self._transfer(self.ctx.predecessor_account_id, receiver_id, args.u128("amount"), args.optional_string("memo"))

    @call(payable=True)
    def ft_transfer_call(self, args: Args) -> PromiseRef:
        self._require_init()
        self.assert_one_yocto()
        if self.ctx.prepaid_gas <= GAS_FOR_FT_TRANSFER_CALL:
            raise ContractPanic("More gas is required")
        sender_id = self.ctx.predecessor_account_id
        receiver_id = args.account_id("receiver_id")
        amount = args.u128("amount")
        msg = args.string("msg")
        self._transfer(sender_id, receiver_id, amount, args.optional_string("memo"))
        on_transfer = self.ctx.promise_function_call(
            receiver_id,
            "ft_on_transfer",
            _json_bytes({"sender_id": sender_id, "amount": str(amount), "msg": msg}),
            0,
            self.ctx.prepaid_gas - GAS_FOR_FT_TRANSFER_CALL,
            gas_weight=0,
        )
        resolve = self.ctx.promise_then(
            on_transfer,
            self.ctx.current_account_id,
            "ft_resolve_transfer",
            _json_bytes({"sender_id": sender_id, "receiver_id": receiver_id, "amount": str(amount)}),
            0,
            GAS_FOR_RESOLVE_TRANSFER,
            gas_weight=0,
        )
        return PromiseRef(resolve)

    @call(private=True)
    def ft_resolve_transfer(self, args: Args) -> str:
        sender_id = args.account_id("sender_id")
        receiver_id = args.account_id("receiver_id")
        amount = args.u128("amount")
        results = self.ctx.promise_results()
        unused = amount
        if results and results[0] is not None:
            try:
                returned = json.loads(results[0])
                if isinstance(returned, str) and returned.isdigit():
                    unused = min(amount, int(returned))
            except ValueError:
                unused = amount
        if unused > 0:
            receiver_balance = self._balance(receiver_id) or 0
            if receiver_balance > 0:
                refund = min(receiver_balance, unused)
                self._set_balance(receiver_id, receiver_balance - refund)
                sender_balance = self._balance(sender_id)
                if sender_balance is not None:
                    self._set_balance(sender_id, sender_balance + refund)
                    self._emit_transfer(receiver_id, sender_id, refund, "refund")
                    return str(amount - refund)
                # The sender unregistered meanwhile: the tokens have nowhere to go, so they are burnt.
                self.ctx.storage_write(_SUPPLY, str(self._supply() - refund).encode())
                self.ctx.log("The account of the sender was deleted")
                self.emit_event(
                    NEP141_STANDARD,
                    NEP141_VERSION,
                    "ft_burn",
                    [{"owner_id": receiver_id, "amount": str(refund), "memo": "refund"}],
                )
                return str(amount)
        return str(amount)

    # Development --------------------------------------------------------------------------------------------

    @call()
    def mint(self, args: Args) -> str:
        """Owner only: create `amount` tokens on the registered `account_id`; returns its new balance."""
        self._require_init()
        if self.ctx.predecessor_account_id != self.read_json(_OWNER):
            raise ContractPanic("Only the owner can mint")
        account_id = args.account_id("account_id")
        amount = args.u128("amount")
        if amount <= 0:
            raise ContractPanic("The amount should be a positive number")
        balance = self._registered_balance(account_id) + amount
        self._set_balance(account_id, balance)
        self.ctx.storage_write(_SUPPLY, str(self._supply() + amount).encode())
        event: dict[str, Any] = {"owner_id": account_id, "amount": str(amount)}
        memo = args.optional_string("memo")
        if memo is not None:
            event["memo"] = memo
        self.emit_event(NEP141_STANDARD, NEP141_VERSION, "ft_mint", [event])
        return str(balance)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
