"""Gas and its price. The action fees are nearcore's mainnet runtime fees, so outcomes burn familiar amounts
(a plain transfer burns 223182562500 gas at conversion and again at execution); contract execution is
approximated with a fixed cost per call plus nearcore's host-function costs for storage and logs. Wasm
contracts also pay nearcore's `wasm_regular_op_cost` per executed instruction and the remaining host-function
costs (`ExtCosts`: memory and register traffic, UTF-8 decoding, hashing) from nearcore's parameter table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from swap_devnet.near.codec import (
    Action,
    AddKey,
    CreateAccount,
    Delegate,
    DeleteAccount,
    DeleteKey,
    DeployContract,
    DeployGlobalContract,
    FunctionCall,
    Stake,
    Transfer,
    UseGlobalContract,
)

TGAS = 10**12
GAS_PRICE = 100_000_000  # yoctoNEAR per gas: nearcore's minimum gas price
MAX_TOTAL_PREPAID_GAS = 300 * TGAS
# Gas a view call may use, like nearcore's `max_gas_burnt_view`.
VIEW_GAS_LIMIT = 300 * TGAS


@dataclass(frozen=True)
class Fee:
    send: int
    execution: int


ACTION_RECEIPT_CREATION = Fee(108_059_500_000, 108_059_500_000)
DATA_RECEIPT_CREATION_BASE = Fee(36_486_732_312, 36_486_732_312)
CREATE_ACCOUNT = Fee(3_850_000_000_000, 3_850_000_000_000)
DEPLOY_CONTRACT_BASE = Fee(184_765_750_000, 184_765_750_000)
DEPLOY_CONTRACT_PER_BYTE = Fee(6_812_999, 64_572_944)
FUNCTION_CALL_BASE = Fee(2_319_861_500_000, 2_319_861_500_000)
FUNCTION_CALL_PER_BYTE = Fee(2_235_934, 2_235_934)
TRANSFER = Fee(115_123_062_500, 115_123_062_500)
STAKE = Fee(141_715_687_500, 102_217_625_000)
ADD_KEY_FULL_ACCESS = Fee(101_765_125_000, 101_765_125_000)
ADD_KEY_FUNCTION_CALL = Fee(102_217_625_000, 102_217_625_000)
ADD_KEY_PER_BYTE = Fee(1_925_331, 1_925_331)
DELETE_KEY = Fee(94_946_625_000, 94_946_625_000)
DELETE_ACCOUNT = Fee(147_489_000_000, 147_489_000_000)
DELEGATE = Fee(200_000_000_000, 200_000_000_000)

# Host-function costs (nearcore ExtCosts) charged by the contract context.
CONTRACT_EXECUTION_BASE = 1 * TGAS  # loading the contract, flat; its instructions are REGULAR_OP_COST each
STORAGE_WRITE_BASE = 64_196_736_000
STORAGE_WRITE_KEY_BYTE = 70_482_867
STORAGE_WRITE_VALUE_BYTE = 31_018_539
STORAGE_READ_BASE = 56_356_845_750
STORAGE_READ_KEY_BYTE = 30_952_533
STORAGE_READ_VALUE_BYTE = 5_611_005
STORAGE_REMOVE_BASE = 53_473_030_500
STORAGE_REMOVE_KEY_BYTE = 38_220_384
LOG_BASE = 3_543_313_050
LOG_BYTE = 13_198_791
SHA256_BASE = 4_540_970_250
SHA256_BYTE = 24_117_351
PROMISE_RETURN = 560_152_386

# The rest of nearcore's ExtCosts (core/parameters/res/runtime_configs/parameters.snap), charged by the wasm
# executor (swap_devnet.near.wasm).
REGULAR_OP_COST = 822_756  # `wasm_regular_op_cost`: gas per executed wasm instruction (one wasmtime fuel unit)
WASM_BASE = 264_768_111  # `base`: every host-function call
READ_MEMORY_BASE = 2_609_863_200
READ_MEMORY_BYTE = 3_801_333
WRITE_MEMORY_BASE = 2_803_794_861
WRITE_MEMORY_BYTE = 2_723_772
READ_REGISTER_BASE = 2_517_165_186
READ_REGISTER_BYTE = 98_562
WRITE_REGISTER_BASE = 2_865_522_486
WRITE_REGISTER_BYTE = 3_801_564
UTF8_DECODING_BASE = 3_111_779_061
UTF8_DECODING_BYTE = 291_580_479
UTF16_DECODING_BASE = 3_543_313_050
UTF16_DECODING_BYTE = 163_577_493
KECCAK256_BASE = 5_879_491_275
KECCAK256_BYTE = 21_471_105
KECCAK512_BASE = 5_811_388_236
KECCAK512_BYTE = 36_649_701
RIPEMD160_BASE = 853_675_086
RIPEMD160_BLOCK = 680_107_584
ED25519_VERIFY_BASE = 210_000_000_000
ED25519_VERIFY_BYTE = 9_000_000
STORAGE_WRITE_EVICTED_BYTE = 32_117_307
STORAGE_REMOVE_RET_VALUE_BYTE = 11_531_556
STORAGE_HAS_KEY_BASE = 54_039_896_625
STORAGE_HAS_KEY_BYTE = 30_790_845
PROMISE_AND_BASE = 1_465_013_400
PROMISE_AND_PER_PROMISE = 5_452_176
DATA_RECEIPT_CREATION_PER_BYTE = Fee(17_212_011, 17_212_011)


def action_fee(action: Action) -> Fee:
    """The send (burnt at conversion) and execution (burnt at the receiver) fees of one action."""
    match action:
        case CreateAccount():
            return CREATE_ACCOUNT
        case DeployContract(code=code) | DeployGlobalContract(code=code):
            size = len(code)
            return Fee(
                DEPLOY_CONTRACT_BASE.send + size * DEPLOY_CONTRACT_PER_BYTE.send,
                DEPLOY_CONTRACT_BASE.execution + size * DEPLOY_CONTRACT_PER_BYTE.execution,
            )
        case FunctionCall(method_name=method_name, args=args):
            size = len(method_name.encode()) + len(args)
            return Fee(
                FUNCTION_CALL_BASE.send + size * FUNCTION_CALL_PER_BYTE.send,
                FUNCTION_CALL_BASE.execution + size * FUNCTION_CALL_PER_BYTE.execution,
            )
        case Transfer():
            return TRANSFER
        case Stake():
            return STAKE
        case AddKey(permission=None):
            return ADD_KEY_FULL_ACCESS
        case AddKey(permission=permission) if permission is not None:
            size = sum(len(name.encode()) for name in permission.method_names)
            return Fee(
                ADD_KEY_FUNCTION_CALL.send + size * ADD_KEY_PER_BYTE.send,
                ADD_KEY_FUNCTION_CALL.execution + size * ADD_KEY_PER_BYTE.execution,
            )
        case DeleteKey():
            return DELETE_KEY
        case DeleteAccount():
            return DELETE_ACCOUNT
        case Delegate(delegate_action=delegate_action):
            # The inner receipt is sent (and prepaid) when the delegate action executes at the sender.
            inner = receipt_fees(delegate_action.actions)
            return Fee(DELEGATE.send, DELEGATE.execution + inner.send + inner.execution)
        case UseGlobalContract():
            return DEPLOY_CONTRACT_BASE
    return Fee(0, 0)


def receipt_fees(actions: Sequence[Action]) -> Fee:
    """Fees of an action receipt carrying `actions`, receipt creation included."""
    send = ACTION_RECEIPT_CREATION.send
    execution = ACTION_RECEIPT_CREATION.execution
    for action in actions:
        fee = action_fee(action)
        send += fee.send
        execution += fee.execution
    return Fee(send, execution)


def prepaid_gas(actions: Sequence[Action]) -> int:
    """Gas attached to function calls, those inside meta transactions included."""
    total = 0
    for action in actions:
        if isinstance(action, FunctionCall):
            total += action.gas
        elif isinstance(action, Delegate):
            total += prepaid_gas(action.delegate_action.actions)
    return total
