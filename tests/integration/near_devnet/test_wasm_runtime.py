"""Wasm contracts on the devnet, deployed and called with py-near like on a real node: input and return
values, storage and storage staking, logs, panics and traps, promises (transfers, cross-contract calls with
callbacks, account creation with code), gas exhaustion and view-call restrictions.

The contracts are written in WAT and compiled with wasmtime.wat2wasm; every check goes through the RPC."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import base58
import pytest
from py_near import transactions
from py_near.account import Account, ViewFunctionError
from py_near.models import TransactionResult
from swap_devnet.near import DevnetError, NearDevnetProcess
from wasmtime import wat2wasm

from tests.integration.near_devnet.conftest import NEAR, TGAS, AccountFactory, burnt, panic_of, receipt_logs

pytestmark = pytest.mark.integration

U64_MAX = "(i64.const -1)"  # a length of u64::MAX: the argument is a register, the pointer its id
STORAGE_PRICE_PER_BYTE = 10**19


def wat_bytes(data: bytes) -> str:
    return "".join(f"\\{byte:02x}" for byte in data)


# A module that echoes its input: what the factory method below deploys on the accounts it creates.
CHILD_WAT = """
(module
  (import "env" "input" (func $input (param i64)))
  (import "env" "value_return" (func $value_return (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "echo") (call $input (i64.const 0)) (call $value_return (i64.const -1) (i64.const 0))))
"""
CHILD = bytes(wat2wasm(CHILD_WAT))

# Memory layout of the test contract: constants from 0, scratch space from 4096, the child module at 8192.
CONTRACT_WAT = f"""
(module
  (import "env" "input" (func $input (param i64)))
  (import "env" "register_len" (func $register_len (param i64) (result i64)))
  (import "env" "read_register" (func $read_register (param i64 i64)))
  (import "env" "value_return" (func $value_return (param i64 i64)))
  (import "env" "storage_write" (func $storage_write (param i64 i64 i64 i64 i64) (result i64)))
  (import "env" "storage_read" (func $storage_read (param i64 i64 i64) (result i64)))
  (import "env" "storage_remove" (func $storage_remove (param i64 i64 i64) (result i64)))
  (import "env" "log_utf8" (func $log_utf8 (param i64 i64)))
  (import "env" "panic_utf8" (func $panic_utf8 (param i64 i64)))
  (import "env" "current_account_id" (func $current_account_id (param i64)))
  (import "env" "predecessor_account_id" (func $predecessor_account_id (param i64)))
  (import "env" "attached_deposit" (func $attached_deposit (param i64)))
  (import "env" "promise_create"
    (func $promise_create (param i64 i64 i64 i64 i64 i64 i64 i64) (result i64)))
  (import "env" "promise_then"
    (func $promise_then (param i64 i64 i64 i64 i64 i64 i64 i64 i64) (result i64)))
  (import "env" "promise_batch_create" (func $promise_batch_create (param i64 i64) (result i64)))
  (import "env" "promise_batch_action_create_account" (func $create_account (param i64)))
  (import "env" "promise_batch_action_transfer" (func $transfer (param i64 i64)))
  (import "env" "promise_batch_action_deploy_contract" (func $deploy_contract (param i64 i64 i64)))
  (import "env" "promise_batch_action_function_call"
    (func $function_call (param i64 i64 i64 i64 i64 i64 i64)))
  (import "env" "promise_result" (func $promise_result (param i64 i64) (result i64)))
  (import "env" "promise_return" (func $promise_return (param i64)))
  (import "env" "alt_bn128_g1_sum" (func $alt_bn128_g1_sum (param i64 i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "k")
  (data (i32.const 8) "b")
  (data (i32.const 16) "boom")
  (data (i32.const 32) "{wat_bytes(NEAR.to_bytes(16, "little"))}")
  (data (i32.const 48) "{wat_bytes(bytes(16))}")
  (data (i32.const 64) "echo")
  (data (i32.const 72) "fail")
  (data (i32.const 80) "on_result")
  (data (i32.const 96) "failed")
  (data (i32.const 104) "hi")
  (data (i32.const 112) "sub.")
  (data (i32.const 8192) "{wat_bytes(CHILD)}")

  (func (export "echo") (call $input (i64.const 0)) (call $value_return {U64_MAX} (i64.const 0)))

  ;; Stores the input under "k"; returns the value it replaced, if any.
  (func (export "put")
    (call $input (i64.const 0))
    (if (i64.eq (call $storage_write (i64.const 1) (i64.const 0) {U64_MAX} (i64.const 0) (i64.const 1))
                (i64.const 1))
      (then (call $value_return {U64_MAX} (i64.const 1)))))

  (func (export "get")
    (if (i64.eq (call $storage_read (i64.const 1) (i64.const 0) (i64.const 2)) (i64.const 1))
      (then (call $value_return {U64_MAX} (i64.const 2)))))

  (func (export "del")
    (if (i64.eq (call $storage_remove (i64.const 1) (i64.const 0) (i64.const 3)) (i64.const 1))
      (then (call $value_return {U64_MAX} (i64.const 3)))))

  ;; Stores 4000 bytes under "b".
  (func (export "fill")
    (drop (call $storage_write (i64.const 1) (i64.const 8) (i64.const 4000) (i64.const 16384) (i64.const 1))))

  ;; Logs the input.
  (func (export "log")
    (call $input (i64.const 0))
    (call $read_register (i64.const 0) (i64.const 4096))
    (call $log_utf8 (call $register_len (i64.const 0)) (i64.const 4096)))

  (func (export "fail") (call $panic_utf8 (i64.const 4) (i64.const 16)))
  (func (export "trap") unreachable)
  (func (export "spin") (loop $forever (br $forever)))
  (func (export "curve") (call $alt_bn128_g1_sum (i64.const 0) (i64.const 0) (i64.const 0)))

  (func (export "whoami")
    (call $predecessor_account_id (i64.const 0))
    (call $value_return {U64_MAX} (i64.const 0)))

  ;; Returns the attached deposit, u128 little-endian.
  (func (export "deposit")
    (call $attached_deposit (i64.const 4096))
    (call $value_return (i64.const 16) (i64.const 4096)))

  ;; Sends 1 NEAR to the account named by the input.
  (func (export "pay")
    (call $input (i64.const 0))
    (call $transfer (call $promise_batch_create {U64_MAX} (i64.const 0)) (i64.const 32)))

  ;; Calls `echo` ("hi") or `fail` on the account named by the input, then its own `on_result`.
  (func $call_then (param $method i64)
    (call $input (i64.const 0))
    (call $current_account_id (i64.const 1))
    (call $promise_return
      (call $promise_then
        (call $promise_create {U64_MAX} (i64.const 0) (i64.const 4) (local.get $method)
          (i64.const 2) (i64.const 104) (i64.const 48) (i64.const {10 * TGAS}))
        {U64_MAX} (i64.const 1) (i64.const 9) (i64.const 80) (i64.const 0) (i64.const 0) (i64.const 48)
        (i64.const {10 * TGAS}))))
  (func (export "call_echo") (call $call_then (i64.const 64)))
  (func (export "call_fail") (call $call_then (i64.const 72)))

  ;; The callback: the called method's value, or "failed".
  (func (export "on_result")
    (if (i64.eq (call $promise_result (i64.const 0) (i64.const 4)) (i64.const 1))
      (then (call $value_return {U64_MAX} (i64.const 4)))
      (else (call $value_return (i64.const 6) (i64.const 96)))))

  ;; Creates sub.<this account> with 1 NEAR and the child module, and calls its `echo` with "hi".
  (func (export "spawn") (local $promise i64)
    (call $current_account_id (i64.const 5))
    (memory.copy (i32.const 4096) (i32.const 112) (i32.const 4))
    (call $read_register (i64.const 5) (i64.const 4100))
    (local.set $promise
      (call $promise_batch_create (i64.add (call $register_len (i64.const 5)) (i64.const 4)) (i64.const 4096)))
    (call $create_account (local.get $promise))
    (call $transfer (local.get $promise) (i64.const 32))
    (call $deploy_contract (local.get $promise) (i64.const {len(CHILD)}) (i64.const 8192))
    (call $function_call (local.get $promise) (i64.const 4) (i64.const 64) (i64.const 2) (i64.const 104)
      (i64.const 48) (i64.const {5 * TGAS}))
    (call $promise_return (local.get $promise))))
"""
CONTRACT = bytes(wat2wasm(CONTRACT_WAT))


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


async def deployed(near_devnet: NearDevnetProcess, near_account: AccountFactory, name: str, **kwargs: Any) -> Account:
    """A fresh account running CONTRACT, deployed with an ordinary DeployContract transaction."""
    owner = await near_account(await near_devnet.acreate_account(name, **kwargs))
    result = await owner.deploy_contract(CONTRACT)
    assert result.status == {"SuccessValue": ""}, result.status
    return owner


async def call(
    signer: Account, contract_id: str, method: str, args: bytes = b"", *, gas: int = 100 * TGAS, deposit: int = 0
) -> TransactionResult:
    """A function call with raw (non-JSON) arguments."""
    action = transactions.create_function_call_action(method, args, gas, deposit)
    result = await signer.sign_and_submit_tx(contract_id, [action])
    assert isinstance(result, TransactionResult)
    return result


def returned(result: TransactionResult) -> bytes:
    assert "SuccessValue" in result.status, result.status
    return base64.b64decode(result.status["SuccessValue"])


def failure_kind(result: TransactionResult) -> dict[str, Any]:
    """The ActionError of the first failed receipt: {"index", "kind"}."""
    for outcome in result.receipt_outcome:
        if "Failure" in outcome.status:
            error: dict[str, Any] = outcome.status["Failure"]["ActionError"]
            return error
    raise AssertionError(f"no receipt failed: {result.status}")


async def view_raw(near_devnet: NearDevnetProcess, account_id: str, method: str, args: bytes = b"") -> Any:
    return await near_devnet.arpc(
        "query",
        {
            "request_type": "call_function",
            "finality": "optimistic",
            "account_id": account_id,
            "method_name": method,
            "args_base64": base64.b64encode(args).decode(),
        },
    )


async def executed_outcomes(near_devnet: NearDevnetProcess, result: TransactionResult) -> list[dict[str, Any]]:
    """The transaction's receipt outcomes as the `tx` method reports them (with `executor_id`)."""
    tx = await near_devnet.arpc(
        "tx", {"tx_hash": result.transaction.hash, "sender_account_id": result.transaction.signer_id}
    )
    return [outcome["outcome"] for outcome in tx["receipts_outcome"]]


async def account_view(near_devnet: NearDevnetProcess, account_id: str) -> dict[str, Any]:
    view: dict[str, Any] = await near_devnet.arpc(
        "query", {"request_type": "view_account", "finality": "optimistic", "account_id": account_id}
    )
    return view


# --------------------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------------------


async def test_input_value_return_and_context(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    contract = await deployed(near_devnet, near_account, "echo")
    caller = await near_account(await near_devnet.acreate_account("caller"))

    result = await caller.function_call(contract.account_id, "echo", {"x": [1, 2]})
    assert json.loads(returned(result)) == {"x": [1, 2]}
    assert returned(await call(caller, contract.account_id, "whoami")) == caller.account_id.encode()
    paid = await call(caller, contract.account_id, "deposit", deposit=12345)
    assert int.from_bytes(returned(paid), "little") == 12345
    assert await near_devnet.aview(contract.account_id, "echo", {"via": "view"}) == {"via": "view"}
    # An ordinary view through py-near, too.
    viewed = await caller.view_function(contract.account_id, "echo", {"n": 7})
    assert viewed.result == {"n": 7}


async def test_storage_round_trip_and_usage(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    contract = await deployed(near_devnet, near_account, "store")
    caller = await near_account(await near_devnet.acreate_account("writer"))
    usage_before = (await account_view(near_devnet, contract.account_id))["storage_usage"]
    assert usage_before == 100 + 82 + len(CONTRACT)  # account record, one full-access key, the code

    first = await call(caller, contract.account_id, "put", b"apple")
    assert returned(first) == b""
    usage = (await account_view(near_devnet, contract.account_id))["storage_usage"]
    assert usage == usage_before + len(b"k") + len(b"apple") + 40

    second = await call(caller, contract.account_id, "put", b"pear")
    assert returned(second) == b"apple"  # storage_write hands back the value it replaced
    assert (await account_view(near_devnet, contract.account_id))["storage_usage"] == usage - 1
    assert returned(await call(caller, contract.account_id, "get")) == b"pear"
    assert bytes((await view_raw(near_devnet, contract.account_id, "get"))["result"]) == b"pear"
    state = await near_devnet.arpc(
        "query", {"request_type": "view_state", "finality": "optimistic", "account_id": contract.account_id}
    )
    assert state["values"] == [{"key": base64.b64encode(b"k").decode(), "value": base64.b64encode(b"pear").decode()}]

    assert returned(await call(caller, contract.account_id, "del")) == b"pear"
    assert returned(await call(caller, contract.account_id, "get")) == b""
    assert (await account_view(near_devnet, contract.account_id))["storage_usage"] == usage_before


async def test_logs_reach_the_receipt_outcome(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    contract = await deployed(near_devnet, near_account, "logger")
    result = await call(contract, contract.account_id, "log", "héllo from wasm".encode())
    assert receipt_logs(result) == ["héllo from wasm"]
    assert result.status == {"SuccessValue": ""}


async def test_panics_traps_and_resolve_errors(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    contract = await deployed(near_devnet, near_account, "panics")
    caller = await near_account(await near_devnet.acreate_account("victim"))
    before = await near_devnet.abalance(caller.account_id)

    panicked = await call(caller, contract.account_id, "fail", deposit=NEAR)
    assert panic_of(panicked) == "Smart contract panicked: boom"
    assert failure_kind(panicked)["index"] == 0
    # The deposit of the failed call comes back; only gas is spent.
    assert await near_devnet.abalance(caller.account_id) == before - burnt(panicked)

    trapped = await call(caller, contract.account_id, "trap")
    assert panic_of(trapped) == "WebAssembly trap: An `unreachable` opcode was executed."
    missing = await call(caller, contract.account_id, "no_such_method")
    assert failure_kind(missing)["kind"] == {"FunctionCallError": {"MethodResolveError": "MethodNotFound"}}
    # A host function the devnet links but does not implement fails the call, not the deployment.
    unsupported = await call(caller, contract.account_id, "curve")
    assert panic_of(unsupported) == "alt_bn128_g1_sum is not allowed in view calls"

    with pytest.raises(ViewFunctionError, match=r'HostError\(GuestPanic \{ panic_msg: "boom" \}\)'):
        await caller.view_function(contract.account_id, "fail", {})
    with pytest.raises(ViewFunctionError, match=r"WasmTrap\(Unreachable\)"):
        await caller.view_function(contract.account_id, "trap", {})
    with pytest.raises(ViewFunctionError, match="MethodNotFound"):
        await caller.view_function(contract.account_id, "no_such_method", {})


async def test_view_calls_cannot_change_state(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    contract = await deployed(near_devnet, near_account, "viewonly")
    with pytest.raises(DevnetError, match=r'ProhibitedInView \{ method_name: "storage_write" \}'):
        await near_devnet.aview(contract.account_id, "put", {})
    with pytest.raises(DevnetError, match=r'ProhibitedInView \{ method_name: "predecessor_account_id" \}'):
        await near_devnet.aview(contract.account_id, "whoami")
    with pytest.raises(DevnetError, match=r'ProhibitedInView \{ method_name: "promise_batch_create" \}'):
        await near_devnet.aview(contract.account_id, "pay", {})
    state = await near_devnet.arpc(
        "query", {"request_type": "view_state", "finality": "optimistic", "account_id": contract.account_id}
    )
    assert state["values"] == []


async def test_promise_transfer(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    contract = await deployed(near_devnet, near_account, "payer")
    caller = await near_account(await near_devnet.acreate_account("trigger"))
    payee = await near_devnet.acreate_account("payee", balance=NEAR)
    contract_before = await near_devnet.abalance(contract.account_id)

    result = await call(caller, contract.account_id, "pay", payee.account_id.encode())

    assert result.status == {"SuccessValue": ""}
    assert await near_devnet.abalance(payee.account_id) == 2 * NEAR
    assert await near_devnet.abalance(contract.account_id) == contract_before - NEAR
    outcomes = await executed_outcomes(near_devnet, result)
    assert [outcome["status"] for outcome in outcomes if outcome["executor_id"] == payee.account_id] == [
        {"SuccessValue": ""}
    ]


async def test_cross_contract_call_with_callback(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    first = await deployed(near_devnet, near_account, "caller-contract")
    second = await deployed(near_devnet, near_account, "callee-contract")
    user = await near_account(await near_devnet.acreate_account("user"))
    before = await near_devnet.abalance(user.account_id)

    ok = await call(user, first.account_id, "call_echo", second.account_id.encode())
    assert returned(ok) == b"hi"
    outcomes = await executed_outcomes(near_devnet, ok)
    # The call, the callee, the callback; the rest are gas refunds to the user.
    executors = [outcome["executor_id"] for outcome in outcomes if outcome["executor_id"] != user.account_id]
    assert executors == [first.account_id, second.account_id, first.account_id]
    # Unused gas comes back: the user pays what was burnt, nowhere near the 100 TGas attached.
    assert await near_devnet.abalance(user.account_id) == before - burnt(ok)
    assert burnt(ok) < 50 * TGAS * 100_000_000

    failed = await call(user, first.account_id, "call_fail", second.account_id.encode())
    assert returned(failed) == b"failed"  # the callback saw promise_result 2
    assert panic_of(failed) == "Smart contract panicked: boom"  # the callee's receipt


async def test_running_out_of_gas(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    contract = await deployed(near_devnet, near_account, "spinner")
    caller = await near_account(await near_devnet.acreate_account("spin-caller"))
    before = await near_devnet.abalance(caller.account_id)

    result = await call(caller, contract.account_id, "spin", gas=10 * TGAS)

    assert panic_of(result) == "Exceeded the prepaid gas."
    [executed] = [o for o in await executed_outcomes(near_devnet, result) if o["executor_id"] == contract.account_id]
    assert executed["gas_burnt"] >= 10 * TGAS  # all the prepaid gas is burnt, with the action's fees
    assert await near_devnet.abalance(caller.account_id) == before - burnt(result)


async def test_storage_staking(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    # Enough for the account, its key, the code and 400 more bytes, plus the deployment's gas.
    balance = (100 + 82 + len(CONTRACT) + 400) * STORAGE_PRICE_PER_BYTE + NEAR // 1000
    contract = await deployed(near_devnet, near_account, "staker", balance=balance)
    caller = await near_account(await near_devnet.acreate_account("filler"))
    view = await account_view(near_devnet, contract.account_id)
    usage, amount = view["storage_usage"], int(view["amount"])

    result = await call(caller, contract.account_id, "fill")

    needed = (usage + len(b"b") + 4000 + 40) * STORAGE_PRICE_PER_BYTE
    assert failure_kind(result) == {
        "index": None,
        "kind": {"LackBalanceForState": {"account_id": contract.account_id, "amount": str(needed - amount)}},
    }
    after = await account_view(near_devnet, contract.account_id)
    assert (after["storage_usage"], int(after["amount"])) == (usage, amount)
    state = await near_devnet.arpc(
        "query", {"request_type": "view_state", "finality": "optimistic", "account_id": contract.account_id}
    )
    assert state["values"] == []

    # A write the balance covers goes through.
    small = await call(caller, contract.account_id, "put", b"x" * 100)
    assert small.status == {"SuccessValue": ""}
    assert (await account_view(near_devnet, contract.account_id))["storage_usage"] == usage + 1 + 100 + 40


async def test_deploy_contract_transactions(near_devnet: NearDevnetProcess, near_account: AccountFactory) -> None:
    owner = await near_account(await near_devnet.acreate_account("deployer"))
    result = await owner.sign_and_submit_tx(
        owner.account_id,
        [
            transactions.create_deploy_contract_action(CONTRACT),
            transactions.create_function_call_action("echo", b"deployed", 10 * TGAS, 0),
        ],
    )
    assert returned(result) == b"deployed"
    code = await near_devnet.arpc(
        "query", {"request_type": "view_code", "finality": "optimistic", "account_id": owner.account_id}
    )
    assert base64.b64decode(code["code_base64"]) == CONTRACT
    assert code["hash"] == base58.b58encode(hashlib.sha256(CONTRACT).digest()).decode()

    # The contract creates an account, funds it, deploys the child module there and calls it.
    spawned = await call(owner, owner.account_id, "spawn")
    assert returned(spawned) == b"hi"
    child_id = f"sub.{owner.account_id}"
    assert await near_devnet.abalance(child_id) == NEAR
    child_code = await near_devnet.arpc(
        "query", {"request_type": "view_code", "finality": "optimistic", "account_id": child_id}
    )
    assert base64.b64decode(child_code["code_base64"]) == CHILD

    # Bytes that are not a valid module deploy, but every call to them fails to compile.
    broken = await near_account(await near_devnet.acreate_account("broken"))
    deployed_broken = await broken.deploy_contract(b"\0asm\x01\0\0\0garbage")
    assert deployed_broken.status == {"SuccessValue": ""}
    failed = await call(broken, broken.account_id, "echo")
    assert failure_kind(failed)["kind"] == {
        "FunctionCallError": {"CompilationError": {"PrepareError": "Deserialization"}}
    }
