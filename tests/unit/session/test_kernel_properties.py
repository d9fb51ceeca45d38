"""The safety kernel against a model of two chains and an adversary (Hypothesis stateful testing).

The machine plays the saga: gather facts from the model chains -> `kernel.decide` -> carry the decision out
the way saga.py does (persist memory, submit the transaction to the model chain) -> decide again, until the
kernel waits or halts. Everything else the machine does is the world around the swap.

The model
  time     one real clock R; each chain stamps its blocks with R + its own offset (the offsets are
           arbitrary: the kernel compares durations on each chain's own clock). Every tick produces one block
           per chain. The runner reads each chain through a head that trails R by up to SKEW seconds (both the
           reported time and the locks it sees), never goes back, and sees every block within SKEW seconds of
           its production while it is up.
  inclusion a transaction sent at R lands in a block by R + the chain's inclusion bound (ChainFact.inclusion_s);
           when it lands the contract's rules decide: a withdrawal outside [withdrawal_at, cancellation_at),
           a cancel before cancellation_at, a create on an existing id or (resolver-submitted order) after the
           order deadline reverts. A revert of the session's create is reported back (src_rejected /
           dst_rejected) unless its reply was lost.
  finality a creation / closing is final `confirmations` blocks deep.

The adversary may
  - delay any transaction up to its chain's inclusion bound, and make any pending transaction revert;
  - reorg a chain up to confirmations - 1 blocks: transactions of those blocks are dropped, the rest replayed;
  - take the runner down for a few ticks (an outage: it reads nothing, sends nothing);
  - as a third party, publicly withdraw either lock once the secret is public (from the first broadcast of a
    withdrawal, on either chain) and publicly cancel either lock once the contract allows it;
  - as the maker: execute, cancel, let the quote expire and, where the maker sends the source lock (NEAR),
    send it at any time (before or after executing, after cancelling), with the agreed terms or a wrong
    amount, held up by a stall beyond the inclusion bound; the HTLC refuses it after the order deadline. The
    maker can public-cancel the source like anyone. In secret mode "maker" the maker holds the secret: releases it
    in awaiting_secret at any time (even past the deadline) or never, and may publicly withdraw the
    destination with it (paying the receiver) whenever the contract allows.
  An operator pays the receiver as soon as the kernel asks (PAY_RECEIVER).

Invariants (checked after every step; I4 in teardown, after running out the clock)
  I1 the maker never loses: the source withdrawn => the receiver paid (through the lock or directly), at the
     end; at every step, the kernel collects the source only after it read the destination withdrawn, and a
     session never ends while the source is withdrawn and the receiver unpaid.
  I2 the resolver never pays for nothing: never the receiver paid while the source went back to the maker
     (nor the receiver paid twice), unless the model went beyond the kernel's bounds (flagged below: the
     runner down while the destination is withdrawn and the source is not, or the resolver's source
     withdrawal reverted / dropped by the adversary: the kernel's budget leaves no time for a second try).
  I3 terminal states match the chains: completed => both withdrawn (or the source withdrawn and the receiver
     paid directly); refunded => every lock at a session id cancelled; cancelled / failed / timeout => no lock
     at any id the session announced.
  I4 with every window passed and every pending transaction landed, the session has ended and every lock at
     its ids is settled (within bounds).
  Every Move the kernel returns is one states.check() accepts.
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass, field, replace
from enum import Enum

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from session.kernel import (
    ABSENT_LOCK,
    Action,
    ChainFact,
    Decision,
    Facts,
    Halt,
    LockFact,
    LockState,
    Memory,
    Move,
    Send,
    Terms,
    Timelocks,
    Wait,
    decide,
)
from session.states import TERMINAL, State, check

MAKER = "maker.near"
RECEIVER = "0xreceiver"
RESOLVER = "resolver"
THIRD = "third-party"
HASHLOCK = "ab" * 32
SRC_TOKEN, DST_TOKEN = "src-token", "dst-token"
SRC_AMOUNT, DST_AMOUNT = "1000", "990"
SRC_ID, DST_ID = "src-lock", "dst-lock"
LOSS_STATES = frozenset({State.CANCELLED, State.FAILED, State.TIMEOUT})
# The long profiles run for many minutes: no per-test timeout there.
pytestmark = pytest.mark.timeout(300 if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci" else 0)

# -- the chains ------------------------------------------------------------------------------------------


class Op(Enum):
    CREATE = "create"
    WITHDRAW = "withdraw"  # the operator, in [withdrawal_at, cancellation_at)
    PUBLIC_WITHDRAW = "public_withdraw"  # anyone with the secret, in [public_withdrawal_at, cancellation_at)
    CANCEL = "cancel"  # the operator, from cancellation_at
    PUBLIC_CANCEL = "public_cancel"  # anyone, from public_cancellation_at


@dataclass(frozen=True)
class Escrow:
    """A lock as its contract stores it (locked_at: the creating block's stamp)."""

    depositor: str
    beneficiary: str
    operator: str
    token: str
    amount: str
    timelocks: Timelocks
    locked_at: int = 0
    state: LockState = LockState.ACTIVE
    created: int = 0  # block index of the creation
    closed: int = -1  # block index of the withdrawal / cancellation

    def fact(self, height: int, confirmations: int) -> LockFact:
        t = self.timelocks
        return LockFact(
            state=self.state,
            final=height - self.created + 1 >= confirmations,
            closed_final=self.closed >= 0 and height - self.closed + 1 >= confirmations,
            hashlock=HASHLOCK,
            token=self.token,
            amount=self.amount,
            depositor=self.depositor,
            beneficiary=self.beneficiary,
            operator=self.operator,
            timelocks=t,
            withdrawal_at=self.locked_at + t.withdrawal,
            cancellation_at=self.locked_at + t.cancellation,
        )


@dataclass(eq=False)
class Tx:
    op: Op
    lock_id: str
    sender: str
    due: int  # real time by which it lands
    escrow: Escrow | None = None  # CREATE: the lock it creates
    deadline: int | None = None  # CREATE of a maker's order: the escrow refuses it after this stamp
    doomed: bool = False  # reverts whatever the windows say (out of gas, a bad nonce, ...)
    action: Action | None = None  # the session's action it carries
    reply: bool = True  # the runner hears a revert of its create (rejected)
    landed: bool = False  # included and effective (False: reverted or pending)


@dataclass
class Block:
    real: int
    stamp: int
    txs: list[Tx]
    locks: dict[str, Escrow]  # the contract's state after this block


class Chain:
    """One chain: blocks, a mempool, a contract holding the session's locks."""

    def __init__(self, name: str, offset: int, inclusion_s: int, confirmations: int, start: int) -> None:
        self.name = name
        self.offset = offset
        self.inclusion_s = inclusion_s
        self.confirmations = confirmations
        self.blocks = [Block(start, start + offset, [], {})]
        self.pending: list[Tx] = []
        self.view = start  # the real time of the runner's head: it sees blocks produced up to it

    @property
    def locks(self) -> dict[str, Escrow]:
        return self.blocks[-1].locks

    def stamp(self, real: int) -> int:
        return real + self.offset

    def send(self, tx: Tx) -> Tx:
        self.pending.append(tx)
        return tx

    def produce(self, real: int, rng: random.Random) -> list[Tx]:
        """A block at `real`: every due transaction and a random part of the others. Returns its txs."""
        txs = [tx for tx in self.pending if tx.due <= real or rng.random() < 0.5]
        self.pending = [tx for tx in self.pending if tx not in txs]
        locks = dict(self.locks)
        stamp = self.stamp(real)
        for tx in txs:
            self._apply(locks, tx, stamp, len(self.blocks))
        self.blocks.append(Block(real, stamp, txs, locks))
        return txs

    def reorg(self, depth: int, drop: list[bool]) -> list[Tx]:
        """Replaces the last `depth` blocks (same stamps) by ones without the dropped transactions."""
        start = max(len(self.blocks) - depth, 1)
        txs = [tx for block in self.blocks[start:] for tx in block.txs]
        dropped = [tx for tx, gone in zip(txs, drop + [False] * len(txs), strict=False) if gone]
        locks = dict(self.blocks[start - 1].locks)
        for index in range(start, len(self.blocks)):
            block = self.blocks[index]
            block.txs = [tx for tx in block.txs if tx not in dropped]
            for tx in block.txs:
                self._apply(locks, tx, block.stamp, index)
            block.locks = dict(locks)
        for tx in dropped:
            tx.landed = False
        return dropped

    @staticmethod
    def _apply(locks: dict[str, Escrow], tx: Tx, stamp: int, height: int) -> None:
        tx.landed = False
        lock = locks.get(tx.lock_id)
        if tx.doomed:
            return
        if tx.op is Op.CREATE:
            if lock is not None or tx.escrow is None or (tx.deadline is not None and stamp > tx.deadline):
                return
            locks[tx.lock_id] = replace(tx.escrow, locked_at=stamp, created=height)
            tx.landed = True
            return
        if lock is None or lock.state is not LockState.ACTIVE:
            return
        t, at = lock.timelocks, lock.locked_at
        if tx.op in {Op.WITHDRAW, Op.CANCEL} and tx.sender != lock.operator:
            return
        if tx.op in {Op.WITHDRAW, Op.PUBLIC_WITHDRAW}:
            opens = at + (t.withdrawal if tx.op is Op.WITHDRAW else t.public_withdrawal)
            if not opens <= stamp < at + t.cancellation:
                return
            locks[tx.lock_id] = replace(lock, state=LockState.WITHDRAWN, closed=height)
        else:
            if stamp < at + (t.cancellation if tx.op is Op.CANCEL else t.public_cancellation):
                return
            locks[tx.lock_id] = replace(lock, state=LockState.CANCELLED, closed=height)
        tx.landed = True

    def read(self, lock_id: str) -> tuple[int, LockFact]:
        """What the runner sees through its head: (chain time, the lock)."""
        height = len(self.blocks) - 1
        while self.blocks[height].real > self.view:
            height -= 1
        lock = self.blocks[height].locks.get(lock_id) if lock_id else None
        fact = ABSENT_LOCK if lock is None else lock.fact(height, self.confirmations)
        return self.stamp(self.view), fact

    def unseen_since(self) -> int | None:
        """The production time of the oldest block the runner has not seen yet."""
        oldest = None
        for block in reversed(self.blocks):
            if block.real <= self.view:
                break
            oldest = block.real
        return oldest

    def final(self, lock_id: str) -> bool:
        """The lock's closing (its creation when active) is at confirmation depth."""
        lock = self.locks.get(lock_id)
        return lock is not None and len(self.blocks) - max(lock.closed, lock.created) >= self.confirmations


# -- the session as the saga persists it -----------------------------------------------------------------


@dataclass
class Record:
    state: State = State.INITIALIZED
    executed: bool = False
    cancel_requested: bool = False
    quote_expired: bool = False
    dst_amount: str = ""
    dst_lock_id: str = ""
    src_sent_at: int = 0
    src_rejected: bool = False
    dst_sent_at: int = 0
    dst_rejected: bool = False
    secret_exposed: bool = False
    secret_known: bool = True
    receiver_paid_directly: bool = False
    alert: str = ""

    def memory(self) -> Memory:
        return Memory(
            state=self.state,
            executed=self.executed,
            cancel_requested=self.cancel_requested,
            quote_expired=self.quote_expired,
            dst_amount=self.dst_amount,
            dst_lock_id=self.dst_lock_id,
            src_sent_at=self.src_sent_at,
            src_rejected=self.src_rejected,
            dst_sent_at=self.dst_sent_at,
            dst_rejected=self.dst_rejected,
            secret_exposed=self.secret_exposed,
            secret_known=self.secret_known,
            receiver_paid_directly=self.receiver_paid_directly,
        )


@dataclass(frozen=True)
class Config:
    maker_submits_source: bool
    plan: tuple[Timelocks, Timelocks]  # (source, destination)
    reveal_margin_s: int
    src_inclusion_s: int
    dst_inclusion_s: int
    src_confirmations: int
    dst_confirmations: int
    skew_s: int
    dst_offset: int
    deadline_after_s: int
    maker_is_quick: bool  # executes (and sends the NEAR lock) at the start
    maker_holds_secret: bool = False  # secret mode "maker"


@st.composite
def plans(draw: st.DrawFn) -> tuple[Timelocks, Timelocks]:
    """(source, destination) timelocks: mostly a source cancellation the destination leg fits before."""
    dst_withdrawal = draw(st.integers(0, 3))
    dst_public = dst_withdrawal + draw(st.integers(0, 6))
    dst_cancellation = dst_public + draw(st.integers(1, 60))
    dst = Timelocks(dst_withdrawal, dst_public, dst_cancellation, dst_cancellation + draw(st.integers(0, 8)))
    src_withdrawal = draw(st.integers(0, 3))
    src_cancellation = max(dst_cancellation + draw(st.integers(-4, 120)), src_withdrawal + 1)
    src_public = draw(st.integers(src_withdrawal, src_cancellation - 1))
    src = Timelocks(src_withdrawal, src_public, src_cancellation, src_cancellation + draw(st.integers(0, 10)))
    return src, dst


configs = st.builds(
    Config,
    maker_submits_source=st.booleans(),
    plan=plans(),
    reveal_margin_s=st.integers(0, 6),
    src_inclusion_s=st.integers(1, 4),
    dst_inclusion_s=st.integers(1, 4),
    src_confirmations=st.integers(1, 3),
    dst_confirmations=st.integers(1, 3),
    skew_s=st.integers(0, 3),
    dst_offset=st.integers(-1_000, 1_000),
    deadline_after_s=st.integers(5, 60),
    maker_is_quick=st.integers(0, 3).map(bool),
    maker_holds_secret=st.booleans(),
)

START = 1_700_000_000


@dataclass
class World:
    """Both chains, the session's record and what the model knows beyond the kernel."""

    cfg: Config
    terms: Terms
    src: Chain
    dst: Chain
    record: Record = field(default_factory=Record)
    now: int = START  # R, the real clock
    secret_public: bool = False
    beyond_bounds: str = ""  # why the adversary left the kernel's bounds ("" while within)
    outage: int = 0  # ticks the runner still misses
    decisions: list[tuple[State, Decision]] = field(default_factory=list)


def new_world(cfg: Config) -> World:
    src = Chain("src", 0, cfg.src_inclusion_s, cfg.src_confirmations, START)
    dst = Chain("dst", cfg.dst_offset, cfg.dst_inclusion_s, cfg.dst_confirmations, START)
    terms = Terms(
        hashlock=HASHLOCK,
        maker=MAKER,
        receiver=RECEIVER,
        src_token=SRC_TOKEN,
        src_amount=SRC_AMOUNT,
        dst_token=DST_TOKEN,
        src_timelocks=cfg.plan[0],
        dst_timelocks=cfg.plan[1],
        reveal_margin_s=cfg.reveal_margin_s,
        order_deadline=src.stamp(START) + cfg.deadline_after_s,
        maker_submits_source=cfg.maker_submits_source,
        maker_holds_secret=cfg.maker_holds_secret,
    )
    world = World(cfg, terms, src, dst)
    world.record.secret_known = not cfg.maker_holds_secret
    return world


# -- the saga's part -------------------------------------------------------------------------------------


def gather(w: World) -> Facts:
    src_now, src_lock = w.src.read(SRC_ID)
    dst_now, dst_lock = w.dst.read(w.record.dst_lock_id)
    if LockState.WITHDRAWN in {src_lock.state, dst_lock.state}:
        w.record.secret_known = True  # the saga learns a secret it did not hold from the withdrawal
    return Facts(
        terms=w.terms,
        memory=w.record.memory(),
        src_chain=ChainFact(src_now, w.src.inclusion_s, RESOLVER),
        dst_chain=ChainFact(dst_now, w.dst.inclusion_s, RESOLVER),
        src=src_lock,
        dst=dst_lock,
        skew_s=w.cfg.skew_s,
    )


def src_escrow(w: World, amount: str = SRC_AMOUNT) -> Escrow:
    return Escrow(MAKER, RESOLVER, RESOLVER, SRC_TOKEN, amount, w.terms.src_timelocks)


def carry_out(w: World, facts: Facts, decision: Decision) -> None:
    """What saga.py does with one decision (sends are asynchronous: the reply may come much later)."""
    r = w.record
    if isinstance(decision, Move):
        check(r.state, decision.to)
        r.secret_exposed = r.secret_exposed or decision.expose
        r.state, r.alert = decision.to, ""
    elif isinstance(decision, Halt):
        r.alert = decision.alert
    elif isinstance(decision, Send):
        send(w, facts, decision.action)


def send(w: World, facts: Facts, action: Action) -> None:
    r = w.record
    src_due, dst_due = w.now + w.src.inclusion_s, w.now + w.dst.inclusion_s
    if action is Action.SUBMIT_SOURCE:
        r.src_sent_at = r.src_sent_at or facts.src_chain.now
        order = src_escrow(w)
        w.src.send(Tx(Op.CREATE, SRC_ID, RESOLVER, src_due, order, w.terms.order_deadline, action=action))
    elif action is Action.PREPARE_DESTINATION:
        r.dst_amount, r.dst_lock_id = DST_AMOUNT, DST_ID
    elif action is Action.LOCK_DESTINATION:
        assert r.dst_lock_id, "rule g: the destination lock id is persisted before the lock is sent"
        r.dst_sent_at = r.dst_sent_at or facts.dst_chain.now
        lock = Escrow(RESOLVER, RECEIVER, RESOLVER, DST_TOKEN, r.dst_amount, w.terms.dst_timelocks)
        w.dst.send(Tx(Op.CREATE, DST_ID, RESOLVER, dst_due, lock, action=action))
    elif action is Action.WITHDRAW_DESTINATION:
        assert r.secret_exposed, "rule c: the exposure is persisted before the first broadcast of the secret"
        w.secret_public = True  # the mempool shows it
        w.dst.send(Tx(Op.WITHDRAW, DST_ID, RESOLVER, dst_due, action=action))
    elif action is Action.WITHDRAW_SOURCE:
        assert r.secret_exposed
        assert facts.dst.state is LockState.WITHDRAWN, "rule e: the source is collected only after the receiver"
        w.secret_public = True
        w.src.send(Tx(Op.WITHDRAW, SRC_ID, RESOLVER, src_due, action=action))
    elif action is Action.CANCEL_DESTINATION:
        w.dst.send(Tx(Op.CANCEL, DST_ID, RESOLVER, dst_due, action=action))
    elif action is Action.CANCEL_SOURCE:
        w.src.send(Tx(Op.CANCEL, SRC_ID, RESOLVER, src_due, action=action))
    elif action is Action.PAY_RECEIVER:
        r.receiver_paid_directly = True  # the operator answers the alert at once


def run_saga(w: World, max_steps: int = 12) -> None:
    """One wake-up of the saga: decide and act until it waits, halts or repeats a send."""
    last: Decision | None = None
    for _ in range(max_steps):
        if w.record.state in TERMINAL:
            return
        facts = gather(w)
        decision = decide(facts)
        w.decisions.append((w.record.state, decision))
        if isinstance(decision, Send) and decision == last:
            return  # the chain has not caught up with the last send: the saga sleeps
        carry_out(w, facts, decision)
        if isinstance(decision, Wait | Halt):
            return
        last = decision


def deliver(w: World, chain: Chain, landed: list[Tx]) -> None:
    """The replies of the session's creates that reverted: a refusal with nothing at the id."""
    for tx in landed:
        refused = tx.reply and not tx.landed and tx.lock_id not in chain.locks
        if refused and tx.action is Action.SUBMIT_SOURCE:
            w.record.src_rejected = True
        elif refused and tx.action is Action.LOCK_DESTINATION:
            w.record.dst_rejected = True


def critical(w: World) -> bool:
    """The destination is withdrawn and the source is not collected yet: the kernel's budget assumes the
    runner reacts at once and its source withdrawal lands on the first try."""
    dst, src = w.dst.locks.get(DST_ID), w.src.locks.get(SRC_ID)
    return (
        dst is not None
        and dst.state is LockState.WITHDRAWN
        and src is not None
        and src.state is LockState.ACTIVE
        and not w.record.receiver_paid_directly
    )


def tick(w: World, dt: int, lags: tuple[int, int], rng: random.Random) -> None:
    """Time passes by up to dt (less when a transaction is due or a block must be seen), each chain
    produces a block, then the runner wakes (unless it is down) and reads heads trailing by `lags`."""
    limits = [dt]
    limits += [tx.due - w.now for chain in (w.src, w.dst) for tx in chain.pending]
    if not w.outage:
        limits += [b + w.cfg.skew_s - w.now for chain in (w.src, w.dst) if (b := chain.unseen_since()) is not None]
    w.now += max(1, min(limits))
    for chain in (w.src, w.dst):
        deliver(w, chain, chain.produce(w.now, rng))
    if w.outage:
        w.outage -= 1
        if critical(w):
            w.beyond_bounds = w.beyond_bounds or "the runner was down while the destination was withdrawn"
        return
    for chain, lag in zip((w.src, w.dst), lags, strict=True):
        chain.view = max(chain.view, w.now - min(lag, w.cfg.skew_s))
    run_saga(w)


# -- what the chains say about the outcome ---------------------------------------------------------------


def lock_state(chain: Chain, lock_id: str) -> LockState:
    lock = chain.locks.get(lock_id)
    return LockState.ABSENT if lock is None else lock.state


def receiver_paid(w: World) -> bool:
    return lock_state(w.dst, DST_ID) is LockState.WITHDRAWN or w.record.receiver_paid_directly


def settled(w: World) -> bool:
    """Nothing pending, every lock closed and its closing final."""
    return (
        not w.src.pending
        and not w.dst.pending
        and all(
            lock.state is not LockState.ACTIVE and chain.final(lock_id)
            for chain in (w.src, w.dst)
            for lock_id, lock in chain.locks.items()
        )
    )


class KernelMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.w: World | None = None
        self.rng = random.Random(0)
        self.in_step = False

    @property
    def world(self) -> World:
        assert self.w is not None
        return self.w

    @initialize(cfg=configs, seed=st.integers(0, 2**32 - 1))
    def start(self, cfg: Config, seed: int) -> None:
        self.w = new_world(cfg)
        self.rng = random.Random(seed)
        if cfg.maker_is_quick:
            self.w.record.executed = True
            if cfg.maker_submits_source:
                self.maker_locks(wrong_amount=False, stall=0)
        run_saga(self.w)

    # -- time and the runner --

    @rule(dt=st.integers(1, 6) | st.integers(1, 12), lag_src=st.integers(0, 3), lag_dst=st.integers(0, 3))
    def time_passes(self, dt: int, lag_src: int, lag_dst: int) -> None:
        tick(self.world, dt, (lag_src, lag_dst), self.rng)

    @rule(ticks=st.integers(1, 3))
    def outage(self, ticks: int) -> None:
        self.world.outage = max(self.world.outage, ticks)

    # -- the network --

    @rule(data=st.data())
    def revert_pending(self, data: st.DataObject) -> None:
        w = self.world
        pending = w.src.pending + w.dst.pending
        if not pending:
            return
        tx = data.draw(st.sampled_from(pending))
        tx.doomed = True
        if tx.action is Action.WITHDRAW_SOURCE:
            w.beyond_bounds = w.beyond_bounds or "the resolver's source withdrawal reverted"

    @rule(data=st.data())
    def lose_reply(self, data: st.DataObject) -> None:
        pending = self.world.src.pending + self.world.dst.pending
        if pending:
            data.draw(st.sampled_from(pending)).reply = False

    @rule(on_src=st.booleans(), depth=st.integers(1, 2), drop=st.lists(st.booleans(), max_size=6))
    def reorg(self, on_src: bool, depth: int, drop: list[bool]) -> None:
        w = self.world
        chain = w.src if on_src else w.dst
        if depth >= chain.confirmations:
            return
        for tx in chain.reorg(depth, drop):
            if tx.action is Action.WITHDRAW_SOURCE:
                w.beyond_bounds = w.beyond_bounds or "a reorg dropped the resolver's source withdrawal"

    # -- third parties --

    @rule(on_src=st.booleans())
    def public_withdraw(self, on_src: bool) -> None:
        w = self.world
        if w.secret_public:
            chain = w.src if on_src else w.dst
            chain.send(Tx(Op.PUBLIC_WITHDRAW, SRC_ID if on_src else DST_ID, THIRD, w.now + chain.inclusion_s))

    @rule(on_src=st.booleans())
    def public_cancel(self, on_src: bool) -> None:
        w = self.world
        chain, lock_id = (w.src, SRC_ID) if on_src else (w.dst, DST_ID)
        lock = chain.locks.get(lock_id)
        opens = lock.locked_at + lock.timelocks.public_cancellation if lock is not None else 0
        if lock is not None and lock.state is LockState.ACTIVE and chain.stamp(w.now) + chain.inclusion_s >= opens:
            chain.send(Tx(Op.PUBLIC_CANCEL, lock_id, THIRD, w.now + chain.inclusion_s))

    # -- the maker --

    @rule()
    def maker_executes(self) -> None:
        r = self.world.record
        if r.state is State.INITIALIZED and not r.executed and not r.cancel_requested:
            r.executed = True

    @rule(now=st.integers(0, 5).map(lambda n: n == 0))
    def maker_cancels(self, now: bool) -> None:
        r = self.world.record
        if now and r.state not in TERMINAL and r.state is not State.REVEALING_SECRET and not r.secret_exposed:
            r.cancel_requested = True

    @rule(now=st.integers(0, 3).map(lambda n: n == 0))
    def quote_expires(self, now: bool) -> None:
        r = self.world.record
        if now and r.state is State.INITIALIZED and not r.executed:
            r.quote_expired = True

    @precondition(lambda self: self.w is not None and self.w.cfg.maker_holds_secret)
    @rule(now=st.integers(0, 3).map(lambda n: n == 0))
    def maker_releases_the_secret(self, now: bool) -> None:
        """Whenever the session waits for it, timely or not (the service's own deadline check is not modelled:
        the kernel alone must refuse to use a late one)."""
        r = self.world.record
        if now and r.state is State.AWAITING_SECRET:
            r.secret_known = True

    @precondition(lambda self: self.w is not None and self.w.cfg.maker_holds_secret)
    @rule()
    def maker_withdraws_the_destination(self) -> None:
        """The maker pays the receiver with their own secret through the destination's public window."""
        w = self.world
        lock = w.dst.locks.get(DST_ID)
        if lock is None or lock.state is not LockState.ACTIVE:
            return
        due = w.now + w.dst.inclusion_s
        opens = lock.locked_at + lock.timelocks.public_withdrawal
        if w.dst.stamp(due) >= opens:
            w.secret_public = True
            w.dst.send(Tx(Op.PUBLIC_WITHDRAW, DST_ID, MAKER, due))

    @precondition(lambda self: self.w is not None and self.w.cfg.maker_submits_source)
    @rule(wrong_amount=st.booleans(), stall=st.integers(0, 40))
    def maker_locks(self, wrong_amount: bool, stall: int) -> None:
        """At any time, even after a cancel or the deadline, and held up by a stall however far past the
        inclusion bound: the HTLC refuses a maker's lock that lands after the order deadline."""
        w = self.world
        due = w.now + w.src.inclusion_s + stall
        if any(tx.op is Op.CREATE for tx in w.src.pending) or SRC_ID in w.src.locks:
            return
        escrow = src_escrow(w, "999" if wrong_amount else SRC_AMOUNT)
        w.src.send(Tx(Op.CREATE, SRC_ID, MAKER, due, escrow, w.terms.order_deadline))

    # -- invariants --

    @invariant()
    def terminal_states_match_the_chains(self) -> None:
        if self.w is None:
            return
        w = self.w
        state, src, dst = w.record.state, lock_state(w.src, SRC_ID), lock_state(w.dst, DST_ID)
        if state is State.COMPLETED:
            assert src is LockState.WITHDRAWN, "I3: completed with the source not withdrawn"
            assert dst is LockState.WITHDRAWN or w.record.receiver_paid_directly, "I3: completed, receiver unpaid"
        if state is State.REFUNDED:
            assert src in {LockState.CANCELLED, LockState.ABSENT}, f"I3: refunded with the source {src.name}"
            assert dst in {LockState.CANCELLED, LockState.ABSENT}, f"I3: refunded with the destination {dst.name}"
        if state in LOSS_STATES:
            assert src is LockState.ABSENT, f"I3: {state} with a source lock {src.name}"
            assert dst is LockState.ABSENT, f"I3: {state} with a destination lock {dst.name}"

    @invariant()
    def the_maker_never_loses(self) -> None:
        if self.w is None:
            return
        w = self.w
        if w.record.state in TERMINAL and lock_state(w.src, SRC_ID) is LockState.WITHDRAWN:
            assert receiver_paid(w), "I1: the session ended with the source withdrawn and the receiver unpaid"

    @invariant()
    def the_resolver_never_pays_for_nothing(self) -> None:
        if self.w is None or self.w.beyond_bounds:
            return
        w = self.w
        if lock_state(w.src, SRC_ID) is LockState.CANCELLED and w.src.final(SRC_ID):
            paid = w.record.receiver_paid_directly or (
                lock_state(w.dst, DST_ID) is LockState.WITHDRAWN and w.dst.final(DST_ID)
            )
            assert not paid, "I2: the receiver is paid and the source went back to the maker"

    def teardown(self) -> None:
        if self.w is None or sys.exc_info()[0] is not None:
            return  # a step failed already: report that failure, not a consequence of it
        w = self.w
        w.outage = 0
        for _ in range(400):
            if w.record.state in TERMINAL and settled(w):
                break
            tick(w, 20, (0, 0), self.rng)
        src, dst = lock_state(w.src, SRC_ID), lock_state(w.dst, DST_ID)
        if src is LockState.WITHDRAWN:
            assert receiver_paid(w), "I1: the maker lost the source and the receiver was not paid"
        if not w.beyond_bounds:
            assert not (receiver_paid(w) and src is LockState.CANCELLED), "I2: receiver paid, source refunded"
            assert not (dst is LockState.WITHDRAWN and w.record.receiver_paid_directly), "I2: receiver paid twice"
            assert w.record.state in TERMINAL, f"I4: still {w.record.state} ({w.record.alert}) after every window"
            assert settled(w), "I4: a lock is still active after every window"
        self.terminal_states_match_the_chains()


PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
KernelMachine.TestCase.settings = settings.get_profile(PROFILE)
TestKernelAgainstTheChains = KernelMachine.TestCase


# -- replays of what the machine found (deterministic: every block holds only the transactions due) ------


class _OnlyDue(random.Random):
    def random(self) -> float:
        return 0.99


def _replay(cfg: Config) -> KernelMachine:
    machine = KernelMachine()
    machine.start(cfg=cfg, seed=0)
    machine.rng = _OnlyDue()
    return machine


def _doom(w: World, action: Action) -> None:
    for tx in w.src.pending + w.dst.pending:
        if tx.action is action:
            tx.doomed, tx.reply = True, False


def test_replay_a_makers_lock_sent_before_the_cancel_is_waited_for_with_the_skew() -> None:
    cfg = Config(True, (Timelocks(0, 0, 100, 110), Timelocks(0, 0, 30, 40)), 0, 4, 1, 1, 1, 3, 0, 60, False)
    machine = _replay(cfg)
    machine.time_passes(5, 0, 0)
    machine.time_passes(2, 3, 0)
    machine.maker_locks(wrong_amount=False, stall=0)  # lands at the inclusion bound, 4 s later
    machine.maker_cancels(now=True)
    for lags in [(3, 0), (0, 0), (0, 0), (0, 0)]:  # the cancel is read through a head 3 s old
        machine.time_passes(1, *lags)
        machine.terminal_states_match_the_chains()
    assert machine.world.record.state is State.REFUNDING


def test_replay_a_makers_lock_held_up_by_a_stall_past_the_bound_lands_before_the_deadline() -> None:
    """Chaos seed 6: a NEAR stall far longer than the inclusion bound holds the maker's lock, sent just
    before the cancel; it lands two seconds before the order deadline. The session waits for it, adopts it
    and refunds it; a session that concluded "nothing was locked" earlier would have left it to the maker."""
    cfg = Config(True, (Timelocks(0, 0, 100, 110), Timelocks(0, 0, 30, 40)), 0, 4, 1, 1, 1, 0, 0, 30, False)
    machine = _replay(cfg)
    machine.maker_locks(wrong_amount=False, stall=30 - 4 - 2)
    machine.maker_cancels(now=True)
    for _ in range(40):
        machine.time_passes(1, 0, 0)
        machine.terminal_states_match_the_chains()
    assert machine.world.record.state is State.REFUNDING


def test_replay_the_source_withdrawal_lands_in_time_after_two_late_reads() -> None:
    """The destination lock is resent on a source time 3 s old; its withdrawal, resent until its last
    moment, is seen 3 s late: the kernel's budget must leave room for both."""
    cfg = Config(False, (Timelocks(0, 0, 16, 20), Timelocks(0, 0, 10, 12)), 0, 1, 1, 1, 1, 3, 0, 60, True)
    machine = _replay(cfg)
    w = machine.world
    machine.time_passes(1, 0, 0)
    for lag in (1, 2, 3):
        _doom(w, Action.LOCK_DESTINATION)
        machine.time_passes(1, lag, 0)
    for at in range(5, 22):
        machine.time_passes(1, *((0, 0) if at <= 10 else (3, min(at - 10, 3))))
        if 6 <= at <= 12:
            _doom(w, Action.WITHDRAW_DESTINATION)
        machine.the_resolver_never_pays_for_nothing()
    assert not w.beyond_bounds
    machine.teardown()
