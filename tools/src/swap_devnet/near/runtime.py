"""Receipt execution, following nearcore's runtime.

A transaction becomes one action receipt; a function call may create promises, which become new action
receipts (executed in later blocks) wired together with data receipts, so `a.then(b)` runs `b` once `a`'s
result arrives. A receipt's actions are atomic: any failure drops all of the receipt's state changes and
promises, refunds its attached deposits to the predecessor and sends a failed result to whoever waits on it.
Unused gas goes back to the signer as a refund receipt, like nearcore's. Contract code is a wasm module, executed
by swap_devnet.near.wasm. After a receipt, every account it wrote must still hold the balance its storage stakes,
or the receipt fails (LackBalanceForState).
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from swap_devnet.near import fees
from swap_devnet.near.codec import (
    Action,
    AddKey,
    CreateAccount,
    Delegate,
    DeleteAccount,
    DeleteKey,
    DeployContract,
    FunctionCall,
    FunctionCallPermission,
    PublicKey,
    Stake,
    Transfer,
    action_view,
    actions_deposit,
    delegate_action_hash,
)
from swap_devnet.near.ids import (
    MIN_OPEN_TOP_LEVEL_LEN,
    is_implicit,
    is_sub_account,
    is_top_level,
    is_valid_account_id,
)
from swap_devnet.near.keys import b58decode, b58encode, crypto_hash, verify_signature
from swap_devnet.near.state import (
    STORAGE_PRICE_PER_BYTE,
    ZERO_BALANCE_ACCOUNT_STORAGE_LIMIT,
    AccessKeyRecord,
    AccountRecord,
    StateUpdate,
    StateView,
    access_key_key,
    data_key,
)

SYSTEM_ACCOUNT = "system"
# Code starting with these bytes is a wasm module, run by swap_devnet.near.wasm; other code fails to prepare.
WASM_MAGIC = b"\0asm"
# Access key nonces start at (block height - 1) * this, so a key added later never accepts an old nonce.
NONCE_RANGE_MULTIPLIER = 1_000_000
ZERO_PUBLIC_KEY = PublicKey.ed25519(bytes(32))

ACTION_COST_NAMES: dict[type, str] = {
    CreateAccount: "CREATE_ACCOUNT",
    DeployContract: "DEPLOY_CONTRACT_BASE",
    FunctionCall: "FUNCTION_CALL_BASE",
    Transfer: "TRANSFER",
    Stake: "STAKE",
    AddKey: "ADD_KEY",
    DeleteKey: "DELETE_KEY",
    DeleteAccount: "DELETE_ACCOUNT",
    Delegate: "DELEGATE",
}


def derive_id(parent: str, block_hash: bytes, index: int) -> str:
    """An id for the `index`-th receipt (or data) produced by `parent` in the block `block_hash`."""
    return b58encode(crypto_hash(b58decode(parent) + block_hash + index.to_bytes(8, "little")))


# --------------------------------------------------------------------------------------------------------------
# Receipts and outcomes
# --------------------------------------------------------------------------------------------------------------


@dataclass
class DataReceiver:
    data_id: str
    receiver_id: str


@dataclass
class ActionReceipt:
    receipt_id: str
    predecessor_id: str
    receiver_id: str
    signer_id: str
    signer_public_key: PublicKey
    gas_price: int
    actions: tuple[Action, ...]
    tx_hash: str
    output_data_receivers: list[DataReceiver] = field(default_factory=list)
    input_data_ids: list[str] = field(default_factory=list)

    @property
    def is_refund(self) -> bool:
        return self.predecessor_id == SYSTEM_ACCOUNT

    def view(self) -> dict[str, Any]:
        """nearcore's ReceiptView."""
        return {
            "predecessor_id": self.predecessor_id,
            "receiver_id": self.receiver_id,
            "receipt_id": self.receipt_id,
            "receipt": {
                "Action": {
                    "signer_id": self.signer_id,
                    "signer_public_key": self.signer_public_key.text,
                    "gas_price": str(self.gas_price),
                    "output_data_receivers": [
                        {"data_id": r.data_id, "receiver_id": r.receiver_id} for r in self.output_data_receivers
                    ],
                    "input_data_ids": list(self.input_data_ids),
                    "actions": [action_view(action) for action in self.actions],
                    "is_promise_yield": False,
                }
            },
            "priority": 0,
        }


@dataclass
class DataReceipt:
    receipt_id: str
    predecessor_id: str
    receiver_id: str
    data_id: str
    data: bytes | None
    tx_hash: str

    def view(self) -> dict[str, Any]:
        return {
            "predecessor_id": self.predecessor_id,
            "receiver_id": self.receiver_id,
            "receipt_id": self.receipt_id,
            "receipt": {
                "Data": {
                    "data_id": self.data_id,
                    "data": None if self.data is None else base64.b64encode(self.data).decode(),
                    "is_promise_resume": False,
                }
            },
            "priority": 0,
        }


Receipt = ActionReceipt | DataReceipt


@dataclass(frozen=True)
class BlockContext:
    height: int
    timestamp: int
    hash: str
    hash_bytes: bytes


@dataclass
class ExecutionOutcome:
    id: str
    block_hash: str
    block_height: int
    logs: list[str]
    receipt_ids: list[str]
    gas_burnt: int
    tokens_burnt: int
    executor_id: str
    status: dict[str, Any]
    metadata: dict[str, Any]

    def view(self) -> dict[str, Any]:
        """nearcore's ExecutionOutcomeWithIdView."""
        return {
            "proof": [],
            "block_hash": self.block_hash,
            "id": self.id,
            "outcome": {
                "logs": list(self.logs),
                "receipt_ids": list(self.receipt_ids),
                "gas_burnt": self.gas_burnt,
                "tokens_burnt": str(self.tokens_burnt),
                "executor_id": self.executor_id,
                "status": self.status,
                "metadata": self.metadata,
            },
        }


@dataclass
class ReceiptResult:
    outcome: ExecutionOutcome
    new_receipts: list[Receipt]


def success_value(value: bytes) -> dict[str, Any]:
    return {"SuccessValue": base64.b64encode(value).decode()}


# --------------------------------------------------------------------------------------------------------------
# Failures
# --------------------------------------------------------------------------------------------------------------


class ActionFailure(Exception):
    """An action failed; `kind` is nearcore's ActionErrorKind JSON."""

    def __init__(self, kind: dict[str, Any]) -> None:
        super().__init__(kind)
        self.kind = kind


class FunctionCallFailure(Exception):
    """A function call failed: `error` is nearcore's FunctionCallError JSON, `debug` its Rust Debug text
    (what a failed view call reports)."""

    def __init__(self, error: Any, debug: str) -> None:
        super().__init__(debug)
        self.error = error
        self.debug = debug


def _rust_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def panic_failure(message: str) -> FunctionCallFailure:
    return FunctionCallFailure(
        {"ExecutionError": f"Smart contract panicked: {message}"},
        f"HostError(GuestPanic {{ panic_msg: {_rust_str(message)} }})",
    )


def gas_exceeded_failure() -> FunctionCallFailure:
    return FunctionCallFailure({"ExecutionError": "Exceeded the prepaid gas."}, "HostError(GasExceeded)")


# nearcore's Display of its HostError kinds: a receipt outcome carries the text (nearcore collapses host errors
# and wasm traps into `ExecutionError` strings), a failed view call the Debug form.
_HOST_ERROR_TEXT = {
    "BadUTF16": "String encoding is bad UTF-16 sequence.",
    "BadUTF8": "String encoding is bad UTF-8 sequence.",
    "GasExceeded": "Exceeded the prepaid gas.",
    "GasLimitExceeded": "Exceeded the maximum amount of gas allowed to burn per contract.",
    "BalanceExceeded": "Exceeded the account balance.",
    "EmptyMethodName": "Tried to call an empty method name.",
    "GuestPanic": "Smart contract panicked: {panic_msg}",
    "IntegerOverflow": "Integer overflow.",
    "InvalidPromiseIndex": "{promise_idx} does not correspond to existing promises",
    "CannotAppendActionToJointPromise": "Actions can only be appended to non-joint promise.",
    "CannotReturnJointPromise": "Returning joint promise is currently prohibited.",
    "InvalidPromiseResultIndex": "Accessed invalid promise result index: {result_idx}",
    "InvalidRegisterId": "Accessed invalid register id: {register_id}",
    "MemoryAccessViolation": "Accessed memory outside the bounds.",
    "InvalidAccountId": "VM Logic returned an invalid account id",
    "InvalidMethodName": "VM Logic returned an invalid method name",
    "InvalidPublicKey": "VM Logic provided an invalid public key",
    "ProhibitedInView": "{method_name} is not allowed in view calls",
    "NumberOfLogsExceeded": "The number of logs will exceed the limit {limit}",
    "KeyLengthExceeded": "The length of a storage key {length} exceeds the limit {limit}",
    "ValueLengthExceeded": "The length of a storage value {length} exceeds the limit {limit}",
    "TotalLogLengthExceeded": "The length of a log message {length} exceeds the limit {limit}",
    "NumberPromisesExceeded": "The number of promises within a FunctionCall {number_of_promises} exceeds the "
    "limit {limit}",
    "NumberInputDataDependenciesExceeded": "The number of input data dependencies "
    "{number_of_input_data_dependencies} exceeds the limit {limit}",
    "ReturnedValueLengthExceeded": "The length of a returned value {length} exceeds the limit {limit}",
    "ContractSizeExceeded": "The size of a contract code in DeployContract action {size} exceeds the limit {limit}",
    "Deprecated": "Attempted to call deprecated host function {method_name}",
    "Ed25519VerifyInvalidInput": "ED25519 signature verification error: {msg}",
}


def host_failure(name: str, **fields: Any) -> FunctionCallFailure:
    """nearcore's HostError `name`: `ExecutionError` with its Display text in an outcome, Debug in a view."""
    text = _HOST_ERROR_TEXT.get(name, name).format(**fields)
    if not fields:
        return FunctionCallFailure({"ExecutionError": text}, f"HostError({name})")
    debug_fields = ", ".join(
        f"{key}: {_rust_str(value) if isinstance(value, str) else value}" for key, value in fields.items()
    )
    return FunctionCallFailure({"ExecutionError": text}, f"HostError({name} {{ {debug_fields} }})")


def prohibited_in_view(method_name: str) -> FunctionCallFailure:
    return host_failure("ProhibitedInView", method_name=method_name)


# nearcore's WasmTrap kinds and their Display text.
WASM_TRAP_TEXT = {
    "Unreachable": "An `unreachable` opcode was executed.",
    "IncorrectCallIndirectSignature": "Call indirect incorrect signature trap.",
    "MemoryOutOfBounds": "Memory out of bounds trap.",
    "CallIndirectOOB": "Call indirect out of bounds trap.",
    "IllegalArithmetic": "An arithmetic exception, e.g. divided by zero.",
    "MisalignedAtomicAccess": "Misaligned atomic access trap.",
    "IndirectCallToNull": "Indirect call to null.",
    "StackOverflow": "Stack overflow.",
    "GenericTrap": "Generic trap.",
}


def wasm_trap_failure(kind: str) -> FunctionCallFailure:
    return FunctionCallFailure({"ExecutionError": f"WebAssembly trap: {WASM_TRAP_TEXT[kind]}"}, f"WasmTrap({kind})")


def link_failure(message: str) -> FunctionCallFailure:
    return FunctionCallFailure(
        {"ExecutionError": f"Link Error: {message}"}, f"LinkError {{ msg: {_rust_str(message)} }}"
    )


def method_resolve_failure(kind: str) -> FunctionCallFailure:
    """`MethodNotFound`, `MethodEmptyName` or `MethodInvalidSignature`."""
    return FunctionCallFailure({"MethodResolveError": kind}, f"MethodResolveError({kind})")


def prepare_failure(kind: str = "Deserialization") -> FunctionCallFailure:
    return FunctionCallFailure({"CompilationError": {"PrepareError": kind}}, f"CompilationError(PrepareError({kind}))")


class _GasExceeded(Exception):
    pass


# --------------------------------------------------------------------------------------------------------------
# The contract host
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromiseRef:
    """A call's result that is a promise (`promise_return`): the index of the receipt whose result becomes the
    call's."""

    index: int


@dataclass
class PendingPromise:
    receiver_id: str
    actions: list[Action]
    gas_weights: list[int]
    after: list[int]


class CallContext:
    """near-sdk's `env` for one function call, over the receipt's state update (or a block's state, read-only,
    for view calls); swap_devnet.near.wasm's host functions call it."""

    def __init__(
        self,
        *,
        state: StateUpdate | StateView,
        is_view: bool,
        current_account_id: str,
        predecessor_account_id: str,
        signer_account_id: str,
        signer_account_pk: str,
        attached_deposit: int,
        prepaid_gas: int,
        block: BlockContext,
        receipt_id: str,
        promise_results: Sequence[bytes | None] = (),
        data_receivers: Sequence[str] = (),
    ) -> None:
        self.state = state
        self.is_view = is_view
        self.current_account_id = current_account_id
        self.predecessor_account_id = predecessor_account_id
        self.signer_account_id = signer_account_id
        self.signer_account_pk = signer_account_pk
        self.attached_deposit = attached_deposit
        self.prepaid_gas = prepaid_gas
        self.block_height = block.height
        self.block_timestamp = block.timestamp
        # nearcore's `random_seed` is the block's VRF output; the devnet derives it from the block hash.
        self.random_seed = crypto_hash(b"random_seed" + block.hash_bytes)
        self.receipt_id = receipt_id
        self._promise_results = list(promise_results)
        # Accounts waiting for this call's result (data receipts it will send).
        self.data_receivers = list(data_receivers)
        self.logs: list[str] = []
        self.promises: list[PendingPromise] = []
        self.burnt = 0
        self.used = 0
        self.profile: Counter[str] = Counter()

    # Gas ----------------------------------------------------------------------------------------------------

    def burn(self, gas: int, cost: str) -> None:
        self.burnt += gas
        self.profile[cost] += gas
        self.use(gas)

    def use(self, gas: int) -> None:
        self.used += gas
        if self.used > self.prepaid_gas:
            raise _GasExceeded

    # Environment ----------------------------------------------------------------------------------------------

    def _writable(self, host_function: str) -> StateUpdate:
        if self.is_view or not isinstance(self.state, StateUpdate):
            raise prohibited_in_view(host_function)
        return self.state

    def account_balance(self) -> int:
        account = self.state.account(self.current_account_id)
        return 0 if account is None else account.amount

    def account_locked_balance(self) -> int:
        account = self.state.account(self.current_account_id)
        return 0 if account is None else account.locked

    def storage_usage(self) -> int:
        """Bytes the current account stores (account record, keys, code, data), kept by the state update."""
        account = self.state.account(self.current_account_id)
        return 0 if account is None else account.storage_usage

    def storage_read(self, key: bytes) -> bytes | None:
        self.burn(fees.STORAGE_READ_BASE + len(key) * fees.STORAGE_READ_KEY_BYTE, "STORAGE_READ_BASE")
        value = self.state.data(self.current_account_id, key)
        if value is not None:
            self.burn(len(value) * fees.STORAGE_READ_VALUE_BYTE, "STORAGE_READ_VALUE_BYTE")
        return value

    def storage_replace(self, key: bytes, value: bytes) -> bytes | None:
        """Write `value` under `key`; returns the value it replaced."""
        state = self._writable("storage_write")
        self.burn(
            fees.STORAGE_WRITE_BASE
            + len(key) * fees.STORAGE_WRITE_KEY_BYTE
            + len(value) * fees.STORAGE_WRITE_VALUE_BYTE,
            "STORAGE_WRITE_BASE",
        )
        old = state.data(self.current_account_id, key)
        state.put_record(data_key(self.current_account_id, key), value)
        return old

    def storage_take(self, key: bytes) -> bytes | None:
        """Remove `key`; returns the value it held."""
        state = self._writable("storage_remove")
        self.burn(fees.STORAGE_REMOVE_BASE + len(key) * fees.STORAGE_REMOVE_KEY_BYTE, "STORAGE_REMOVE_BASE")
        old = state.data(self.current_account_id, key)
        if old is not None:
            state.put_record(data_key(self.current_account_id, key), None)
        return old

    def storage_has_key(self, key: bytes) -> bool:
        self.burn(fees.STORAGE_HAS_KEY_BASE + len(key) * fees.STORAGE_HAS_KEY_BYTE, "STORAGE_HAS_KEY_BASE")
        return self.state.data(self.current_account_id, key) is not None

    def log(self, message: str) -> None:
        self.burn(fees.LOG_BASE + len(message.encode()) * fees.LOG_BYTE, "LOG_BASE")
        self.logs.append(message)

    def sha256(self, data: bytes) -> bytes:
        self.burn(fees.SHA256_BASE + len(data) * fees.SHA256_BYTE, "SHA256_BASE")
        return crypto_hash(data)

    def promise_results(self) -> list[bytes | None]:
        if self.is_view:
            raise prohibited_in_view("promise_results_count")
        return list(self._promise_results)

    # Promises -----------------------------------------------------------------------------------------------

    def promise_batch_create(self, account_id: str, after: Sequence[int] = ()) -> int:
        """A new receipt to `account_id` without actions, run once the receipts `after` have their results;
        pays the receipt's send fee (burnt) and execution fee (used), and the data receipts' fees."""
        self._writable("promise_batch_then" if after else "promise_batch_create")
        if not is_valid_account_id(account_id):
            raise host_failure("InvalidAccountId")
        for index in after:
            if not 0 <= index < len(self.promises):
                raise host_failure("InvalidPromiseIndex", promise_idx=index)
        self.burn(fees.ACTION_RECEIPT_CREATION.send, "NEW_ACTION_RECEIPT")
        self.use(fees.ACTION_RECEIPT_CREATION.execution)
        for _ in after:
            data_fee = fees.DATA_RECEIPT_CREATION_BASE
            self.burn(data_fee.send + data_fee.execution, "NEW_DATA_RECEIPT_BASE")
        self.promises.append(PendingPromise(account_id, [], [], list(after)))
        return len(self.promises) - 1

    def promise_batch_action(self, index: int, action: Action, gas_weight: int = 0) -> None:
        """Append `action` to the receipt `index`: pays its send fee (burnt), its execution fee and attached gas
        (used), and takes its deposit from the current account."""
        state = self._writable("promise_batch_action")
        if not 0 <= index < len(self.promises):
            raise host_failure("InvalidPromiseIndex", promise_idx=index)
        fee = fees.action_fee(action)
        self.burn(fee.send, "NEW_ACTION_RECEIPT")
        self.use(fee.execution + fees.prepaid_gas([action]))
        deposit = actions_deposit([action])
        if deposit:
            account = state.account(self.current_account_id)
            if account is None or account.amount < deposit:
                raise host_failure("BalanceExceeded")
            state.set_account(self.current_account_id, replace(account, amount=account.amount - deposit))
        promise = self.promises[index]
        promise.actions.append(action)
        promise.gas_weights.append(gas_weight)

    def distribute_unused_gas(self) -> None:
        """Share the gas left after the call among the promises' function calls by weight (near-sdk's
        default weight 1), the way nearcore does after execution."""
        weighted = [
            (promise, index)
            for promise in self.promises
            for index, weight in enumerate(promise.gas_weights)
            if weight > 0 and isinstance(promise.actions[index], FunctionCall)
        ]
        remaining = self.prepaid_gas - self.used
        total_weight = sum(promise.gas_weights[index] for promise, index in weighted)
        if remaining <= 0 or not total_weight:
            return
        given = 0
        for position, (promise, index) in enumerate(weighted):
            share = (
                remaining - given
                if position == len(weighted) - 1
                else remaining * promise.gas_weights[index] // total_weight
            )
            action = promise.actions[index]
            assert isinstance(action, FunctionCall)
            promise.actions[index] = replace(action, gas=action.gas + share)
            given += share
        self.used += given


def run_method(ctx: CallContext, code: bytes | None, method_name: str, args: bytes) -> bytes | PromiseRef:
    """Run `method_name` of the wasm contract `code` (swap_devnet.near.wasm); raises FunctionCallFailure, also
    for a missing contract and for code that is not a wasm module."""
    if code is None:
        raise FunctionCallFailure(
            {"CompilationError": {"CodeDoesNotExist": {"account_id": ctx.current_account_id}}},
            f'CompilationError(CodeDoesNotExist {{ account_id: AccountId("{ctx.current_account_id}") }})',
        )
    if not code.startswith(WASM_MAGIC):
        raise prepare_failure()
    # Imported here: the executor builds on CallContext and the failures above.
    from swap_devnet.near.wasm import run_wasm  # noqa: PLC0415

    return run_wasm(ctx, code, method_name, args)


# --------------------------------------------------------------------------------------------------------------
# Applying receipts
# --------------------------------------------------------------------------------------------------------------


def receipt_gas_budget(actions: Sequence[Action]) -> int:
    """The gas a receipt was paid for: its execution fees and the gas attached to its function calls."""
    return fees.receipt_fees(actions).execution + fees.prepaid_gas(actions)


def total_deposit(actions: Sequence[Action]) -> int:
    total = actions_deposit(actions)
    for action in actions:
        if isinstance(action, Delegate):
            total += actions_deposit(action.delegate_action.actions)
    return total


class ReceiptApplication:
    """One action receipt applied to the state at `block`."""

    def __init__(
        self,
        receipt: ActionReceipt,
        block: BlockContext,
        update: StateUpdate,
        input_data: Sequence[bytes | None],
        registrar_id: str,
    ) -> None:
        self.receipt = receipt
        self.block = block
        self.update = update
        self.input_data = list(input_data)
        self.registrar_id = registrar_id
        self.burnt = 0
        self.used = 0
        self.profile: Counter[str] = Counter()
        self.logs: list[str] = []
        self.new_receipts: list[ActionReceipt] = []
        self.extra_receipts: list[ActionReceipt] = []
        self.result: bytes | ActionReceipt = b""
        self.created_here = False
        self._next_index = 0

    def next_id(self) -> str:
        index = self._next_index
        self._next_index += 1
        return derive_id(self.receipt.receipt_id, self.block.hash_bytes, index)

    def charge(self, gas: int, cost: str) -> None:
        self.burnt += gas
        self.used += gas
        self.profile[cost] += gas

    def account(self) -> AccountRecord:
        account = self.update.account(self.receipt.receiver_id)
        if account is None:
            raise ActionFailure({"AccountDoesNotExist": {"account_id": self.receipt.receiver_id}})
        return account

    def require_actor(self) -> None:
        if self.receipt.predecessor_id != self.receipt.receiver_id and not self.created_here:
            raise ActionFailure(
                {
                    "ActorNoPermission": {
                        "account_id": self.receipt.receiver_id,
                        "actor_id": self.receipt.predecessor_id,
                    }
                }
            )

    def apply(self, action: Action) -> None:
        receiver_id = self.receipt.receiver_id
        fee = fees.action_fee(action)
        if isinstance(action, Delegate):
            self.charge(fees.DELEGATE.execution, "DELEGATE")
        else:
            self.charge(fee.execution, ACTION_COST_NAMES.get(type(action), "ACTION"))
        self.result = b""
        match action:
            case CreateAccount():
                self._create_account()
            case Transfer(deposit=deposit):
                if (
                    self.update.account(receiver_id) is None
                    and is_implicit(receiver_id)
                    and len(self.receipt.actions) == 1
                ):
                    self._create_implicit_account()
                account = self.account()
                self.update.set_account(receiver_id, replace(account, amount=account.amount + deposit))
            case FunctionCall():
                self._function_call(action)
            case DeployContract(code=code):
                account = self.account()
                self.require_actor()
                old_size = len(account.code or b"")
                self.update.set_account(
                    receiver_id,
                    replace(account, code=code, storage_usage=account.storage_usage - old_size + len(code)),
                )
            case Stake(stake=stake):
                account = self.account()
                self.require_actor()
                available = account.amount + account.locked
                if stake > available:
                    raise ActionFailure(
                        {
                            "TriesToStake": {
                                "account_id": receiver_id,
                                "stake": str(stake),
                                "locked": str(account.locked),
                                "balance": str(account.amount),
                            }
                        }
                    )
                self.update.set_account(receiver_id, replace(account, amount=available - stake, locked=stake))
            case AddKey(public_key=public_key, permission=permission):
                self.account()
                self.require_actor()
                if self.update.access_key(receiver_id, public_key) is not None:
                    raise ActionFailure(
                        {"AddKeyAlreadyExists": {"account_id": receiver_id, "public_key": public_key.text}}
                    )
                nonce = (self.block.height - 1) * NONCE_RANGE_MULTIPLIER
                self.update.put_record(access_key_key(receiver_id, public_key), AccessKeyRecord(nonce, permission))
            case DeleteKey(public_key=public_key):
                self.account()
                self.require_actor()
                if self.update.access_key(receiver_id, public_key) is None:
                    raise ActionFailure(
                        {"DeleteKeyDoesNotExist": {"account_id": receiver_id, "public_key": public_key.text}}
                    )
                self.update.put_record(access_key_key(receiver_id, public_key), None)
            case DeleteAccount(beneficiary_id=beneficiary_id):
                self._delete_account(beneficiary_id)
            case Delegate():
                self._delegate(action)
            case _:
                raise ActionFailure(
                    {"UnsupportedProtocolFeature": {"protocol_feature": type(action).__name__, "version": 0}}
                )

    def _create_account(self) -> None:
        receiver_id = self.receipt.receiver_id
        predecessor_id = self.receipt.predecessor_id
        if self.update.account(receiver_id) is not None:
            raise ActionFailure({"AccountAlreadyExists": {"account_id": receiver_id}})
        if is_implicit(receiver_id):
            raise ActionFailure({"OnlyImplicitAccountCreationAllowed": {"account_id": receiver_id}})
        if is_top_level(receiver_id):
            if len(receiver_id) < MIN_OPEN_TOP_LEVEL_LEN and predecessor_id != self.registrar_id:
                raise ActionFailure(
                    {
                        "CreateAccountOnlyByRegistrar": {
                            "account_id": receiver_id,
                            "registrar_account_id": self.registrar_id,
                            "predecessor_id": predecessor_id,
                        }
                    }
                )
        elif not is_sub_account(predecessor_id, receiver_id):
            raise ActionFailure(
                {"CreateAccountNotAllowed": {"account_id": receiver_id, "predecessor_id": predecessor_id}}
            )
        self.update.set_account(receiver_id, AccountRecord(amount=0))
        self.created_here = True

    def _create_implicit_account(self) -> None:
        receiver_id = self.receipt.receiver_id
        self.update.set_account(receiver_id, AccountRecord(amount=0))
        nonce = (self.block.height - 1) * NONCE_RANGE_MULTIPLIER
        self.update.put_record(
            access_key_key(receiver_id, PublicKey.ed25519(bytes.fromhex(receiver_id))), AccessKeyRecord(nonce, None)
        )

    def _delete_account(self, beneficiary_id: str) -> None:
        receiver_id = self.receipt.receiver_id
        account = self.account()
        self.require_actor()
        if account.locked:
            raise ActionFailure({"DeleteAccountStaking": {"account_id": receiver_id}})
        for key in self.update.keys_of(receiver_id):
            if key[0] != "account":
                self.update.put(key, None)
        self.update.set_account(receiver_id, None)
        if account.amount:
            self.extra_receipts.append(
                system_transfer(self.next_id(), beneficiary_id, account.amount, self.receipt.tx_hash)
            )

    def _delegate(self, action: Delegate) -> None:
        delegate = action.delegate_action
        if delegate.sender_id != self.receipt.receiver_id:
            raise ActionFailure(
                {
                    "DelegateActionSenderDoesNotMatchTxReceiver": {
                        "sender_id": delegate.sender_id,
                        "receiver_id": self.receipt.receiver_id,
                    }
                }
            )
        self.account()
        if not verify_signature(delegate.public_key.data, delegate_action_hash(delegate), action.signature.data):
            raise ActionFailure({"DelegateActionInvalidSignature": None})
        if self.block.height > delegate.max_block_height:
            raise ActionFailure(
                {
                    "DelegateActionExpired": {
                        "max_block_height": delegate.max_block_height,
                        "current_block_height": self.block.height,
                    }
                }
            )
        key = self.update.access_key(delegate.sender_id, delegate.public_key)
        if key is None:
            raise ActionFailure(
                {
                    "DelegateActionAccessKeyError": {
                        "AccessKeyNotFound": {"account_id": delegate.sender_id, "public_key": delegate.public_key.text}
                    }
                }
            )
        if delegate.nonce <= key.nonce:
            raise ActionFailure(
                {"DelegateActionInvalidNonce": {"delegate_nonce": delegate.nonce, "ak_nonce": key.nonce}}
            )
        upper_bound = self.block.height * NONCE_RANGE_MULTIPLIER
        if delegate.nonce >= upper_bound:
            raise ActionFailure(
                {"DelegateActionNonceTooLarge": {"delegate_nonce": delegate.nonce, "upper_bound": upper_bound}}
            )
        if key.permission is not None:
            problem = permission_problem(key.permission, delegate.receiver_id, delegate.actions)
            if problem is not None:
                raise ActionFailure({"DelegateActionAccessKeyError": problem})
        self.update.put_record(
            access_key_key(delegate.sender_id, delegate.public_key), replace(key, nonce=delegate.nonce)
        )
        inner = fees.receipt_fees(delegate.actions)
        self.charge(inner.send, "NEW_ACTION_RECEIPT")
        self.used += inner.execution + fees.prepaid_gas(delegate.actions)
        self.new_receipts.append(
            ActionReceipt(
                receipt_id=self.next_id(),
                predecessor_id=delegate.sender_id,
                receiver_id=delegate.receiver_id,
                signer_id=self.receipt.signer_id,
                signer_public_key=self.receipt.signer_public_key,
                gas_price=self.receipt.gas_price,
                actions=delegate.actions,
                tx_hash=self.receipt.tx_hash,
            )
        )

    def _function_call(self, action: FunctionCall) -> None:
        receiver_id = self.receipt.receiver_id
        account = self.account()
        # The deposit lands before the code runs, so the contract sees it in its balance.
        self.update.set_account(receiver_id, replace(account, amount=account.amount + action.deposit))
        ctx = CallContext(
            state=self.update,
            is_view=False,
            current_account_id=receiver_id,
            predecessor_account_id=self.receipt.predecessor_id,
            signer_account_id=self.receipt.signer_id,
            signer_account_pk=self.receipt.signer_public_key.text,
            attached_deposit=action.deposit,
            prepaid_gas=action.gas,
            block=self.block,
            receipt_id=self.receipt.receipt_id,
            promise_results=self.input_data,
            data_receivers=[receiver.receiver_id for receiver in self.receipt.output_data_receivers],
        )
        try:
            result = run_method(ctx, account.code, action.method_name, action.args)
        except FunctionCallFailure as failure:
            self.logs.extend(ctx.logs)
            exceeded = failure.error == gas_exceeded_failure().error
            self.burnt += action.gas if exceeded else ctx.burnt
            self.used += action.gas if exceeded else ctx.burnt
            self.profile.update(ctx.profile)
            raise ActionFailure({"FunctionCallError": failure.error}) from None
        ctx.distribute_unused_gas()
        self.logs.extend(ctx.logs)
        self.burnt += ctx.burnt
        self.used += ctx.used
        self.profile.update(ctx.profile)
        receipts = [
            ActionReceipt(
                receipt_id=self.next_id(),
                predecessor_id=receiver_id,
                receiver_id=promise.receiver_id,
                signer_id=self.receipt.signer_id,
                signer_public_key=self.receipt.signer_public_key,
                gas_price=self.receipt.gas_price,
                actions=tuple(promise.actions),
                tx_hash=self.receipt.tx_hash,
            )
            for promise in ctx.promises
        ]
        for promise, receipt in zip(ctx.promises, receipts, strict=True):
            for dependency in promise.after:
                data_id = self.next_id()
                receipts[dependency].output_data_receivers.append(DataReceiver(data_id, receipt.receiver_id))
                receipt.input_data_ids.append(data_id)
        self.new_receipts.extend(receipts)
        self.result = receipts[result.index] if isinstance(result, PromiseRef) else result


def permission_problem(
    permission: FunctionCallPermission, receiver_id: str, actions: Sequence[Action]
) -> dict[str, Any] | None:
    """Why a function-call access key may not sign `actions` to `receiver_id` (nearcore's
    InvalidAccessKeyError), or None."""
    if len(actions) != 1 or not isinstance(actions[0], FunctionCall):
        return {"RequiresFullAccess": None}
    call = actions[0]
    if call.deposit > 0:
        return {"DepositWithFunctionCall": None}
    if receiver_id != permission.receiver_id:
        return {"ReceiverMismatch": {"tx_receiver": receiver_id, "ak_receiver": permission.receiver_id}}
    if permission.method_names and call.method_name not in permission.method_names:
        return {"MethodNameMismatch": {"method_name": call.method_name}}
    return None


def system_transfer(
    receipt_id: str, receiver_id: str, amount: int, tx_hash: str, *, gas_refund_key: PublicKey | None = None
) -> ActionReceipt:
    """A refund-style receipt (predecessor `system`), free to execute. A gas refund names the signer's key
    so that a function-call key gets its allowance back."""
    return ActionReceipt(
        receipt_id=receipt_id,
        predecessor_id=SYSTEM_ACCOUNT,
        receiver_id=receiver_id,
        signer_id=receiver_id if gas_refund_key is not None else SYSTEM_ACCOUNT,
        signer_public_key=gas_refund_key or ZERO_PUBLIC_KEY,
        gas_price=0,
        actions=(Transfer(amount),),
        tx_hash=tx_hash,
    )


def _profile_view(profile: Counter[str]) -> list[dict[str, str]]:
    action_costs = set(ACTION_COST_NAMES.values()) | {
        "NEW_ACTION_RECEIPT",
        "NEW_DATA_RECEIPT_BASE",
        "NEW_DATA_RECEIPT_BYTE",
        "ACTION",
    }
    return [
        {
            "cost_category": "ACTION_COST" if cost in action_costs else "WASM_HOST_COST",
            "cost": cost,
            "gas_used": str(gas),
        }
        for cost, gas in sorted(profile.items())
        if gas
    ]


def apply_action_receipt(
    receipt: ActionReceipt,
    block: BlockContext,
    update: StateUpdate,
    input_data: Sequence[bytes | None],
    *,
    registrar_id: str,
    gas_price: int,
    enforce_storage_staking: bool = True,
) -> ReceiptResult:
    """Apply `receipt` on `update` (left uncommitted: the caller commits it, or drops it on failure —
    a failed receipt leaves only its refunds behind, which this function writes into a fresh update).

    With `enforce_storage_staking`, a receipt whose actions all succeeded still fails, like nearcore's, with
    `LackBalanceForState` (action index null) when an account it wrote no longer holds the balance its storage
    needs (see `storage_stake_shortfall`)."""
    if receipt.is_refund:
        return _apply_refund(receipt, block, update)

    app = ReceiptApplication(receipt, block, update, input_data, registrar_id)
    app.charge(fees.ACTION_RECEIPT_CREATION.execution, "NEW_ACTION_RECEIPT")
    failure: dict[str, Any] | None = None
    for index, action in enumerate(receipt.actions):
        try:
            app.apply(action)
        except ActionFailure as exc:
            failure = {"ActionError": {"index": index, "kind": exc.kind}}
            break
    if failure is None and enforce_storage_staking:
        failure = _storage_staking_failure(update)

    budget = receipt_gas_budget(receipt.actions)
    outgoing: list[Receipt] = []
    if failure is None:
        outgoing.extend(app.new_receipts)
        outgoing.extend(app.extra_receipts)
        if isinstance(app.result, ActionReceipt):
            app.result.output_data_receivers.extend(receipt.output_data_receivers)
            status: dict[str, Any] = {"SuccessReceiptId": app.result.receipt_id}
        else:
            status = success_value(app.result)
            outgoing.extend(_data_receipts(app, app.result))
        gas_refund = budget - app.used
        deposit_refund = 0
    else:
        status = {"Failure": failure}
        outgoing.extend(_data_receipts(app, None))
        gas_refund = budget - app.burnt
        deposit_refund = total_deposit(receipt.actions)

    if deposit_refund > 0 and not receipt.is_refund:
        outgoing.append(system_transfer(app.next_id(), receipt.predecessor_id, deposit_refund, receipt.tx_hash))
    if gas_refund > 0:
        outgoing.append(
            system_transfer(
                app.next_id(),
                receipt.signer_id,
                gas_refund * receipt.gas_price,
                receipt.tx_hash,
                gas_refund_key=receipt.signer_public_key,
            )
        )
    outcome = ExecutionOutcome(
        id=receipt.receipt_id,
        block_hash=block.hash,
        block_height=block.height,
        logs=app.logs,
        receipt_ids=[r.receipt_id for r in outgoing if isinstance(r, ActionReceipt)],
        gas_burnt=app.burnt,
        tokens_burnt=app.burnt * gas_price,
        executor_id=receipt.receiver_id,
        status=status,
        metadata={"version": 3, "gas_profile": _profile_view(app.profile)},
    )
    return ReceiptResult(outcome, outgoing)


def storage_stake_shortfall(account: AccountRecord) -> int:
    """yoctoNEAR `account` lacks to pay for its storage (nearcore's `check_storage_stake`): every byte of
    `storage_usage` locks STORAGE_PRICE_PER_BYTE of the balance (liquid and staked), except for zero-balance
    accounts (NEP-448: at most ZERO_BALANCE_ACCOUNT_STORAGE_LIMIT bytes), which need none."""
    required = account.storage_usage * STORAGE_PRICE_PER_BYTE
    available = account.amount + account.locked
    if available >= required or account.storage_usage <= ZERO_BALANCE_ACCOUNT_STORAGE_LIMIT:
        return 0
    return required - available


def _storage_staking_failure(update: StateUpdate) -> dict[str, Any] | None:
    for account_id in update.written_accounts():
        account = update.account(account_id)
        if account is None:
            continue
        shortfall = storage_stake_shortfall(account)
        if shortfall:
            kind = {"LackBalanceForState": {"account_id": account_id, "amount": str(shortfall)}}
            return {"ActionError": {"index": None, "kind": kind}}
    return None


def _data_receipts(app: ReceiptApplication, data: bytes | None) -> list[Receipt]:
    return [
        DataReceipt(
            receipt_id=app.next_id(),
            predecessor_id=app.receipt.receiver_id,
            receiver_id=receiver.receiver_id,
            data_id=receiver.data_id,
            data=data,
            tx_hash=app.receipt.tx_hash,
        )
        for receiver in app.receipt.output_data_receivers
    ]


def _apply_refund(receipt: ActionReceipt, block: BlockContext, update: StateUpdate) -> ReceiptResult:
    account = update.account(receipt.receiver_id)
    amount = actions_deposit(receipt.actions)
    if account is None:
        status: dict[str, Any] = {
            "Failure": {
                "ActionError": {"index": 0, "kind": {"AccountDoesNotExist": {"account_id": receipt.receiver_id}}}
            }
        }
    else:
        update.set_account(receipt.receiver_id, replace(account, amount=account.amount + amount))
        if receipt.signer_id == receipt.receiver_id and receipt.signer_public_key != ZERO_PUBLIC_KEY:
            _refund_allowance(update, receipt, amount)
        status = success_value(b"")
    outcome = ExecutionOutcome(
        id=receipt.receipt_id,
        block_hash=block.hash,
        block_height=block.height,
        logs=[],
        receipt_ids=[],
        gas_burnt=0,
        tokens_burnt=0,
        executor_id=receipt.receiver_id,
        status=status,
        metadata={"version": 3, "gas_profile": []},
    )
    return ReceiptResult(outcome, [])


def _refund_allowance(update: StateUpdate, receipt: ActionReceipt, amount: int) -> None:
    key = update.access_key(receipt.receiver_id, receipt.signer_public_key)
    if key is None or key.permission is None or key.permission.allowance is None:
        return
    permission = replace(key.permission, allowance=key.permission.allowance + amount)
    update.put_record(
        access_key_key(receipt.receiver_id, receipt.signer_public_key), replace(key, permission=permission)
    )


def view_call(
    state: StateView, block: BlockContext, account_id: str, method_name: str, args: bytes
) -> tuple[bytes, list[str]]:
    """A read-only call at `block`; raises FunctionCallFailure (the view's `error`)."""
    account = state.account(account_id)
    code = None if account is None else account.code
    ctx = CallContext(
        state=state,
        is_view=True,
        current_account_id=account_id,
        predecessor_account_id=account_id,
        signer_account_id=account_id,
        signer_account_pk=ZERO_PUBLIC_KEY.text,
        attached_deposit=0,
        prepaid_gas=fees.VIEW_GAS_LIMIT,
        block=block,
        receipt_id=block.hash,
    )
    result = run_method(ctx, code, method_name, args)
    if isinstance(result, PromiseRef):
        raise prohibited_in_view("promise_return")
    return result, ctx.logs
