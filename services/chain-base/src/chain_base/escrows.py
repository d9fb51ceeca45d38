"""The escrow contracts as domain operations: read, create, withdraw, cancel, balances.

Every write simulates its call first (eth_estimateGas), so a business revert comes back as a named error without
spending gas, and repeating a step that already happened sends nothing (the saga may retry any step after a
crash): the simulation of a lock that exists reverts EscrowExists, of a withdrawal already made NotActive, and
only then is the escrow read to tell the caller how it stands. Nothing is read that this service can compute or
already knows: lock ids are hashed locally as the contracts hash them, a token's code and an unlimited allowance
are remembered, and the terms of an escrow come from its EscrowCreated log.

Lock index: where each escrow was created and closed, learned from the receipts of this service's own
transactions, from the events its watchers scan and from any log scan GetLock had to make. A view of an
escrow the index knows reads its state from its one contract and checks that the indexed blocks are
still canonical (their hashes); only an escrow it does not know, or whose blocks were replaced by a
reorg, costs an eth_getLogs scan from the deployment block. The escrow's state is always read from chain.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import Any

from eth_abi.abi import encode
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from swap_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from swap_runtime.singleflight import SingleFlight
from web3.contract import AsyncContract
from web3.contract.async_contract import AsyncContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.types import LogReceipt, TxParams, TxReceipt, Wei

from chain_base import abi, orders
from chain_base.model import (
    NATIVE,
    ZERO_ADDRESS,
    DstParams,
    Escrow,
    EscrowView,
    SrcOrder,
    State,
    Timelocks,
    TxRef,
)
from chain_base.reverts import to_domain_error
from chain_base.rpc import Rpc
from chain_base.tx import TxSender

log = logging.getLogger(__name__)

CREATED = "EscrowCreated"
WITHDRAWN = "EscrowWithdrawn"
CANCELLED = "EscrowCancelled"
MAX_UINT256 = 2**256 - 1
_GAS_HEADROOM = 1.25
# Escrows the index remembers; beyond it the least recently used are forgotten and found again by a scan.
_INDEXED = 100_000
# Contract addresses remembered as having code; beyond it the oldest are asked about again.
_CODE_REMEMBERED = 1_000
_CLOSED_STATE = {WITHDRAWN: State.WITHDRAWN, CANCELLED: State.CANCELLED}


@dataclass
class _Known:
    """What the index knows of one escrow: its contract, and where it was created and closed."""

    contract: str
    created: TxRef | None = None
    closed: TxRef | None = None
    closed_kind: str = ""
    secret: bytes | None = None
    escrow: Escrow | None = None  # its terms as created (state ACTIVE), from its EscrowCreated log


def event_topic(name: str, contract: str = "EscrowSrc") -> bytes:
    item = next(i for i in abi.load(contract) if i.get("type") == "event" and i["name"] == name)
    return keccak(text=f"{name}({','.join(_abi_type(x) for x in item['inputs'])})")


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][5:]}"
    return str(param["type"])


def tx_ref(receipt: TxReceipt | LogReceipt) -> TxRef:
    return TxRef(
        tx_hash=HexBytes(receipt["transactionHash"]).to_0x_hex(),
        block_number=int(receipt["blockNumber"]),
        block_hash=HexBytes(receipt["blockHash"]).to_0x_hex(),
    )


def _token_out(address: str) -> str:
    return NATIVE if int(address, 16) == 0 else to_checksum_address(address)


def _dst_id_types() -> list[str]:
    item = next(i for i in abi.load("EscrowDst") if i.get("type") == "function" and i["name"] == "dstEscrowId")
    return [_abi_type(x) for x in item["inputs"]]


_DST_ID_TYPES = _dst_id_types()


def dst_escrow_id(depositor: str, params: DstParams) -> bytes:
    """EscrowDst.dstEscrowId: keccak256(abi.encode(depositor, params)), computed here."""
    return keccak(encode(_DST_ID_TYPES, [depositor, params.as_tuple()]))


def created_escrow(escrow_id: bytes, args: dict[str, Any], contract: str) -> Escrow:
    """The escrow an EscrowCreated event describes, as it stood then (ACTIVE)."""
    tl = args["timelocks"]
    timelocks = (
        tuple(tl)
        if isinstance(tl, tuple | list)
        else tuple(tl[k] for k in ("withdrawal", "publicWithdrawal", "cancellation", "publicCancellation"))
    )
    return Escrow(
        id=escrow_id,
        state=State.ACTIVE,
        depositor=to_checksum_address(args["depositor"]),
        beneficiary=to_checksum_address(args["beneficiary"]),
        operator=to_checksum_address(args["operator"]),
        token=_token_out(args["token"]),
        amount=int(args["amount"]),
        safety_deposit=int(args["safetyDeposit"]),
        hashlock=bytes(args["hashlock"]),
        timelocks=Timelocks(*map(int, timelocks)),
        locked_at=int(args["lockedAt"]),
        contract=contract,
    )


class Escrows:
    def __init__(self, rpc: Rpc, sender: TxSender, escrow_src: str, escrow_dst: str, start_block: int) -> None:
        self._rpc = rpc
        self._sender = sender
        w3 = rpc.w3
        self.src: AsyncContract = w3.eth.contract(address=to_checksum_address(escrow_src), abi=abi.load("EscrowSrc"))
        self.dst: AsyncContract = w3.eth.contract(address=to_checksum_address(escrow_dst), abi=abi.load("EscrowDst"))
        self._erc20_abi = abi.load("TestToken")
        self.start_block = start_block
        self.topics = {event_topic(n): n for n in (CREATED, WITHDRAWN, CANCELLED)}
        self.addresses: list[ChecksumAddress] = [self.src.address, self.dst.address]
        self._allowance_lock = asyncio.Lock()
        self._unlimited: set[str] = set()  # tokens the dst escrow may pull from the resolver without limit
        self._has_code: OrderedDict[str, None] = OrderedDict()  # addresses seen with code, the newest last
        self._index: OrderedDict[bytes, _Known] = OrderedDict()
        # One transaction per step of a lock at a time (a retried or second request joins the one in flight).
        self._steps: SingleFlight[tuple[str, bytes], tuple[bytes, bool]] = SingleFlight()
        self._closes: SingleFlight[tuple[str, bytes], TxRef | None] = SingleFlight()

    @property
    def resolver(self) -> str:
        return self._sender.address

    # -- reads -------------------------------------------------------------------------------------

    async def head(self) -> tuple[int, int]:
        """(latest block number, its timestamp)."""
        block = await self._rpc.latest_block()
        return int(block["number"]), int(block["timestamp"])

    async def read(self, escrow_id: bytes) -> Escrow | None:
        async def get(contract: AsyncContract) -> Escrow | None:
            raw = await self._rpc.call("getEscrow", lambda: contract.functions.getEscrow(escrow_id).call())
            return self._escrow(escrow_id, raw, contract.address)

        src, dst = await asyncio.gather(get(self.src), get(self.dst))
        return src or dst

    @staticmethod
    def _escrow(escrow_id: bytes, raw: Any, contract: str) -> Escrow | None:
        (depositor, beneficiary, operator, token, amount, deposit, hashlock, tl, locked_at, state) = raw
        if State(state) is State.ABSENT:
            return None
        return Escrow(
            id=escrow_id,
            state=State(state),
            depositor=to_checksum_address(depositor),
            beneficiary=to_checksum_address(beneficiary),
            operator=to_checksum_address(operator),
            token=_token_out(token),
            amount=int(amount),
            safety_deposit=int(deposit),
            hashlock=bytes(hashlock),
            timelocks=Timelocks(*map(int, tl)),
            locked_at=int(locked_at),
            contract=contract,
        )

    async def history(self, escrow_id: bytes) -> list[LogReceipt]:
        """Every event of one escrow, oldest first (one eth_getLogs over both contracts)."""
        w3 = self._rpc.w3
        params: Any = {
            "address": self.addresses,
            "fromBlock": self.start_block,
            "toBlock": "latest",
            "topics": [list(self.topics), escrow_id],
        }
        return await self._rpc.call("get_logs", lambda: w3.eth.get_logs(params))

    def decode(self, log_entry: LogReceipt) -> tuple[str, dict[str, Any]]:
        name = self.topics[bytes(log_entry["topics"][0])]
        contract = self.src if log_entry["address"] == self.src.address else self.dst
        event = contract.events[name]().process_log(log_entry)
        return name, dict(event["args"])

    # -- lock index --------------------------------------------------------------------------------------

    def learn(self, entry: LogReceipt) -> None:
        """Records an escrow event (from a receipt, a watcher's scan or a history scan)."""
        if entry["address"] not in self.addresses or not entry["topics"]:
            return
        if bytes(entry["topics"][0]) not in self.topics:
            return
        name, args = self.decode(entry)
        escrow_id = bytes(args["id"])
        known = self._index.pop(escrow_id, None) or _Known(contract=str(entry["address"]))
        if name == CREATED:
            known.created = tx_ref(entry)
            known.escrow = created_escrow(escrow_id, args, str(entry["address"]))
        else:
            known.closed = tx_ref(entry)
            known.closed_kind = name
            known.secret = bytes(args["secret"]) if name == WITHDRAWN else None
        self._index[escrow_id] = known
        if len(self._index) > _INDEXED:
            self._index.popitem(last=False)

    def forget(self, escrow_id: bytes) -> None:
        """Drops what the index knows of an escrow (its events were retracted by a reorg)."""
        self._index.pop(escrow_id, None)

    async def _canonical(self, refs: list[TxRef], head: int, head_hash: str) -> bool:
        """Whether every block named is still the canonical block at its height."""
        w3 = self._rpc.w3

        async def hash_at(number: int) -> str:
            if number == head:
                return head_hash
            block = await self._rpc.call("get_block", lambda: w3.eth.get_block(number))
            return HexBytes(block["hash"]).to_0x_hex()

        if any(ref.block_number > head for ref in refs):
            return False
        expected = {ref.block_number: ref.block_hash for ref in refs}
        actual = await asyncio.gather(*(hash_at(number) for number in expected))
        return list(expected.values()) == list(actual)

    async def _view_indexed(self, escrow_id: bytes, known: _Known) -> tuple[bool, EscrowView | None]:
        """(whether the index could tell, the view); when it could not, a scan is needed."""
        contract = self.src if known.contract == self.src.address else self.dst
        raw, latest = await asyncio.gather(
            self._rpc.call("getEscrow", lambda: contract.functions.getEscrow(escrow_id).call()),
            self._rpc.latest_block(),
        )
        head = int(latest["number"])
        escrow = self._escrow(escrow_id, raw, contract.address)
        if escrow is None:  # its creation was reorged out
            self.forget(escrow_id)
            return True, None
        closing = escrow.state in (State.WITHDRAWN, State.CANCELLED)
        if known.created is None or (closing and _CLOSED_STATE.get(known.closed_kind) is not escrow.state):
            return False, None
        refs = [known.created, known.closed] if closing and known.closed is not None else [known.created]
        if not await self._canonical(refs, head, HexBytes(latest["hash"]).to_0x_hex()):
            self.forget(escrow_id)
            return False, None
        closed = known.closed if closing else None
        return True, EscrowView(
            escrow=escrow,
            created=known.created,
            confirmations=max(head - known.created.block_number + 1, 0),
            secret=known.secret if escrow.state is State.WITHDRAWN else None,
            closed=closed,
            closed_confirmations=max(head - closed.block_number + 1, 0) if closed else 0,
        )

    def receipt_view(self, escrow_id: bytes) -> EscrowView | None:
        """The escrow as this service's own transaction just left it, from that receipt's logs and no read: the
        reply to the call that sent it. None when the index does not know its terms."""
        known = self._index.get(escrow_id)
        if known is None or known.escrow is None or known.created is None:
            return None
        state = _CLOSED_STATE.get(known.closed_kind, State.ACTIVE) if known.closed is not None else State.ACTIVE
        closed = known.closed if state is not State.ACTIVE else None
        head = max(self._rpc.latest_seen(), known.created.block_number, closed.block_number if closed else 0)
        return EscrowView(
            escrow=replace(known.escrow, state=state),
            created=known.created,
            confirmations=head - known.created.block_number + 1,
            secret=known.secret if state is State.WITHDRAWN else None,
            closed=closed,
            closed_confirmations=head - closed.block_number + 1 if closed else 0,
        )

    async def view(self, escrow_id: bytes) -> EscrowView | None:
        known = self._index.get(escrow_id)
        if known is not None:
            answered, indexed = await self._view_indexed(escrow_id, known)
            if answered:
                return indexed
        return await self._view_from_logs(escrow_id)

    async def _view_from_logs(self, escrow_id: bytes) -> EscrowView | None:
        escrow, logs, (head, _) = await asyncio.gather(self.read(escrow_id), self.history(escrow_id), self.head())
        self.forget(escrow_id)
        if escrow is None:
            return None
        for entry in logs:
            self.learn(entry)
        created = closed = None
        secret = None
        for entry in logs:
            name, args = self.decode(entry)
            if name == CREATED:
                created = tx_ref(entry)
            else:
                closed = tx_ref(entry)
                if name == WITHDRAWN:
                    secret = bytes(args["secret"])
        depth = head - created.block_number + 1 if created else 0
        closed_depth = head - closed.block_number + 1 if closed else 0
        return EscrowView(
            escrow=escrow,
            created=created,
            confirmations=max(depth, 0),
            secret=secret,
            closed=closed,
            closed_confirmations=max(closed_depth, 0),
        )

    async def has_code(self, address: str) -> bool:
        """Whether a contract is deployed at `address`; a yes is remembered (code, once deployed, stays)."""
        w3 = self._rpc.w3
        who = to_checksum_address(address)
        if who in self._has_code:
            return True
        found = len(await self._rpc.call("get_code", lambda: w3.eth.get_code(who))) > 0
        if found:
            self._has_code[who] = None
            if len(self._has_code) > _CODE_REMEMBERED:  # callers name tokens: keep the memory bounded
                self._has_code.popitem(last=False)
        return found

    async def balance(self, account: str, token: str) -> int:
        w3 = self._rpc.w3
        who = to_checksum_address(account)
        if token == NATIVE:
            return int(await self._rpc.call("get_balance", lambda: w3.eth.get_balance(who)))
        erc20 = w3.eth.contract(address=to_checksum_address(token), abi=self._erc20_abi)
        return int(await self._rpc.call("balanceOf", lambda: erc20.functions.balanceOf(who).call()))

    # -- writes ------------------------------------------------------------------------------------

    async def create_dst(self, params: DstParams, dry_run: bool = False) -> tuple[bytes, bool]:
        """Locks the resolver's funds for a beneficiary. Returns (escrow id, whether a tx was sent); a dry
        run only computes the id."""
        escrow_id = dst_escrow_id(self.resolver, params)
        if dry_run:
            return escrow_id, False
        return await self._steps.run(("create", escrow_id), lambda: self._create_dst(escrow_id, params))

    async def _create_dst(self, escrow_id: bytes, params: DstParams) -> tuple[bytes, bool]:
        native = params.token == ZERO_ADDRESS
        value = params.safety_deposit + (params.amount if native else 0)
        fn = self.dst.functions.createDstEscrow(params.as_tuple())
        step = f"{escrow_id.hex()}:create"
        if not native and params.token in self._unlimited:
            try:
                return escrow_id, await self._create(fn, value, step, escrow_id)
            except FailedPrecondition as exc:
                if exc.reason != "TRANSFER_FAILED":
                    raise
                # The allowance was spent or revoked since (or the balance is short): look, then try once more.
                self._unlimited.discard(params.token)
        if not native:
            await self._ensure_allowance(params.token, self.dst.address, params.amount)
        return escrow_id, await self._create(fn, value, step, escrow_id)

    async def create_src(self, order: SrcOrder, signature: bytes, dry_run: bool = False) -> tuple[bytes, bool]:
        """Submits the maker's signed order; the escrow pulls the maker's tokens. A dry run only computes
        the escrow id."""
        if order.resolver != self.resolver:
            raise InvalidArgument("maker_order", f"the order must name this resolver {self.resolver}")
        escrow_id = self.order_id(order)
        if dry_run:
            return escrow_id, False
        fn = self.src.functions.createSrcEscrow(order.as_tuple(), signature)
        step = f"{escrow_id.hex()}:create"
        return await self._steps.run(
            ("create", escrow_id),
            lambda: self._created(escrow_id, self._create(fn, order.safety_deposit, step, escrow_id)),
        )

    def order_id(self, order: SrcOrder) -> bytes:
        """EscrowSrc.hashOrder: the order's EIP-712 digest, computed here."""
        typed = orders.typed_data(self._sender.chain_id, self.src.address, orders.order_message(order))
        return orders.digest(typed)

    @staticmethod
    async def _created(escrow_id: bytes, sent: Awaitable[bool]) -> tuple[bytes, bool]:
        return escrow_id, await sent

    async def _create(self, fn: AsyncContractFunction, value: int, step: str, escrow_id: bytes) -> bool:
        """Sends an escrow's creation; False when it exists already (nothing is sent). The simulation says
        EscrowExists, or for a source lock whose order was used already, NonceUsed or OrderExpired: any refusal
        is followed by a read of the escrow before it is passed on."""
        try:
            await self._send(fn, value, "create lock", step=step)
        except FailedPrecondition as exc:
            if exc.reason == "LOCK_EXISTS" or await self.read(escrow_id) is not None:
                return False
            raise
        return True

    async def withdraw(self, escrow_id: bytes, secret: bytes) -> TxRef | None:
        """Withdraws with the secret; None when it was withdrawn already (nothing sent). A withdrawal of the
        same escrow already in flight is joined, not sent again."""
        return await self._closes.run(("withdraw", escrow_id), lambda: self._withdraw(escrow_id, secret))

    async def _withdraw(self, escrow_id: bytes, secret: bytes) -> TxRef | None:
        known = self._index.get(escrow_id)
        digest = hashlib.sha256(secret).digest()
        if known is not None and known.escrow is not None and known.escrow.hashlock == digest:
            # Terms known from its creation (the id is their hash, so they cannot differ): the simulation
            # checks the state. Only a refusal costs a read, which says whether it was withdrawn already.
            try:
                return await self._withdraw_escrow(escrow_id, known.escrow, secret)
            except FailedPrecondition as exc:
                if exc.reason != "LOCK_NOT_ACTIVE":
                    raise
        escrow = await self._active_or_done(escrow_id, State.WITHDRAWN)
        if digest != escrow.hashlock:
            raise InvalidArgument("secret", "does not match the lock's hashlock")
        if escrow.state is State.WITHDRAWN:
            return None
        return await self._withdraw_escrow(escrow_id, escrow, secret)

    async def _withdraw_escrow(self, escrow_id: bytes, escrow: Escrow, secret: bytes) -> TxRef:
        contract = self._contract(escrow)
        own = escrow.operator == self.resolver
        fn = (
            contract.functions.withdraw(escrow_id, secret)
            if own
            else contract.functions.publicWithdraw(escrow_id, secret)
        )
        return tx_ref(await self._send(fn, 0, "withdraw", step=f"{escrow_id.hex()}:withdraw"))

    async def cancel(self, escrow_id: bytes) -> TxRef | None:
        """Cancels (funds back to the depositor); None when it was cancelled already. A cancellation of the
        same escrow already in flight is joined, not sent again."""
        return await self._closes.run(("cancel", escrow_id), lambda: self._cancel(escrow_id))

    async def _cancel(self, escrow_id: bytes) -> TxRef | None:
        escrow = await self._active_or_done(escrow_id, State.CANCELLED)
        if escrow.state is State.CANCELLED:
            return None
        contract = self._contract(escrow)
        own = escrow.operator == self.resolver
        fn = contract.functions.cancel(escrow_id) if own else contract.functions.publicCancel(escrow_id)
        return tx_ref(await self._send(fn, 0, "cancel", step=f"{escrow_id.hex()}:cancel"))

    async def _active_or_done(self, escrow_id: bytes, done: State) -> Escrow:
        escrow = await self.read(escrow_id)
        if escrow is None:
            raise NotFound(f"no escrow {HexBytes(escrow_id).to_0x_hex()}", reason="LOCK_NOT_FOUND")
        if escrow.state not in (State.ACTIVE, done):
            raise FailedPrecondition(
                f"the escrow is {escrow.state.name.lower()}",
                reason="LOCK_NOT_ACTIVE",
                metadata={"state": escrow.state.name},
            )
        return escrow

    def _contract(self, escrow: Escrow) -> AsyncContract:
        return self.src if escrow.contract == self.src.address else self.dst

    async def _ensure_allowance(self, token: str, spender: str, amount: int) -> None:
        w3 = self._rpc.w3
        erc20 = w3.eth.contract(address=to_checksum_address(token), abi=self._erc20_abi)
        async with self._allowance_lock:
            current = await self._rpc.call(
                "allowance", lambda: erc20.functions.allowance(self.resolver, spender).call()
            )
            if int(current) == MAX_UINT256:
                self._unlimited.add(token)
            if int(current) >= amount:
                return
            log.info("approving escrow for resolver token", extra={"token": token})
            await self._send(erc20.functions.approve(spender, MAX_UINT256), 0, "approve")
            self._unlimited.add(token)

    async def _send(self, fn: AsyncContractFunction, value: int, action: str, step: str | None = None) -> TxReceipt:
        """Sends a call; with a `step`, a transaction sent for it before (by a process that stopped, or a call that
        timed out) is resumed instead, and nothing is simulated: the chain may be about to run it."""
        if step is not None and (resumed := await self._sender.resume(step)) is not None:
            for entry in resumed["logs"]:
                self.learn(entry)
            return resumed
        call: TxParams = {"from": self.resolver, "value": Wei(value)}
        try:
            gas = await self._rpc.call("estimate_gas", lambda: fn.estimate_gas(call))
        except ContractCustomError as exc:
            raise to_domain_error(exc.data, action) from None
        except ContractLogicError as exc:
            raise FailedPrecondition(f"{action} would revert: {exc.message}", reason="REVERTED") from None
        data = fn._encode_transaction_data()
        tx: TxParams = {"to": fn.address, "data": data, "value": Wei(value), "gas": int(gas * _GAS_HEADROOM)}
        receipt = await self._sender.send(tx, step)
        for entry in receipt["logs"]:
            self.learn(entry)
        return receipt
