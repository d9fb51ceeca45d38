"""NEAR wasm contracts on the devnet: code that starts with `\\0asm` runs here, with wasmtime, against the
runtime's CallContext (state, promises, logs, gas).

A call compiles the module (compiled modules are cached by code hash), links it against nearcore's host
functions (module `env`, nearcore's exact signatures: every pointer, length, register id and amount an i64,
`abort` and `gas` i32), instantiates it in a fresh store and calls the exported method, which must take and
return nothing. The value given to `value_return` (or the receipt named by `promise_return`) is the result.

Host functions:

* registers: `read_register`, `register_len`, `write_register`; a length of u64::MAX reads the argument from
  the register whose id is given as the pointer, like nearcore. nearcore's register limits apply.
* context: `current_account_id`, `signer_account_id`, `signer_account_pk` (borsh: key type byte + key),
  `predecessor_account_id`, `refund_to_account_id` (the predecessor), `input`, `block_index`,
  `block_timestamp`, `epoch_height` (always 1: the devnet has one epoch), `storage_usage`,
  `current_contract_code`.
* economics: `account_balance`, `account_locked_balance`, `attached_deposit` (u128 little-endian written to
  memory), `prepaid_gas`, `used_gas`; `validator_stake` and `validator_total_stake` report 0 (no validators).
* math: `random_seed` (derived from the block hash), `sha256`, `keccak256`, `keccak512`, `ripemd160`,
  `ed25519_verify`.
* miscellaneous: `value_return`, `panic`, `panic_utf8`, `log_utf8`, `log_utf16`, `abort` (AssemblyScript),
  `gas` (an injected instruction counter, if the module imports one), `sandbox_debug_log` (written to the
  devnet's log, free).
* promises: `promise_create`, `promise_then`, `promise_and`, `promise_batch_create`, `promise_batch_then`,
  the batch actions `create_account`, `deploy_contract`, `function_call`, `function_call_weight`,
  `transfer`, `stake`, `add_key_with_full_access`, `add_key_with_function_call`, `delete_key`,
  `delete_account`, and `promise_results_count`, `promise_result` (0 not ready, 1 successful with the value
  in the register, 2 failed), `promise_return`.
* storage: `storage_write`, `storage_read`, `storage_remove` (write and remove put the old value in the
  register and return 1, or return 0), `storage_has_key`; the long deprecated `storage_iter_*` fail with
  nearcore's `Deprecated` host error.

The rest of nearcore's imports (alt_bn128, BLS12-381, ecrecover, yield/resume, global contracts, state init,
`promise_set_refund_to`, the newer hash and signature functions) link, so a module importing them runs, but
calling one fails the call with the host error `ProhibitedInView { method_name: <the function> }`. An import
nearcore does not have, or one with another signature, fails the call with a link error. In view calls the
host functions nearcore refuses there (signer, predecessor, gas, storage writes, promises) fail with
`ProhibitedInView`, as on nearcore.

Gas: a call pays CONTRACT_EXECUTION_BASE (loading the contract), every executed wasm instruction
`wasm_regular_op_cost` (822,756 gas: wasmtime fuel, one unit per instruction, priced at REGULAR_OP_COST), and
every host function nearcore's costs: `base` per call, memory and register traffic per byte, UTF-8/16
decoding, hashing, storage, logs, and the promise fees CallContext charges (receipt and action send fees burnt,
execution fees and attached gas used). The fuel given to the module is always the gas left (prepaid minus
used) divided by REGULAR_OP_COST, topped up after each host function, so a call that runs out traps, fails with
`Exceeded the prepaid gas.` and burns all its prepaid gas.

Failures have nearcore's shapes: a panic is `ExecutionError: "Smart contract panicked: ..."`, a trap
`ExecutionError: "WebAssembly trap: An `unreachable` opcode was executed."` (and view calls report the Debug
form, `WasmTrap(Unreachable)`), a missing export `MethodResolveError: MethodNotFound`, bytes that do not
compile `CompilationError: PrepareError: Deserialization`.

Memory: a module that defines its own memory uses it; one that imports `env.memory`, as modules prepared by
nearcore do, gets nearcore's 1024 initial pages (when its import allows it), and no memory grows past
nearcore's 2048 pages.

Storage staking is not the executor's business: after every receipt the runtime checks that the accounts it
wrote still hold 10^19 yoctoNEAR per stored byte (runtime.storage_stake_shortfall).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from Crypto.Hash import RIPEMD160, keccak
from wasmtime import (
    Config,
    Engine,
    FuncType,
    Instance,
    Limits,
    Linker,
    Memory,
    MemoryType,
    Module,
    Store,
    Trap,
    TrapCode,
    ValType,
    WasmtimeError,
)

from swap_devnet.near import fees
from swap_devnet.near.codec import (
    SECP256K1_KEY_TYPE,
    Action,
    AddKey,
    CreateAccount,
    DeleteAccount,
    DeleteKey,
    DeployContract,
    FunctionCall,
    FunctionCallPermission,
    PublicKey,
    Stake,
    Transfer,
)
from swap_devnet.near.ids import is_valid_account_id
from swap_devnet.near.keys import ED25519_KEY_TYPE, b58decode, crypto_hash, verify_signature
from swap_devnet.near.runtime import (
    CallContext,
    FunctionCallFailure,
    PromiseRef,
    _GasExceeded,
    gas_exceeded_failure,
    host_failure,
    link_failure,
    method_resolve_failure,
    panic_failure,
    prepare_failure,
    prohibited_in_view,
    wasm_trap_failure,
)

log = logging.getLogger(__name__)

U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1
WASM_PAGE = 65_536

# nearcore's limit config (parameters.snap).
INITIAL_MEMORY_PAGES = 1_024
MAX_MEMORY_PAGES = 2_048
MAX_REGISTER_SIZE = 104_857_600
MAX_NUMBER_REGISTERS = 100
REGISTERS_MEMORY_LIMIT = 1_073_741_824
MAX_NUMBER_LOGS = 100
MAX_TOTAL_LOG_LENGTH = 16_384
MAX_LENGTH_STORAGE_KEY = 2_048
MAX_LENGTH_STORAGE_VALUE = 4_194_304
MAX_LENGTH_RETURNED_DATA = 4_194_304
MAX_CONTRACT_SIZE = 4_194_304
MAX_PROMISES_PER_FUNCTION_CALL = 1_024
MAX_INPUT_DATA_DEPENDENCIES = 128
EPOCH_HEIGHT = 1
VALIDATOR_STAKE_BASE = 911_834_726_400

# Compiled modules kept, by code hash.
MODULE_CACHE_SIZE = 64

# Host-function signatures: one letter per parameter, then per result; I = i64, i = i32. None: whatever the
# module declares (a host function only ever stubbed, whose exact signature does not matter here).
_SIGNATURES: dict[str, tuple[str, str] | None] = {
    # Registers
    "read_register": ("II", ""),
    "register_len": ("I", "I"),
    "write_register": ("III", ""),
    # Context
    "current_account_id": ("I", ""),
    "signer_account_id": ("I", ""),
    "signer_account_pk": ("I", ""),
    "predecessor_account_id": ("I", ""),
    "refund_to_account_id": ("I", ""),
    "input": ("I", ""),
    "block_index": ("", "I"),
    "block_timestamp": ("", "I"),
    "epoch_height": ("", "I"),
    "storage_usage": ("", "I"),
    "current_contract_code": ("I", "I"),
    # Economics
    "account_balance": ("I", ""),
    "account_locked_balance": ("I", ""),
    "attached_deposit": ("I", ""),
    "prepaid_gas": ("", "I"),
    "used_gas": ("", "I"),
    # Math
    "random_seed": ("I", ""),
    "sha256": ("III", ""),
    "keccak256": ("III", ""),
    "keccak512": ("III", ""),
    "ripemd160": ("III", ""),
    "ed25519_verify": ("IIIIII", "I"),
    "ecrecover": ("IIIIIII", "I"),
    # Miscellaneous
    "value_return": ("II", ""),
    "panic": ("", ""),
    "panic_utf8": ("II", ""),
    "log_utf8": ("II", ""),
    "log_utf16": ("II", ""),
    "abort": ("iiii", ""),
    "gas": ("i", ""),
    "sandbox_debug_log": ("II", ""),
    # Promises
    "promise_create": ("IIIIIIII", "I"),
    "promise_then": ("IIIIIIIII", "I"),
    "promise_and": ("II", "I"),
    "promise_batch_create": ("II", "I"),
    "promise_batch_then": ("III", "I"),
    "promise_set_refund_to": ("III", ""),
    "promise_batch_action_create_account": ("I", ""),
    "promise_batch_action_deploy_contract": ("III", ""),
    "promise_batch_action_function_call": ("IIIIIII", ""),
    "promise_batch_action_function_call_weight": ("IIIIIIII", ""),
    "promise_batch_action_transfer": ("II", ""),
    "promise_batch_action_stake": ("IIII", ""),
    "promise_batch_action_add_key_with_full_access": ("IIII", ""),
    "promise_batch_action_add_key_with_function_call": ("IIIIIIIII", ""),
    "promise_batch_action_delete_key": ("III", ""),
    "promise_batch_action_delete_account": ("III", ""),
    "promise_batch_action_deploy_global_contract": ("III", ""),
    "promise_batch_action_deploy_global_contract_by_account_id": ("III", ""),
    "promise_batch_action_use_global_contract": ("III", ""),
    "promise_batch_action_use_global_contract_by_account_id": ("III", ""),
    "promise_batch_action_state_init": ("IIII", "I"),
    "promise_batch_action_state_init_by_account_id": ("IIII", "I"),
    "set_state_init_data_entry": ("IIIIII", ""),
    "promise_yield_create": ("IIIIIII", "I"),
    "promise_yield_resume": ("IIII", "i"),
    "promise_results_count": ("", "I"),
    "promise_result": ("II", "I"),
    "promise_return": ("I", ""),
    # Storage
    "storage_write": ("IIIII", "I"),
    "storage_read": ("III", "I"),
    "storage_remove": ("III", "I"),
    "storage_has_key": ("II", "I"),
    "storage_iter_prefix": ("II", "I"),
    "storage_iter_range": ("IIII", "I"),
    "storage_iter_next": ("III", "I"),
    # Validators
    "validator_stake": ("III", ""),
    "validator_total_stake": ("I", ""),
    # Curves, newer hashes and signatures: linked, not implemented.
    "alt_bn128_g1_multiexp": ("III", ""),
    "alt_bn128_g1_sum": ("III", ""),
    "alt_bn128_pairing_check": ("II", "I"),
    "bls12381_p1_sum": ("III", "I"),
    "bls12381_p2_sum": ("III", "I"),
    "bls12381_g1_multiexp": ("III", "I"),
    "bls12381_g2_multiexp": ("III", "I"),
    "bls12381_map_fp_to_g1": ("III", "I"),
    "bls12381_map_fp2_to_g2": ("III", "I"),
    "bls12381_pairing_check": ("II", "I"),
    "bls12381_p1_decompress": ("III", "I"),
    "bls12381_p2_decompress": ("III", "I"),
    "sha3_256": None,
    "sha3_384": None,
    "sha3_512": None,
    "p256_verify": None,
    "promise_yield_create_with_id": None,
    "chain_id": None,
}

_DEPRECATED = frozenset({"storage_iter_prefix", "storage_iter_range", "storage_iter_next"})
# Linked so that modules importing them instantiate; calling one fails the call (see the module docstring).
_UNSUPPORTED = _DEPRECATED | {
    "ecrecover",
    "promise_set_refund_to",
    "promise_batch_action_deploy_global_contract",
    "promise_batch_action_deploy_global_contract_by_account_id",
    "promise_batch_action_use_global_contract",
    "promise_batch_action_use_global_contract_by_account_id",
    "promise_batch_action_state_init",
    "promise_batch_action_state_init_by_account_id",
    "set_state_init_data_entry",
    "promise_yield_create",
    "promise_yield_resume",
    "promise_yield_create_with_id",
    "alt_bn128_g1_multiexp",
    "alt_bn128_g1_sum",
    "alt_bn128_pairing_check",
    "bls12381_p1_sum",
    "bls12381_p2_sum",
    "bls12381_g1_multiexp",
    "bls12381_g2_multiexp",
    "bls12381_map_fp_to_g1",
    "bls12381_map_fp2_to_g2",
    "bls12381_pairing_check",
    "bls12381_p1_decompress",
    "bls12381_p2_decompress",
    "sha3_256",
    "sha3_384",
    "sha3_512",
    "p256_verify",
    "chain_id",
}

# wasmtime trap codes and the nearcore WasmTrap kind each becomes.
_TRAP_KINDS = {
    TrapCode.UNREACHABLE: "Unreachable",
    TrapCode.MEMORY_OUT_OF_BOUNDS: "MemoryOutOfBounds",
    TrapCode.HEAP_MISALIGNED: "MisalignedAtomicAccess",
    TrapCode.TABLE_OUT_OF_BOUNDS: "CallIndirectOOB",
    TrapCode.INDIRECT_CALL_TO_NULL: "IndirectCallToNull",
    TrapCode.BAD_SIGNATURE: "IncorrectCallIndirectSignature",
    TrapCode.INTEGER_OVERFLOW: "IllegalArithmetic",
    TrapCode.INTEGER_DIVISION_BY_ZERO: "IllegalArithmetic",
    TrapCode.BAD_CONVERSION_TO_INTEGER: "IllegalArithmetic",
    TrapCode.STACK_OVERFLOW: "StackOverflow",
}


# --------------------------------------------------------------------------------------------------------------
# Compilation
# --------------------------------------------------------------------------------------------------------------


def _new_engine() -> Engine:
    config = Config()
    config.consume_fuel = True
    return Engine(config)


_ENGINE = _new_engine()
_MODULES: OrderedDict[bytes, Module | str] = OrderedDict()


def compile_module(code: bytes) -> Module:
    """The compiled module of `code`, from the cache when it was compiled before; raises the PrepareError
    failure for bytes wasmtime rejects."""
    key = crypto_hash(code)
    cached = _MODULES.get(key)
    if cached is None:
        try:
            cached = Module(_ENGINE, code)
        except WasmtimeError as exc:
            cached = str(exc)
        _MODULES[key] = cached
        while len(_MODULES) > MODULE_CACHE_SIZE:
            _MODULES.popitem(last=False)
    else:
        _MODULES.move_to_end(key)
    if isinstance(cached, str):
        log.info("contract code %s does not compile: %s", key.hex(), cached)
        raise prepare_failure()
    return cached


def _valtypes(letters: str) -> list[ValType]:
    return [ValType.i64() if letter == "I" else ValType.i32() for letter in letters]


# --------------------------------------------------------------------------------------------------------------
# The host
# --------------------------------------------------------------------------------------------------------------


def _guest_panic(message: str) -> FunctionCallFailure:
    return host_failure("GuestPanic", panic_msg=message)


def _memory_access_violation() -> FunctionCallFailure:
    return host_failure("MemoryAccessViolation")


@dataclass
class _Promise:
    """A promise index the contract holds: one receipt, or a joint promise (`promise_and`) over several."""

    receipts: list[int]
    joint: bool = False


@dataclass
class _Host:
    """The host side of one call: registers, the promise table, the return value, and the fuel bookkeeping
    that turns executed instructions into gas on the CallContext."""

    ctx: CallContext
    store: Store
    input_data: bytes
    memory: Memory | None = None
    registers: dict[int, bytes] = field(default_factory=dict)
    promises: list[_Promise] = field(default_factory=list)
    result: bytes | PromiseRef = b""
    log_length: int = 0
    fuel: int = 0

    # Fuel and gas -------------------------------------------------------------------------------------------

    def refuel(self) -> None:
        """Give the module as much fuel as the gas left pays for."""
        remaining = max(0, self.ctx.prepaid_gas - self.ctx.used)
        self.fuel = remaining // fees.REGULAR_OP_COST
        self.store.set_fuel(self.fuel)

    def charge_instructions(self) -> None:
        """Burn the gas of the instructions executed since the last refuel."""
        left = self.store.get_fuel()
        spent, self.fuel = self.fuel - left, left
        if spent > 0:
            self.ctx.burn(spent * fees.REGULAR_OP_COST, "WASM_INSTRUCTION")

    def pay(self, cost: str, gas: int) -> None:
        if gas:
            self.ctx.burn(gas, cost)

    def pay_base(self) -> None:
        self.pay("BASE", fees.WASM_BASE)

    def refuse_in_view(self, name: str) -> None:
        if self.ctx.is_view:
            raise prohibited_in_view(name)

    # Memory and registers -----------------------------------------------------------------------------------

    def _memory(self) -> Memory:
        if self.memory is None:
            raise _memory_access_violation()
        return self.memory

    def _view(self, ptr: int, length: int) -> bytes:
        memory = self._memory()
        if ptr + length > memory.data_len(self.store):
            raise _memory_access_violation()
        return bytes(memory.read(self.store, ptr, ptr + length)) if length else b""

    def read_memory(self, ptr: int, length: int) -> bytes:
        self.pay("READ_MEMORY_BASE", fees.READ_MEMORY_BASE)
        self.pay("READ_MEMORY_BYTE", length * fees.READ_MEMORY_BYTE)
        return self._view(ptr, length)

    def write_memory(self, ptr: int, data: bytes) -> None:
        self.pay("WRITE_MEMORY_BASE", fees.WRITE_MEMORY_BASE)
        self.pay("WRITE_MEMORY_BYTE", len(data) * fees.WRITE_MEMORY_BYTE)
        memory = self._memory()
        if ptr + len(data) > memory.data_len(self.store):
            raise _memory_access_violation()
        if data:
            memory.write(self.store, data, ptr)

    def read_u128(self, ptr: int) -> int:
        return int.from_bytes(self.read_memory(ptr, 16), "little")

    def write_u128(self, ptr: int, value: int) -> None:
        self.write_memory(ptr, value.to_bytes(16, "little"))

    def read_register_data(self, register_id: int) -> bytes:
        data = self.registers.get(register_id)
        if data is None:
            raise host_failure("InvalidRegisterId", register_id=register_id)
        self.pay("READ_REGISTER_BASE", fees.READ_REGISTER_BASE)
        self.pay("READ_REGISTER_BYTE", len(data) * fees.READ_REGISTER_BYTE)
        return data

    def set_register(self, register_id: int, data: bytes) -> None:
        self.pay("WRITE_REGISTER_BASE", fees.WRITE_REGISTER_BASE)
        self.pay("WRITE_REGISTER_BYTE", len(data) * fees.WRITE_REGISTER_BYTE)
        if len(data) > MAX_REGISTER_SIZE:
            raise _memory_access_violation()
        old = self.registers.get(register_id)
        if old is None and len(self.registers) >= MAX_NUMBER_REGISTERS:
            raise _memory_access_violation()
        total = sum(len(value) for value in self.registers.values()) - len(old or b"") + len(data)
        if total > REGISTERS_MEMORY_LIMIT:
            raise _memory_access_violation()
        self.registers[register_id] = bytes(data)

    def memory_or_register(self, ptr: int, length: int) -> bytes:
        """nearcore's `get_memory_or_register`: `length` u64::MAX names the register `ptr`."""
        if length == U64_MAX:
            return self.read_register_data(ptr)
        return self.read_memory(ptr, length)

    # Strings --------------------------------------------------------------------------------------------------

    def _log_length_exceeded(self, added: int) -> FunctionCallFailure:
        return host_failure("TotalLogLengthExceeded", length=self.log_length + added, limit=MAX_TOTAL_LOG_LENGTH)

    def utf8_string(self, length: int, ptr: int) -> str:
        """A UTF-8 string from memory; `length` u64::MAX reads up to a NUL byte."""
        self.pay("UTF8_DECODING_BASE", fees.UTF8_DECODING_BASE)
        max_length = max(0, MAX_TOTAL_LOG_LENGTH - self.log_length)
        if length != U64_MAX:
            if length > max_length:
                raise self._log_length_exceeded(length)
            data = self.read_memory(ptr, length)
        else:
            data = self._nul_terminated(ptr, max_length, 1)
        self.pay("UTF8_DECODING_BYTE", len(data) * fees.UTF8_DECODING_BYTE)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise host_failure("BadUTF8") from None

    def utf16_string(self, length: int, ptr: int) -> str:
        """A UTF-16LE string from memory; `length` u64::MAX reads up to a NUL code unit."""
        self.pay("UTF16_DECODING_BASE", fees.UTF16_DECODING_BASE)
        max_length = max(0, MAX_TOTAL_LOG_LENGTH - self.log_length)
        data = self._nul_terminated(ptr, max_length, 2) if length == U64_MAX else self.read_memory(ptr, length)
        if len(data) % 2:
            raise host_failure("BadUTF16")
        if len(data) > max_length:
            raise self._log_length_exceeded(len(data))
        self.pay("UTF16_DECODING_BYTE", len(data) * fees.UTF16_DECODING_BYTE)
        try:
            return data.decode("utf-16-le")
        except UnicodeDecodeError:
            raise host_failure("BadUTF16") from None

    def _nul_terminated(self, ptr: int, max_length: int, unit: int) -> bytes:
        """Units of `unit` bytes from `ptr` up to a zero unit, each read charged like nearcore's `get_u8` /
        `get_u16`; longer than `max_length` bytes is TotalLogLengthExceeded."""
        memory_size = self._memory().data_len(self.store)
        read_cost = fees.READ_MEMORY_BASE + unit * fees.READ_MEMORY_BYTE
        data = bytearray()
        offset = 0
        while True:
            self.pay("READ_MEMORY_BASE", read_cost)
            if ptr + offset + unit > memory_size:
                raise _memory_access_violation()
            chunk = self._view(ptr + offset, unit)
            if chunk == bytes(unit):
                return bytes(data)
            if offset + unit > max_length:
                raise self._log_length_exceeded(offset + unit)
            data += chunk
            offset += unit

    def account_id(self, ptr: int, length: int) -> str:
        """nearcore's `read_and_parse_account_id`."""
        data = self.memory_or_register(ptr, length)
        self.pay("UTF8_DECODING_BASE", fees.UTF8_DECODING_BASE)
        self.pay("UTF8_DECODING_BYTE", len(data) * fees.UTF8_DECODING_BYTE)
        try:
            account_id = data.decode("utf-8")
        except UnicodeDecodeError:
            raise host_failure("BadUTF8") from None
        if not is_valid_account_id(account_id):
            raise host_failure("InvalidAccountId")
        return account_id

    def public_key(self, ptr: int, length: int) -> PublicKey:
        """A borsh public key: key type byte, then 32 (ed25519) or 64 (secp256k1) bytes."""
        data = self.memory_or_register(ptr, length)
        sizes = {ED25519_KEY_TYPE: 32, SECP256K1_KEY_TYPE: 64}
        if not data or sizes.get(data[0]) != len(data) - 1:
            raise host_failure("InvalidPublicKey")
        return PublicKey(data[0], data[1:])

    def push_log(self, message: str) -> None:
        self.log_length += len(message.encode())
        if self.log_length > MAX_TOTAL_LOG_LENGTH:
            raise host_failure("TotalLogLengthExceeded", length=self.log_length, limit=MAX_TOTAL_LOG_LENGTH)
        self.ctx.log(message)

    def check_log_count(self) -> None:
        if len(self.ctx.logs) >= MAX_NUMBER_LOGS:
            raise host_failure("NumberOfLogsExceeded", limit=MAX_NUMBER_LOGS)

    # Registers API --------------------------------------------------------------------------------------------

    def read_register(self, register_id: int, ptr: int) -> None:
        self.pay_base()
        self.write_memory(ptr, self.read_register_data(register_id))

    def register_len(self, register_id: int) -> int:
        self.pay_base()
        data = self.registers.get(register_id)
        return U64_MAX if data is None else len(data)

    def write_register(self, register_id: int, data_len: int, data_ptr: int) -> None:
        self.pay_base()
        self.set_register(register_id, self.read_memory(data_ptr, data_len))

    # Context API ------------------------------------------------------------------------------------------------

    def current_account_id(self, register_id: int) -> None:
        self.pay_base()
        self.set_register(register_id, self.ctx.current_account_id.encode())

    def signer_account_id(self, register_id: int) -> None:
        self.pay_base()
        self.refuse_in_view("signer_account_id")
        self.set_register(register_id, self.ctx.signer_account_id.encode())

    def signer_account_pk(self, register_id: int) -> None:
        self.pay_base()
        self.refuse_in_view("signer_account_pk")
        key_type, _, text = self.ctx.signer_account_pk.rpartition(":")
        type_byte = SECP256K1_KEY_TYPE if key_type == "secp256k1" else ED25519_KEY_TYPE
        self.set_register(register_id, bytes([type_byte]) + b58decode(text))

    def predecessor_account_id(self, register_id: int) -> None:
        self.pay_base()
        self.refuse_in_view("predecessor_account_id")
        self.set_register(register_id, self.ctx.predecessor_account_id.encode())

    def refund_to_account_id(self, register_id: int) -> None:
        self.pay_base()
        self.refuse_in_view("refund_to_account_id")
        self.set_register(register_id, self.ctx.predecessor_account_id.encode())

    def input(self, register_id: int) -> None:
        self.pay_base()
        self.set_register(register_id, self.input_data)

    def block_index(self) -> int:
        self.pay_base()
        return self.ctx.block_height

    def block_timestamp(self) -> int:
        self.pay_base()
        return self.ctx.block_timestamp

    def epoch_height(self) -> int:
        self.pay_base()
        return EPOCH_HEIGHT

    def storage_usage(self) -> int:
        self.pay_base()
        return self.ctx.storage_usage()

    def current_contract_code(self, register_id: int) -> int:
        self.pay_base()
        account = self.ctx.state.account(self.ctx.current_account_id)
        if account is None or account.code is None:
            return 0
        self.set_register(register_id, crypto_hash(account.code))
        return 1

    # Economics API ----------------------------------------------------------------------------------------------

    def account_balance(self, balance_ptr: int) -> None:
        self.pay_base()
        self.write_u128(balance_ptr, self.ctx.account_balance())

    def account_locked_balance(self, balance_ptr: int) -> None:
        self.pay_base()
        self.write_u128(balance_ptr, self.ctx.account_locked_balance())

    def attached_deposit(self, balance_ptr: int) -> None:
        self.pay_base()
        self.write_u128(balance_ptr, self.ctx.attached_deposit)

    def prepaid_gas(self) -> int:
        self.pay_base()
        self.refuse_in_view("prepaid_gas")
        return self.ctx.prepaid_gas

    def used_gas(self) -> int:
        self.pay_base()
        self.refuse_in_view("used_gas")
        return self.ctx.used

    def validator_stake(self, account_id_len: int, account_id_ptr: int, stake_ptr: int) -> None:
        self.pay_base()
        self.account_id(account_id_ptr, account_id_len)
        self.pay("VALIDATOR_STAKE_BASE", VALIDATOR_STAKE_BASE)
        self.write_u128(stake_ptr, 0)

    def validator_total_stake(self, stake_ptr: int) -> None:
        self.pay_base()
        self.pay("VALIDATOR_TOTAL_STAKE_BASE", VALIDATOR_STAKE_BASE)
        self.write_u128(stake_ptr, 0)

    # Math API -----------------------------------------------------------------------------------------------------

    def random_seed(self, register_id: int) -> None:
        self.pay_base()
        self.set_register(register_id, self.ctx.random_seed)

    def sha256(self, value_len: int, value_ptr: int, register_id: int) -> None:
        value = self.memory_or_register(value_ptr, value_len)
        self.set_register(register_id, self.ctx.sha256(value))

    def keccak256(self, value_len: int, value_ptr: int, register_id: int) -> None:
        self.pay("KECCAK256_BASE", fees.KECCAK256_BASE)
        value = self.memory_or_register(value_ptr, value_len)
        self.pay("KECCAK256_BYTE", len(value) * fees.KECCAK256_BYTE)
        self.set_register(register_id, keccak.new(data=value, digest_bits=256).digest())

    def keccak512(self, value_len: int, value_ptr: int, register_id: int) -> None:
        self.pay("KECCAK512_BASE", fees.KECCAK512_BASE)
        value = self.memory_or_register(value_ptr, value_len)
        self.pay("KECCAK512_BYTE", len(value) * fees.KECCAK512_BYTE)
        self.set_register(register_id, keccak.new(data=value, digest_bits=512).digest())

    def ripemd160(self, value_len: int, value_ptr: int, register_id: int) -> None:
        self.pay("RIPEMD160_BASE", fees.RIPEMD160_BASE)
        value = self.memory_or_register(value_ptr, value_len)
        self.pay("RIPEMD160_BLOCK", ((len(value) + 8) // 64 + 1) * fees.RIPEMD160_BLOCK)
        self.set_register(register_id, RIPEMD160.new(value).digest())

    def ed25519_verify(
        self,
        signature_len: int,
        signature_ptr: int,
        message_len: int,
        message_ptr: int,
        public_key_len: int,
        public_key_ptr: int,
    ) -> int:
        self.pay("ED25519_VERIFY_BASE", fees.ED25519_VERIFY_BASE)
        signature = self.memory_or_register(signature_ptr, signature_len)
        if len(signature) != 64:
            raise host_failure("Ed25519VerifyInvalidInput", msg="invalid signature length")
        if signature[63] & 0b1110_0000:
            return 0
        message = self.memory_or_register(message_ptr, message_len)
        self.pay("ED25519_VERIFY_BYTE", len(message) * fees.ED25519_VERIFY_BYTE)
        public_key = self.memory_or_register(public_key_ptr, public_key_len)
        if len(public_key) != 32:
            raise host_failure("Ed25519VerifyInvalidInput", msg="invalid public key length")
        return int(verify_signature(public_key, message, signature))

    # Miscellaneous API ------------------------------------------------------------------------------------------

    def value_return(self, value_len: int, value_ptr: int) -> None:
        self.pay_base()
        value = self.memory_or_register(value_ptr, value_len)
        if len(value) > MAX_LENGTH_RETURNED_DATA:
            raise host_failure("ReturnedValueLengthExceeded", length=len(value), limit=MAX_LENGTH_RETURNED_DATA)
        per_byte = fees.DATA_RECEIPT_CREATION_PER_BYTE
        self.pay(
            "NEW_DATA_RECEIPT_BYTE",
            len(self.ctx.data_receivers) * len(value) * (per_byte.send + per_byte.execution),
        )
        self.result = value

    def panic(self) -> NoReturn:
        self.pay_base()
        raise _guest_panic("explicit guest panic")

    def panic_utf8(self, length: int, ptr: int) -> NoReturn:
        self.pay_base()
        raise _guest_panic(self.utf8_string(length, ptr))

    def log_utf8(self, length: int, ptr: int) -> None:
        self.pay_base()
        self.check_log_count()
        self.push_log(self.utf8_string(length, ptr))

    def log_utf16(self, length: int, ptr: int) -> None:
        self.pay_base()
        self.check_log_count()
        self.push_log(self.utf16_string(length, ptr))

    def abort(self, msg_ptr: int, filename_ptr: int, line: int, col: int) -> NoReturn:
        """AssemblyScript's abort: logs `ABORT: ...` and panics with the message."""
        self.pay_base()
        if msg_ptr < 4 or filename_ptr < 4:
            raise host_failure("BadUTF16")
        self.check_log_count()
        msg_len = int.from_bytes(self.read_memory(msg_ptr - 4, 4), "little")
        filename_len = int.from_bytes(self.read_memory(filename_ptr - 4, 4), "little")
        message = self.utf16_string(msg_len, msg_ptr)
        filename = self.utf16_string(filename_len, filename_ptr)
        text = f'{message}, filename: "{filename}" line: {line} col: {col}'
        self.push_log(f"ABORT: {text}")
        raise _guest_panic(text)

    def gas(self, opcodes: int) -> None:
        self.pay("WASM_INSTRUCTION", opcodes * fees.REGULAR_OP_COST)

    def sandbox_debug_log(self, length: int, ptr: int) -> None:
        text = self._view(ptr, length).decode("utf-8", errors="replace")
        log.info("%s: %s", self.ctx.current_account_id, text)

    # Promises API -------------------------------------------------------------------------------------------------

    def _push_promise(self, promise: _Promise) -> int:
        self.promises.append(promise)
        if len(self.promises) > MAX_PROMISES_PER_FUNCTION_CALL:
            raise host_failure(
                "NumberPromisesExceeded",
                number_of_promises=len(self.promises),
                limit=MAX_PROMISES_PER_FUNCTION_CALL,
            )
        return len(self.promises) - 1

    def _promise(self, promise_idx: int) -> _Promise:
        if promise_idx >= len(self.promises):
            raise host_failure("InvalidPromiseIndex", promise_idx=promise_idx)
        return self.promises[promise_idx]

    def _receipt(self, promise_idx: int) -> int:
        promise = self._promise(promise_idx)
        if promise.joint:
            raise host_failure("CannotAppendActionToJointPromise")
        return promise.receipts[0]

    def _append(self, promise_idx: int, action: Action, gas_weight: int = 0) -> None:
        self.ctx.promise_batch_action(self._receipt(promise_idx), action, gas_weight)

    def promise_create(
        self,
        account_id_len: int,
        account_id_ptr: int,
        method_name_len: int,
        method_name_ptr: int,
        arguments_len: int,
        arguments_ptr: int,
        amount_ptr: int,
        gas: int,
    ) -> int:
        index = self.promise_batch_create(account_id_len, account_id_ptr)
        self.promise_batch_action_function_call(
            index, method_name_len, method_name_ptr, arguments_len, arguments_ptr, amount_ptr, gas
        )
        return index

    def promise_then(
        self,
        promise_idx: int,
        account_id_len: int,
        account_id_ptr: int,
        method_name_len: int,
        method_name_ptr: int,
        arguments_len: int,
        arguments_ptr: int,
        amount_ptr: int,
        gas: int,
    ) -> int:
        index = self.promise_batch_then(promise_idx, account_id_len, account_id_ptr)
        self.promise_batch_action_function_call(
            index, method_name_len, method_name_ptr, arguments_len, arguments_ptr, amount_ptr, gas
        )
        return index

    def promise_and(self, promise_idx_ptr: int, promise_idx_count: int) -> int:
        self.pay_base()
        self.refuse_in_view("promise_and")
        self.pay("PROMISE_AND_BASE", fees.PROMISE_AND_BASE)
        memory_len = promise_idx_count * 8
        self.pay("PROMISE_AND_PER_PROMISE", memory_len * fees.PROMISE_AND_PER_PROMISE)
        raw = self.read_memory(promise_idx_ptr, memory_len)
        receipts: list[int] = []
        for offset in range(0, memory_len, 8):
            receipts.extend(self._promise(int.from_bytes(raw[offset : offset + 8], "little")).receipts)
            if len(receipts) > MAX_INPUT_DATA_DEPENDENCIES:
                raise host_failure(
                    "NumberInputDataDependenciesExceeded",
                    number_of_input_data_dependencies=len(receipts),
                    limit=MAX_INPUT_DATA_DEPENDENCIES,
                )
        return self._push_promise(_Promise(receipts, joint=True))

    def promise_batch_create(self, account_id_len: int, account_id_ptr: int) -> int:
        self.pay_base()
        self.refuse_in_view("promise_batch_create")
        account_id = self.account_id(account_id_ptr, account_id_len)
        return self._push_promise(_Promise([self.ctx.promise_batch_create(account_id)]))

    def promise_batch_then(self, promise_idx: int, account_id_len: int, account_id_ptr: int) -> int:
        self.pay_base()
        self.refuse_in_view("promise_batch_then")
        account_id = self.account_id(account_id_ptr, account_id_len)
        after = self._promise(promise_idx).receipts
        return self._push_promise(_Promise([self.ctx.promise_batch_create(account_id, after)]))

    def promise_batch_action_create_account(self, promise_idx: int) -> None:
        self.pay_base()
        self.refuse_in_view("promise_batch_action_create_account")
        self._append(promise_idx, CreateAccount())

    def promise_batch_action_deploy_contract(self, promise_idx: int, code_len: int, code_ptr: int) -> None:
        self.pay_base()
        self.refuse_in_view("promise_batch_action_deploy_contract")
        code = self.memory_or_register(code_ptr, code_len)
        if len(code) > MAX_CONTRACT_SIZE:
            raise host_failure("ContractSizeExceeded", size=len(code), limit=MAX_CONTRACT_SIZE)
        self._append(promise_idx, DeployContract(code))

    def promise_batch_action_function_call(
        self,
        promise_idx: int,
        method_name_len: int,
        method_name_ptr: int,
        arguments_len: int,
        arguments_ptr: int,
        amount_ptr: int,
        gas: int,
    ) -> None:
        self.promise_batch_action_function_call_weight(
            promise_idx, method_name_len, method_name_ptr, arguments_len, arguments_ptr, amount_ptr, gas, 0
        )

    def promise_batch_action_function_call_weight(
        self,
        promise_idx: int,
        method_name_len: int,
        method_name_ptr: int,
        arguments_len: int,
        arguments_ptr: int,
        amount_ptr: int,
        gas: int,
        gas_weight: int,
    ) -> None:
        self.pay_base()
        self.refuse_in_view("promise_batch_action_function_call")
        amount = self.read_u128(amount_ptr)
        method_name = self.memory_or_register(method_name_ptr, method_name_len)
        if not method_name:
            raise host_failure("EmptyMethodName")
        arguments = self.memory_or_register(arguments_ptr, arguments_len)
        receipt = self._receipt(promise_idx)
        try:
            name = method_name.decode("utf-8")
        except UnicodeDecodeError:
            raise host_failure("InvalidMethodName") from None
        self.ctx.promise_batch_action(receipt, FunctionCall(name, arguments, gas, amount), gas_weight)

    def promise_batch_action_transfer(self, promise_idx: int, amount_ptr: int) -> None:
        self.pay_base()
        self.refuse_in_view("promise_batch_action_transfer")
        amount = self.read_u128(amount_ptr)
        self._append(promise_idx, Transfer(amount))

    def promise_batch_action_stake(
        self, promise_idx: int, amount_ptr: int, public_key_len: int, public_key_ptr: int
    ) -> None:
        self.pay_base()
        self.refuse_in_view("promise_batch_action_stake")
        amount = self.read_u128(amount_ptr)
        public_key = self.public_key(public_key_ptr, public_key_len)
        self._append(promise_idx, Stake(amount, public_key))

    def promise_batch_action_add_key_with_full_access(
        self, promise_idx: int, public_key_len: int, public_key_ptr: int, nonce: int
    ) -> None:
        self.pay_base()
        self.refuse_in_view("promise_batch_action_add_key_with_full_access")
        public_key = self.public_key(public_key_ptr, public_key_len)
        self._append(promise_idx, AddKey(public_key, nonce, None))

    def promise_batch_action_add_key_with_function_call(
        self,
        promise_idx: int,
        public_key_len: int,
        public_key_ptr: int,
        nonce: int,
        allowance_ptr: int,
        receiver_id_len: int,
        receiver_id_ptr: int,
        method_names_len: int,
        method_names_ptr: int,
    ) -> None:
        self.pay_base()
        self.refuse_in_view("promise_batch_action_add_key_with_function_call")
        public_key = self.public_key(public_key_ptr, public_key_len)
        allowance = self.read_u128(allowance_ptr)
        receiver_id = self.account_id(receiver_id_ptr, receiver_id_len)
        raw_names = self.memory_or_register(method_names_ptr, method_names_len)
        names: list[str] = []
        for raw in raw_names.split(b",") if raw_names else []:
            if not raw:
                raise host_failure("EmptyMethodName")
            try:
                names.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise host_failure("BadUTF8") from None
        permission = FunctionCallPermission(allowance or None, receiver_id, tuple(names))
        self._append(promise_idx, AddKey(public_key, nonce, permission))

    def promise_batch_action_delete_key(self, promise_idx: int, public_key_len: int, public_key_ptr: int) -> None:
        self.pay_base()
        self.refuse_in_view("promise_batch_action_delete_key")
        public_key = self.public_key(public_key_ptr, public_key_len)
        self._append(promise_idx, DeleteKey(public_key))

    def promise_batch_action_delete_account(
        self, promise_idx: int, beneficiary_id_len: int, beneficiary_id_ptr: int
    ) -> None:
        self.pay_base()
        self.refuse_in_view("promise_batch_action_delete_account")
        beneficiary_id = self.account_id(beneficiary_id_ptr, beneficiary_id_len)
        self._append(promise_idx, DeleteAccount(beneficiary_id))

    def promise_results_count(self) -> int:
        self.pay_base()
        self.refuse_in_view("promise_results_count")
        return len(self.ctx.promise_results())

    def promise_result(self, result_idx: int, register_id: int) -> int:
        self.pay_base()
        self.refuse_in_view("promise_result")
        results = self.ctx.promise_results()
        if result_idx >= len(results):
            raise host_failure("InvalidPromiseResultIndex", result_idx=result_idx)
        value = results[result_idx]
        if value is None:
            return 2
        self.set_register(register_id, value)
        return 1

    def promise_return(self, promise_idx: int) -> None:
        self.pay_base()
        self.pay("PROMISE_RETURN", fees.PROMISE_RETURN)
        self.refuse_in_view("promise_return")
        promise = self._promise(promise_idx)
        if promise.joint:
            raise host_failure("CannotReturnJointPromise")
        self.result = PromiseRef(promise.receipts[0])

    # Storage API --------------------------------------------------------------------------------------------------

    def storage_key(self, key_len: int, key_ptr: int) -> bytes:
        key = self.memory_or_register(key_ptr, key_len)
        if len(key) > MAX_LENGTH_STORAGE_KEY:
            raise host_failure("KeyLengthExceeded", length=len(key), limit=MAX_LENGTH_STORAGE_KEY)
        return key

    def storage_write(self, key_len: int, key_ptr: int, value_len: int, value_ptr: int, register_id: int) -> int:
        self.pay_base()
        self.refuse_in_view("storage_write")
        key = self.storage_key(key_len, key_ptr)
        value = self.memory_or_register(value_ptr, value_len)
        if len(value) > MAX_LENGTH_STORAGE_VALUE:
            raise host_failure("ValueLengthExceeded", length=len(value), limit=MAX_LENGTH_STORAGE_VALUE)
        evicted = self.ctx.storage_replace(key, value)
        if evicted is None:
            return 0
        self.pay("STORAGE_WRITE_EVICTED_BYTE", len(evicted) * fees.STORAGE_WRITE_EVICTED_BYTE)
        self.set_register(register_id, evicted)
        return 1

    def storage_read(self, key_len: int, key_ptr: int, register_id: int) -> int:
        self.pay_base()
        key = self.storage_key(key_len, key_ptr)
        value = self.ctx.storage_read(key)
        if value is None:
            return 0
        self.set_register(register_id, value)
        return 1

    def storage_remove(self, key_len: int, key_ptr: int, register_id: int) -> int:
        self.pay_base()
        self.refuse_in_view("storage_remove")
        key = self.storage_key(key_len, key_ptr)
        removed = self.ctx.storage_take(key)
        if removed is None:
            return 0
        self.pay("STORAGE_REMOVE_RET_VALUE_BYTE", len(removed) * fees.STORAGE_REMOVE_RET_VALUE_BYTE)
        self.set_register(register_id, removed)
        return 1

    def storage_has_key(self, key_len: int, key_ptr: int) -> int:
        self.pay_base()
        key = self.storage_key(key_len, key_ptr)
        return int(self.ctx.storage_has_key(key))

    # Linking --------------------------------------------------------------------------------------------------------

    def unsupported(self, name: str) -> Callable[..., Any]:
        def call(*_args: int) -> NoReturn:
            self.pay_base()
            if name in _DEPRECATED:
                raise host_failure("Deprecated", method_name=name)
            raise prohibited_in_view(name)

        return call

    def bind(self, func: Callable[..., Any], func_type: FuncType) -> Callable[..., Any]:
        """`func` as a wasmtime import: arguments read unsigned (nearcore's u64 and u32), gas settled for the
        instructions run before the call, fuel topped up after it, the result handed back in the signed range
        of its wasm type."""
        masks = [U64_MAX if str(param) == "i64" else U32_MAX for param in func_type.params]
        result_bits = [64 if str(result) == "i64" else 32 for result in func_type.results]

        def call(*args: int) -> int | None:
            self.charge_instructions()
            try:
                value = func(*(arg & mask for arg, mask in zip(args, masks, strict=True)))
            finally:
                self.refuel()
            if not result_bits:
                return None
            bits, number = result_bits[0], int(value) & ((1 << result_bits[0]) - 1)
            return number - (1 << bits) if number >= 1 << (bits - 1) else number

        return call

    def linker(self, module: Module) -> Linker:
        """A linker holding the host functions and memory `module` imports. Imports the devnet does not know
        are left out, so instantiation fails with wasmtime's link error."""
        linker = Linker(_ENGINE)
        for item in module.imports:
            if item.module != "env" or item.name is None:
                continue
            declared = item.type
            if isinstance(declared, MemoryType) and item.name == "memory":
                self.memory = Memory(self.store, MemoryType(_memory_limits(declared.limits)))
                linker.define(self.store, "env", "memory", self.memory)
                continue
            if not isinstance(declared, FuncType) or item.name not in _SIGNATURES:
                continue
            signature = _SIGNATURES[item.name]
            func_type = declared if signature is None else FuncType(_valtypes(signature[0]), _valtypes(signature[1]))
            name = item.name
            implementation = self.unsupported(name) if name in _UNSUPPORTED else getattr(self, name)
            linker.define_func("env", item.name, func_type, self.bind(implementation, func_type))
        return linker

    def attach(self, instance: Instance) -> None:
        """Use the module's own memory when it did not import one."""
        if self.memory is None:
            exported = instance.exports(self.store).get("memory")
            if isinstance(exported, Memory):
                self.memory = exported


def _memory_limits(declared: Limits) -> Limits:
    """nearcore's memory (1024 pages, growing to 2048) where the module's import accepts it, else the
    smallest memory the import accepts; never more than 2048 pages."""
    if declared.min > MAX_MEMORY_PAGES:
        raise prepare_failure("Memory")
    maximum = MAX_MEMORY_PAGES if declared.max is None else min(declared.max, MAX_MEMORY_PAGES)
    return Limits(min(max(declared.min, INITIAL_MEMORY_PAGES), maximum), maximum)


_MISSING = [name for name in _SIGNATURES if name not in _UNSUPPORTED and not callable(getattr(_Host, name, None))]
assert not _MISSING, f"host functions without an implementation: {_MISSING}"


# --------------------------------------------------------------------------------------------------------------
# Running a method
# --------------------------------------------------------------------------------------------------------------


def _trap_failure(trap: Trap) -> FunctionCallFailure:
    code = trap.trap_code
    if code == TrapCode.OUT_OF_FUEL:
        return gas_exceeded_failure()
    return wasm_trap_failure(_TRAP_KINDS.get(code, "GenericTrap") if code is not None else "GenericTrap")


def run_wasm(ctx: CallContext, code: bytes, method_name: str, args: bytes) -> bytes | PromiseRef:
    """Run the exported `method_name` of the wasm module `code` with input `args`: the bytes given to
    `value_return` (empty when none), or a PromiseRef when the method called `promise_return`. Raises
    FunctionCallFailure with nearcore's error for panics, traps, gas exhaustion and host errors."""
    module = compile_module(code)
    if not method_name:
        raise method_resolve_failure("MethodEmptyName")
    export = next((item for item in module.exports if item.name == method_name), None)
    if export is None or not isinstance(export.type, FuncType):
        raise method_resolve_failure("MethodNotFound")
    if export.type.params or export.type.results:
        raise method_resolve_failure("MethodInvalidSignature")

    store = Store(_ENGINE)
    store.set_limits(memory_size=MAX_MEMORY_PAGES * WASM_PAGE)
    host = _Host(ctx, store, args)
    try:
        ctx.burn(fees.CONTRACT_EXECUTION_BASE, "CONTRACT_LOADING_BASE")
        linker = host.linker(module)
        host.refuel()
        try:
            instance = linker.instantiate(store, module)
        except WasmtimeError as exc:
            raise link_failure(str(exc).splitlines()[0]) from None
        host.attach(instance)
        method = instance.exports(store)[method_name]
        assert callable(method)
        method(store)
        host.charge_instructions()
    except _GasExceeded:
        raise gas_exceeded_failure() from None
    except Trap as trap:
        failure = _trap_failure(trap)
        if failure.error != gas_exceeded_failure().error:
            try:
                host.charge_instructions()
            except _GasExceeded:
                raise gas_exceeded_failure() from None
        raise failure from None
    except FunctionCallFailure:
        raise
    except WasmtimeError as exc:
        log.warning("contract %s method %s: wasmtime error %s", ctx.current_account_id, method_name, exc)
        raise wasm_trap_failure("GenericTrap") from None
    except Exception as exc:
        # A bug in the host must not take the node down; it fails the call like a contract panic would.
        log.exception("contract %s method %s raised", ctx.current_account_id, method_name)
        raise panic_failure(f"{type(exc).__name__}: {exc}") from None
    return host.result
