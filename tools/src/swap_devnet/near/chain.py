"""The devnet chain: one shard, one block producer, blocks on a timer.

Blocks come every `block_interval` when idle; pending transactions are gathered into a block once no new
one arrived for `tx_batch_quiet` (so a burst of transactions from one key lands in one block, in nonce
order, as nearcore's pool would order them), and receipts in flight get the next block after
`receipt_delay`. Within a block, like a nearcore chunk: transactions are converted into receipts first (a
receipt to the signer itself runs in the same block), then the receipts that came out of the previous block
run. Block timestamps follow the system clock plus the total `sandbox_fast_forward` offset; "final" is the
block two blocks behind the head, "near-final" the one just behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from swap_devnet.near import fees
from swap_devnet.near.codec import (
    AddKey,
    Delegate,
    DeleteAccount,
    DeployGlobalContract,
    FunctionCall,
    PublicKey,
    SignedTransaction,
    UseGlobalContract,
    decode_signed_transaction,
)
from swap_devnet.near.ids import is_valid_account_id
from swap_devnet.near.keys import KeyPair, b58encode, crypto_hash, verify_signature
from swap_devnet.near.runtime import (
    NONCE_RANGE_MULTIPLIER,
    ActionReceipt,
    BlockContext,
    DataReceipt,
    ExecutionOutcome,
    Receipt,
    apply_action_receipt,
    derive_id,
    permission_problem,
    receipt_gas_budget,
    storage_stake_shortfall,
    total_deposit,
)
from swap_devnet.near.state import (
    ACCOUNT_RECORD_BYTES,
    INITIAL_STATE,
    MIGRATION,
    AccessKeyRecord,
    AccountRecord,
    ChangeCause,
    StateUpdate,
    StateView,
    VersionedStore,
    access_key_key,
)

log = logging.getLogger(__name__)

NEAR = 10**24
PROTOCOL_VERSION = 78
GENESIS_HEIGHT = 1
MAX_ACTIONS_PER_TRANSACTION = 100
MAX_METHOD_NAME_LENGTH = 256
EMPTY_HASH = b58encode(bytes(32))

WaitUntil = Literal["NONE", "INCLUDED", "EXECUTED_OPTIMISTIC", "INCLUDED_FINAL", "EXECUTED", "FINAL"]
WAIT_LEVELS: tuple[WaitUntil, ...] = (
    "NONE",
    "INCLUDED",
    "EXECUTED_OPTIMISTIC",
    "INCLUDED_FINAL",
    "EXECUTED",
    "FINAL",
)


class InvalidTransaction(Exception):
    """The transaction is rejected; `error` is nearcore's InvalidTxError JSON."""

    def __init__(self, error: Any) -> None:
        super().__init__(error)
        self.error = error


class UnknownBlock(LookupError):
    pass


@dataclass(frozen=True)
class ChainConfig:
    chain_id: str = "localnet"
    root_account_id: str = "test.near"
    root_key: KeyPair = field(default_factory=lambda: KeyPair.from_phrase("swap-devnet:test.near"))
    root_balance: int = 1_000_000_000 * NEAR
    # Wall-clock seconds between blocks when nothing is pending.
    block_interval: float = 0.1
    # Chain seconds one block stands for when fast-forwarding by a number of blocks.
    block_time: float = 1.0
    tx_batch_quiet: float = 0.015
    receipt_delay: float = 0.005
    # nearcore mainnet's value; the cached block hash of a client stays valid across fast-forwards.
    tx_validity_period: int = 86_400
    gas_price: int = fees.GAS_PRICE
    final_lag: int = 2
    nonce_gap_wait: float = 0.5
    # nearcore's storage staking: an account must keep 10^19 yoctoNEAR per byte it stores (accounts of at most
    # 770 bytes excepted). A transaction that would leave its signer short is rejected (LackBalanceForState),
    # and so fails a receipt that leaves an account it wrote short.
    enforce_storage_staking: bool = True


@dataclass
class Block:
    height: int
    hash: str
    hash_bytes: bytes
    prev_hash: str
    prev_height: int
    timestamp: int
    ordinal: int
    chunk_hash: str
    author: str
    total_supply: int
    transactions: list[SignedTransaction] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    gas_burnt: int = 0
    tokens_burnt: int = 0

    @property
    def context(self) -> BlockContext:
        return BlockContext(self.height, self.timestamp, self.hash, self.hash_bytes)


@dataclass
class TxRecord:
    signed: SignedTransaction
    hash: str
    arrived: float
    included_height: int | None = None
    rejection: Any = None
    pending: set[str] = field(default_factory=set)
    last_height: int = 0

    @property
    def executed(self) -> bool:
        return self.included_height is not None and not self.pending


@dataclass
class _Charge:
    signer: AccountRecord
    key: AccessKeyRecord
    send_gas: int
    gas_cost: int
    cost: int


@dataclass
class _Patch:
    apply: Callable[[StateUpdate, BlockContext], None]
    done: asyncio.Future[Block]


class Chain:
    def __init__(self, config: ChainConfig | None = None) -> None:
        self.config = config or ChainConfig()
        self.store = VersionedStore()
        self.blocks: list[Block] = []
        self._by_hash: dict[str, Block] = {}
        self._by_height: dict[int, Block] = {}
        self._by_chunk: dict[str, Block] = {}
        self.txs: dict[str, TxRecord] = {}
        self.outcomes: dict[str, ExecutionOutcome] = {}
        self.receipts: dict[str, Receipt] = {}
        self._mempool: list[TxRecord] = []
        self._incoming: list[Receipt] = []
        self._postponed: dict[str, ActionReceipt] = {}
        self._awaited_data: dict[str, str] = {}
        self._received_data: dict[str, bytes | None] = {}
        self._patches: list[_Patch] = []
        self._ff_height = 0
        self._ff_ns = 0
        self._ff_waiters: list[asyncio.Future[Block]] = []
        self._time_offset_ns = 0
        self._last_block_at = time.monotonic()
        self._wake = asyncio.Event()
        self._new_block = asyncio.Event()
        self._stopped = False
        self._stalled_until = 0.0  # time.monotonic() before which no block is produced (stall())
        self.total_supply = 0
        self.started_at = time.time()
        self._genesis()

    # A node's data across restarts ----------------------------------------------------------------------------

    # What lives only while the process runs: events and futures of waiting callers, monotonic times, the
    # indexes rebuilt from the blocks.
    _RUNTIME_ONLY = frozenset(
        {
            "_by_hash",
            "_by_height",
            "_by_chunk",
            "_patches",
            "_ff_waiters",
            "_wake",
            "_new_block",
            "_stopped",
            "_stalled_until",
            "_last_block_at",
            "config",
        }
    )

    def save(self, path: Path) -> None:
        """Writes the chain (blocks, state, transactions, receipts, the mempool) to `path`, atomically: a node's
        data directory, which `restore` reads back after a restart."""
        data = {name: value for name, value in vars(self).items() if name not in self._RUNTIME_ONLY}
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))
        partial.replace(path)

    @classmethod
    def restore(cls, path: Path, config: ChainConfig) -> Chain:
        """The chain `save` wrote, continuing from its head: same blocks, state and pending work; blocks
        resume from the head's time (never earlier), transactions that were waiting wait again."""
        chain = cls.__new__(cls)
        vars(chain).update(pickle.loads(path.read_bytes()))  # noqa: S301 - see the import
        chain.config = config
        chain._by_hash, chain._by_height, chain._by_chunk = {}, {}, {}
        for block in chain.blocks:
            chain._by_hash[block.hash] = block
            chain._by_height[block.height] = block
            chain._by_chunk[block.chunk_hash] = block
        chain._patches, chain._ff_waiters = [], []
        chain._wake, chain._new_block = asyncio.Event(), asyncio.Event()
        chain._stopped, chain._stalled_until = False, 0.0
        chain._last_block_at = time.monotonic()
        for record in chain._mempool:
            record.arrived = chain._last_block_at
        return chain

    # Blocks -------------------------------------------------------------------------------------------------

    def _genesis(self) -> None:
        config = self.config
        timestamp = time.time_ns()
        block = self._make_block(GENESIS_HEIGHT, EMPTY_HASH, 0, timestamp)
        update = StateUpdate(self.store)
        update.set_account(config.root_account_id, AccountRecord(amount=config.root_balance))
        update.put_record(
            access_key_key(config.root_account_id, PublicKey.ed25519(config.root_key.public_key)),
            AccessKeyRecord(0, None),
        )
        update.commit(GENESIS_HEIGHT, INITIAL_STATE)
        self.total_supply = config.root_balance
        block.total_supply = self.total_supply
        self._append(block)

    def _make_block(self, height: int, prev_hash: str, prev_height: int, timestamp: int) -> Block:
        header = struct.pack("<QQ", height, timestamp) + prev_hash.encode() + self.config.chain_id.encode()
        hash_bytes = crypto_hash(header)
        return Block(
            height=height,
            hash=b58encode(hash_bytes),
            hash_bytes=hash_bytes,
            prev_hash=prev_hash,
            prev_height=prev_height,
            timestamp=timestamp,
            ordinal=len(self.blocks) + 1,
            chunk_hash=b58encode(crypto_hash(b"chunk" + hash_bytes)),
            author=self.config.root_account_id,
            total_supply=self.total_supply,
        )

    def _append(self, block: Block) -> None:
        self.blocks.append(block)
        self._by_hash[block.hash] = block
        self._by_height[block.height] = block
        self._by_chunk[block.chunk_hash] = block
        self._last_block_at = time.monotonic()
        announce, self._new_block = self._new_block, asyncio.Event()
        announce.set()

    @property
    def head(self) -> Block:
        return self.blocks[-1]

    @property
    def genesis(self) -> Block:
        return self.blocks[0]

    def final_block(self) -> Block:
        return self.blocks[max(0, len(self.blocks) - 1 - self.config.final_lag)]

    def block_by_finality(self, finality: str) -> Block:
        if finality == "optimistic":
            return self.head
        if finality in ("near-final", "doomslug"):
            return self.blocks[max(0, len(self.blocks) - 2)]
        if finality == "final":
            return self.final_block()
        raise ValueError(f"unknown finality {finality!r}")

    def block_by_id(self, block_id: int | str) -> Block:
        block = self._by_height.get(block_id) if isinstance(block_id, int) else self._by_hash.get(block_id)
        if block is None:
            raise UnknownBlock(block_id)
        return block

    def block_by_chunk(self, chunk_hash: str) -> Block | None:
        return self._by_chunk.get(chunk_hash)

    def previous(self, block: Block, blocks_back: int) -> Block:
        """The block `blocks_back` blocks before `block` (the genesis at the latest)."""
        return self.blocks[max(0, block.ordinal - 1 - blocks_back)]

    def state_at(self, block: Block) -> StateView:
        return StateView(self.store, block.height)

    # Transactions ---------------------------------------------------------------------------------------------

    def submit(self, raw: bytes) -> TxRecord:
        """Validate against the latest state and queue for the next block; raises DecodeError or
        InvalidTransaction. Submitting a known transaction again returns its record."""
        signed = decode_signed_transaction(raw)
        known = self.txs.get(signed.hash_text)
        if known is not None:
            return known
        self._validate(signed, StateUpdate(self.store), self.head.height + 1)
        record = TxRecord(signed, signed.hash_text, time.monotonic())
        self.txs[record.hash] = record
        self._mempool.append(record)
        self._wake.set()
        return record

    def _validate(self, signed: SignedTransaction, state: StateUpdate, height: int) -> _Charge:
        tx = signed.transaction
        base = self._by_hash.get(b58encode(tx.block_hash))
        if base is None or self.head.height - base.height > self.config.tx_validity_period:
            raise InvalidTransaction("Expired")
        if not is_valid_account_id(tx.signer_id):
            raise InvalidTransaction({"InvalidSignerId": {"signer_id": tx.signer_id}})
        if not is_valid_account_id(tx.receiver_id):
            raise InvalidTransaction({"InvalidReceiverId": {"receiver_id": tx.receiver_id}})
        if signed.signature.key_type != tx.public_key.key_type or not verify_signature(
            tx.public_key.data, signed.hash, signed.signature.data
        ):
            raise InvalidTransaction("InvalidSignature")
        self._validate_actions(signed)
        signer = state.account(tx.signer_id)
        if signer is None:
            raise InvalidTransaction({"SignerDoesNotExist": {"signer_id": tx.signer_id}})
        key = state.access_key(tx.signer_id, tx.public_key)
        if key is None:
            raise InvalidTransaction(
                {
                    "InvalidAccessKeyError": {
                        "AccessKeyNotFound": {"account_id": tx.signer_id, "public_key": tx.public_key.text}
                    }
                }
            )
        if tx.nonce <= key.nonce:
            raise InvalidTransaction({"InvalidNonce": {"tx_nonce": tx.nonce, "ak_nonce": key.nonce}})
        upper_bound = height * NONCE_RANGE_MULTIPLIER
        if tx.nonce >= upper_bound:
            raise InvalidTransaction({"NonceTooLarge": {"tx_nonce": tx.nonce, "upper_bound": upper_bound}})
        send_gas = fees.receipt_fees(tx.actions).send
        gas_cost = (send_gas + receipt_gas_budget(tx.actions)) * self.config.gas_price
        cost = gas_cost + total_deposit(tx.actions)
        if signer.amount < cost:
            raise InvalidTransaction(
                {"NotEnoughBalance": {"signer_id": tx.signer_id, "balance": str(signer.amount), "cost": str(cost)}}
            )
        if self.config.enforce_storage_staking:
            shortfall = storage_stake_shortfall(replace(signer, amount=signer.amount - cost))
            if shortfall:
                raise InvalidTransaction({"LackBalanceForState": {"signer_id": tx.signer_id, "amount": str(shortfall)}})
        permission = key.permission
        if permission is not None:
            if permission.allowance is not None and permission.allowance < gas_cost:
                raise InvalidTransaction(
                    {
                        "InvalidAccessKeyError": {
                            "NotEnoughAllowance": {
                                "account_id": tx.signer_id,
                                "public_key": tx.public_key.text,
                                "allowance": str(permission.allowance),
                                "cost": str(gas_cost),
                            }
                        }
                    }
                )
            problem = permission_problem(permission, tx.receiver_id, tx.actions)
            if problem is not None:
                raise InvalidTransaction({"InvalidAccessKeyError": problem})
        return _Charge(signer, key, send_gas, gas_cost, cost)

    def _validate_actions(self, signed: SignedTransaction) -> None:
        actions = signed.transaction.actions
        if len(actions) > MAX_ACTIONS_PER_TRANSACTION:
            raise InvalidTransaction(
                {
                    "ActionsValidation": {
                        "TotalNumberOfActionsExceeded": {
                            "total_number_of_actions": len(actions),
                            "limit": MAX_ACTIONS_PER_TRANSACTION,
                        }
                    }
                }
            )
        total_gas = fees.prepaid_gas(actions)
        if total_gas > fees.MAX_TOTAL_PREPAID_GAS:
            raise InvalidTransaction(
                {
                    "ActionsValidation": {
                        "TotalPrepaidGasExceeded": {
                            "total_prepaid_gas": total_gas,
                            "limit": fees.MAX_TOTAL_PREPAID_GAS,
                        }
                    }
                }
            )
        if sum(isinstance(a, Delegate) for a in actions) > 1:
            raise InvalidTransaction({"ActionsValidation": "DelegateActionMustBeOnlyOne"})
        for action in _flatten(actions):
            match action:
                case FunctionCall(gas=0):
                    raise InvalidTransaction({"ActionsValidation": "FunctionCallZeroAttachedGas"})
                case FunctionCall(method_name=name) if len(name) > MAX_METHOD_NAME_LENGTH:
                    raise InvalidTransaction(
                        {
                            "ActionsValidation": {
                                "FunctionCallMethodNameLengthExceeded": {
                                    "length": len(name),
                                    "limit": MAX_METHOD_NAME_LENGTH,
                                }
                            }
                        }
                    )
                case AddKey(permission=permission) if permission is not None and not is_valid_account_id(
                    permission.receiver_id
                ):
                    raise InvalidTransaction(
                        {"ActionsValidation": {"InvalidAccountId": {"account_id": permission.receiver_id}}}
                    )
                case DeleteAccount(beneficiary_id=beneficiary) if not is_valid_account_id(beneficiary):
                    raise InvalidTransaction({"ActionsValidation": {"InvalidAccountId": {"account_id": beneficiary}}})
                case DeployGlobalContract() | UseGlobalContract():
                    raise InvalidTransaction(
                        {
                            "ActionsValidation": {
                                "UnsupportedProtocolFeature": {
                                    "protocol_feature": "GlobalContracts",
                                    "version": PROTOCOL_VERSION,
                                }
                            }
                        }
                    )

    # Block production ---------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    async def run(self) -> None:
        """Produce blocks until stop()."""
        while not self._stopped:
            delay = self._next_block_delay()
            if delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            try:
                self.produce_block()
            except Exception:
                log.exception("block production failed")
                raise

    def stall(self, seconds: float) -> None:
        """Produce no block for `seconds` (a stalled network): the RPC still answers, transactions wait in the
        mempool, and no time passes on chain until blocks come again."""
        self._stalled_until = max(self._stalled_until, time.monotonic() + seconds)

    def _next_block_delay(self) -> float:
        now = time.monotonic()
        if now < self._stalled_until:
            return self._stalled_until - now
        config = self.config
        if self._patches or self._ff_waiters:
            return 0.0
        fresh = [record.arrived for record in self._mempool if record.arrived > self._last_block_at]
        if fresh:
            due = min(max(fresh) + config.tx_batch_quiet, min(fresh) + config.block_interval)
        elif self._incoming:
            due = self._last_block_at + config.receipt_delay
        else:
            due = self._last_block_at + config.block_interval
            if self._mempool:  # only transactions held back for a nonce gap: wake when the first is let go
                release = min(record.arrived for record in self._mempool) + config.nonce_gap_wait
                due = min(due, max(release, self._last_block_at + config.receipt_delay))
        return due - now

    def produce_block(self) -> Block:
        prev = self.head
        height = prev.height + max(1, self._ff_height)
        self._time_offset_ns += self._ff_ns
        self._ff_height = self._ff_ns = 0
        ff_waiters, self._ff_waiters = self._ff_waiters, []
        timestamp = max(prev.timestamp + 1, time.time_ns() + self._time_offset_ns)
        block = self._make_block(height, prev.hash, prev.height, timestamp)
        context = block.context

        patches, self._patches = self._patches, []
        for patch in patches:
            update = StateUpdate(self.store)
            try:
                patch.apply(update, context)
            except Exception as exc:
                if not patch.done.done():
                    patch.done.set_exception(exc)
                continue
            # State patched outside transactions: nearcore's sandbox patch_state commits it as a migration.
            update.commit(height, MIGRATION)

        outgoing: list[Receipt] = []
        local: list[Receipt] = []
        transactions, self._mempool = self._ready_transactions()
        for record in transactions:
            receipt = self._convert(record, block)
            if receipt is None:
                continue
            block.transactions.append(record.signed)
            if receipt.receiver_id == receipt.signer_id:
                local.append(receipt)
            else:
                outgoing.append(receipt)

        incoming, self._incoming = self._incoming, []
        for pending in [*local, *incoming]:
            self._process(pending, block, outgoing)
        self._incoming = outgoing

        self.total_supply -= block.tokens_burnt
        block.total_supply = self.total_supply
        self._append(block)
        for patch in patches:
            if not patch.done.done():
                patch.done.set_result(block)
        for waiter in ff_waiters:
            if not waiter.done():
                waiter.set_result(block)
        return block

    def _ready_transactions(self) -> tuple[list[TxRecord], list[TxRecord]]:
        """The pending transactions for this block in nonce order per access key, and those held back.

        A transaction whose nonce leaves a gap after its key's nonce waits (up to `nonce_gap_wait`) for the
        ones in between, which a client sending in parallel may have had delivered a moment later: with
        nearcore's one-second blocks they would share a block and be ordered, with this devnet's short
        blocks they could land in the wrong order and fail with InvalidNonce.
        """
        now = time.monotonic()
        ordered = sorted(
            self._mempool,
            key=lambda r: (
                r.signed.transaction.signer_id,
                r.signed.transaction.public_key.data,
                r.signed.transaction.nonce,
            ),
        )
        ready: list[TxRecord] = []
        held: list[TxRecord] = []
        held_groups: set[tuple[str, bytes]] = set()
        expected: dict[tuple[str, bytes], int] = {}
        latest = StateUpdate(self.store)
        for record in ordered:
            tx = record.signed.transaction
            group = (tx.signer_id, tx.public_key.data)
            if group in held_groups:
                held.append(record)
                continue
            if group not in expected:
                key = latest.access_key(tx.signer_id, tx.public_key)
                # A missing key is left for _convert to reject.
                expected[group] = tx.nonce if key is None else key.nonce + 1
            if tx.nonce > expected[group] and now - record.arrived < self.config.nonce_gap_wait:
                held.append(record)
                held_groups.add(group)
                continue
            ready.append(record)
            expected[group] = max(expected[group], tx.nonce + 1)
        return ready, held

    def _convert(self, record: TxRecord, block: Block) -> ActionReceipt | None:
        tx = record.signed.transaction
        update = StateUpdate(self.store)
        try:
            charge = self._validate(record.signed, update, block.height)
        except InvalidTransaction as exc:
            log.info("transaction %s dropped at inclusion: %s", record.hash, exc.error)
            record.rejection = exc.error
            self.txs.pop(record.hash, None)
            return None
        update.set_account(tx.signer_id, replace(charge.signer, amount=charge.signer.amount - charge.cost))
        key = replace(charge.key, nonce=tx.nonce)
        if key.permission is not None and key.permission.allowance is not None:
            key = replace(key, permission=replace(key.permission, allowance=key.permission.allowance - charge.gas_cost))
        update.put_record(access_key_key(tx.signer_id, tx.public_key), key)
        update.commit(block.height, ChangeCause.transaction(record.hash))
        receipt = ActionReceipt(
            receipt_id=derive_id(record.hash, block.hash_bytes, 0),
            predecessor_id=tx.signer_id,
            receiver_id=tx.receiver_id,
            signer_id=tx.signer_id,
            signer_public_key=tx.public_key,
            gas_price=self.config.gas_price,
            actions=tx.actions,
            tx_hash=record.hash,
        )
        tokens_burnt = charge.send_gas * self.config.gas_price
        self.outcomes[record.hash] = ExecutionOutcome(
            id=record.hash,
            block_hash=block.hash,
            block_height=block.height,
            logs=[],
            receipt_ids=[receipt.receipt_id],
            gas_burnt=charge.send_gas,
            tokens_burnt=tokens_burnt,
            executor_id=tx.signer_id,
            status={"SuccessReceiptId": receipt.receipt_id},
            metadata={"version": 1, "gas_profile": None},
        )
        block.gas_burnt += charge.send_gas
        block.tokens_burnt += tokens_burnt
        record.included_height = block.height
        record.last_height = block.height
        record.pending = {receipt.receipt_id}
        self.receipts[receipt.receipt_id] = receipt
        return receipt

    def _process(self, receipt: Receipt, block: Block, outgoing: list[Receipt]) -> None:
        block.receipts.append(receipt)
        self.receipts[receipt.receipt_id] = receipt
        if isinstance(receipt, DataReceipt):
            self._received_data[receipt.data_id] = receipt.data
            waiting_id = self._awaited_data.pop(receipt.data_id, None)
            if waiting_id is not None:
                waiting = self._postponed[waiting_id]
                if all(data_id in self._received_data for data_id in waiting.input_data_ids):
                    del self._postponed[waiting_id]
                    self._execute(waiting, block, outgoing)
            return
        missing = [data_id for data_id in receipt.input_data_ids if data_id not in self._received_data]
        if missing:
            self._postponed[receipt.receipt_id] = receipt
            for data_id in missing:
                self._awaited_data[data_id] = receipt.receipt_id
            return
        self._execute(receipt, block, outgoing)

    def _execute(self, receipt: ActionReceipt, block: Block, outgoing: list[Receipt]) -> None:
        inputs = [self._received_data.pop(data_id) for data_id in receipt.input_data_ids]
        update = StateUpdate(self.store)
        result = apply_action_receipt(
            receipt,
            block.context,
            update,
            inputs,
            registrar_id=self.config.root_account_id,
            gas_price=self.config.gas_price,
            enforce_storage_staking=self.config.enforce_storage_staking,
        )
        outcome = result.outcome
        if "Failure" not in outcome.status:
            receiver = update.account(receipt.receiver_id)
            if receiver is not None:
                # nearcore writes the receiver's account after every successful action receipt, so each one
                # shows among the block's account changes.
                update.set_account(receipt.receiver_id, receiver)
            update.commit(block.height, ChangeCause.receipt(receipt.receipt_id))
        else:
            log.debug("receipt %s on %s failed: %s", receipt.receipt_id, receipt.receiver_id, outcome.status)
        self.outcomes[receipt.receipt_id] = outcome
        for new in result.new_receipts:
            self.receipts[new.receipt_id] = new
        outgoing.extend(result.new_receipts)
        block.gas_burnt += outcome.gas_burnt
        block.tokens_burnt += outcome.tokens_burnt
        record = self.txs.get(receipt.tx_hash)
        if record is not None:
            record.pending.discard(receipt.receipt_id)
            record.pending.update(r.receipt_id for r in result.new_receipts if isinstance(r, ActionReceipt))
            record.last_height = block.height

    # Devnet controls ------------------------------------------------------------------------------------------

    async def fast_forward(self, delta_height: int, delta_ns: int) -> Block:
        """Produce one block `delta_height` heights and `delta_ns` chain nanoseconds after the head."""
        waiter: asyncio.Future[Block] = asyncio.get_running_loop().create_future()
        self._ff_height += delta_height
        self._ff_ns += delta_ns
        self._ff_waiters.append(waiter)
        self._wake.set()
        return await waiter

    async def create_account(self, account_id: str, public_keys: Iterable[PublicKey], balance: int) -> Block:
        """Create a funded account directly in the next block (the balance is new supply)."""
        if not is_valid_account_id(account_id):
            raise ValueError(f"invalid account id {account_id!r}")
        keys = list(public_keys)

        def apply(update: StateUpdate, block: BlockContext) -> None:
            if update.account(account_id) is not None:
                raise ValueError(f"account {account_id} already exists")
            update.set_account(account_id, AccountRecord(amount=balance, storage_usage=ACCOUNT_RECORD_BYTES))
            nonce = (block.height - 1) * NONCE_RANGE_MULTIPLIER
            for key in keys:
                update.put_record(access_key_key(account_id, key), AccessKeyRecord(nonce, None))
            self.total_supply += balance

        done: asyncio.Future[Block] = asyncio.get_running_loop().create_future()
        self._patches.append(_Patch(apply, done))
        self._wake.set()
        return await done

    # Transaction status ---------------------------------------------------------------------------------------

    def satisfied(self, record: TxRecord, wait_until: WaitUntil) -> bool:
        if record.rejection is not None or wait_until == "NONE":
            return True
        if record.included_height is None:
            return False
        final_height = self.final_block().height
        match wait_until:
            case "INCLUDED":
                return True
            case "INCLUDED_FINAL":
                return record.included_height <= final_height
            case "EXECUTED_OPTIMISTIC":
                return record.executed
            case "EXECUTED":
                return record.executed and record.included_height <= final_height
            case "FINAL":
                return record.executed and record.last_height <= final_height
        return False

    def achieved(self, record: TxRecord) -> WaitUntil:
        for level in reversed(WAIT_LEVELS):
            if self.satisfied(record, level):
                return level
        return "NONE"

    async def wait(self, record: TxRecord, wait_until: WaitUntil, within_s: float) -> bool:
        """Wait until `record` reaches `wait_until`; False when `within_s` seconds pass first."""
        try:
            async with asyncio.timeout(within_s):
                while not self.satisfied(record, wait_until):
                    await self._new_block.wait()
        except TimeoutError:
            return False
        return True

    def receipt_order(self, record: TxRecord) -> list[str]:
        """Ids of the executed receipts of a transaction, depth first from its first receipt (nearcore's
        order of receipts_outcome)."""
        tx_outcome = self.outcomes.get(record.hash)
        if tx_outcome is None:
            return []
        order: list[str] = []
        stack = list(reversed(tx_outcome.receipt_ids))
        while stack:
            receipt_id = stack.pop()
            outcome = self.outcomes.get(receipt_id)
            if outcome is None:
                continue
            order.append(receipt_id)
            stack.extend(reversed(outcome.receipt_ids))
        return order

    def final_status(self, record: TxRecord) -> Any:
        """nearcore's FinalExecutionStatus: follow the receipt each outcome hands its result to."""
        looking_for = record.hash
        if looking_for not in self.outcomes:
            return "NotStarted"
        while True:
            outcome = self.outcomes.get(looking_for)
            if outcome is None:
                return "Started"
            status = outcome.status
            if "SuccessReceiptId" in status:
                looking_for = status["SuccessReceiptId"]
                continue
            return status


def _flatten(actions: Iterable[Any]) -> Iterable[Any]:
    for action in actions:
        yield action
        if isinstance(action, Delegate):
            yield from action.delegate_action.actions
