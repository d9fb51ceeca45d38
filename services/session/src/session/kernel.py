"""The safety kernel: what one swap does next, as a pure function of fresh facts.

`decide(facts)` reads the agreed terms, what the session has persisted (its state, intents, what it
has broadcast) and what both chains say right now (each known lock's state, terms and finality, each
chain's time and worst-case inclusion time), and returns the ONE next step: wait, send one chain
action, move to a state, or halt with an alert. No I/O and no clock: the saga gathers the facts, calls
this, carries the decision out, persists, and asks again. Every send is therefore decided on facts read
after the previous action, never on a check made in an earlier state.

The rules (docs/safety.md states them with the timing budget):
  a. the destination lock is sent only while its latest possible cancellation plus both inclusion
     bounds and twice the clock skew fall before the source's cancellation (re-checked before every
     resend): once for the source time read now, once for a destination withdrawal seen late;
  b. the secret is exposed only when both locks are final and match every term, the destination
     withdrawal can land before the destination's cancellation (with the larger of the reveal margin
     and its inclusion bound) and the source withdrawal can land after it, before the source's
     cancellation;
  c. "secret exposed" is persisted before the first broadcast that carries it (the move to
     revealing_secret); from then on: get the receiver paid first, then collect the source;
  d. a destination lock withdrawn by anyone means the receiver is paid: collect the source, never
     refund it;
  e. when the receiver can no longer be paid the resolver never collects the source for itself: it
     cancels the destination, the source goes back to the maker, and if a third party withdraws the
     source to the resolver meanwhile, the resolver pays the receiver directly and an alert fires, once
     the destination lock is settled (cancelled and final, or unable to land), so never twice;
  f. refunded only when every lock the session knows of reads cancelled (final); completed only when
     both withdrawals are final; cancelled / failed / timeout only when no announced lock exists or
     can still appear;
  g. a lock's id is persisted before the call that creates it (the saga's job, asked for by
     PREPARE_DESTINATION);
  h. fencing is the saga's job too: every send carries the lease epoch.

In secret mode "maker" the maker's client holds the secret: after rule b's checks the session waits in
awaiting_secret, and the secret is exposed only once the maker has released it and rule b still holds
(`secret_deadline` is the last moment it does); past it, or without a release, the session refunds. A secret
that appears on chain (the maker used it) is the same as a release: the receiver is paid, the source collected.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from session.states import State

S = State


class LockState(IntEnum):
    """The ChainService's LockState values (swap.chain.v1), without importing protobuf here."""

    ABSENT = 1
    ACTIVE = 2
    WITHDRAWN = 3
    CANCELLED = 4


class Side(StrEnum):
    SRC = "src"
    DST = "dst"


@dataclass(frozen=True)
class Timelocks:
    """Windows relative to a lock's creation, seconds."""

    withdrawal: int
    public_withdrawal: int
    cancellation: int
    public_cancellation: int


@dataclass(frozen=True)
class LockFact:
    """One escrow as its chain service read it just now."""

    state: LockState
    final: bool = False  # its creation is at the chain's confirmation depth
    closed_final: bool = False  # its withdrawal / cancellation is at confirmation depth
    hashlock: str = ""
    token: str = ""
    amount: str = ""
    depositor: str = ""
    beneficiary: str = ""
    operator: str = ""
    timelocks: Timelocks | None = None
    withdrawal_at: int = 0
    cancellation_at: int = 0


ABSENT_LOCK = LockFact(LockState.ABSENT)


@dataclass(frozen=True)
class ChainFact:
    now: int  # the chain's time: the timestamp of its latest block, unix seconds
    inclusion_s: int  # worst-case seconds from sending a transaction to its inclusion (the service's bound)
    resolver: str


@dataclass(frozen=True)
class Terms:
    """What the maker and the resolver agreed: fixed at Create (the destination amount at its lock)."""

    hashlock: str
    maker: str
    receiver: str
    src_token: str
    src_amount: str
    dst_token: str
    src_timelocks: Timelocks
    dst_timelocks: Timelocks
    reveal_margin_s: int
    order_deadline: int  # source chain time after which the maker's order / lock can no longer land
    maker_submits_source: bool  # the maker sends the source lock (NEAR) / the resolver submits the order (BASE)
    maker_holds_secret: bool = False  # secret mode "maker": the secret is the maker's to release


@dataclass(frozen=True)
class Memory:
    """What the session has persisted: its state, the maker's intents and what it has broadcast."""

    state: State
    executed: bool = False
    cancel_requested: bool = False
    quote_expired: bool = False
    dst_amount: str = ""
    dst_lock_id: str = ""  # persisted before the destination lock is sent
    src_sent_at: int = 0  # source chain time when the resolver first sent the maker's order (0: never)
    src_rejected: bool = False  # the source chain refused the order before anything landed
    dst_sent_at: int = 0  # destination chain time when the destination lock was first sent (0: never)
    dst_rejected: bool = False  # the destination chain refused the lock before anything landed
    secret_exposed: bool = False
    secret_known: bool = True  # the service has the secret (drew it, the maker released it, or it is on chain)
    receiver_paid_directly: bool = False


@dataclass(frozen=True)
class Facts:
    terms: Terms
    memory: Memory
    src_chain: ChainFact
    dst_chain: ChainFact
    src: LockFact = ABSENT_LOCK
    dst: LockFact = ABSENT_LOCK  # ABSENT also while no destination lock id is known
    # How far a chain's reported time may trail the truth (its clock, the age of the head it was read from),
    # seconds: added to every "time left" check, never to a "window open" one.
    skew_s: int = 0


class Action(StrEnum):
    SUBMIT_SOURCE = "submit_source"  # the resolver submits the maker's signed order
    PREPARE_DESTINATION = "prepare_destination"  # fix amount and salt, persist the lock id (rule g)
    LOCK_DESTINATION = "lock_destination"
    WITHDRAW_DESTINATION = "withdraw_destination"  # pays the receiver; carries the secret
    WITHDRAW_SOURCE = "withdraw_source"  # pays the resolver; carries the secret
    CANCEL_DESTINATION = "cancel_destination"
    CANCEL_SOURCE = "cancel_source"
    PAY_RECEIVER = "pay_receiver"  # rule e: the destination amount straight to the receiver


@dataclass(frozen=True)
class Wait:
    """Nothing to do until an event on a lock of the session, or until a chain reaches a time."""

    why: str
    until: tuple[Side, int] | None = None


@dataclass(frozen=True)
class Send:
    action: Action


@dataclass(frozen=True)
class Move:
    to: State
    note: str
    reason: str = ""  # an error reason for the maker, when the move is a failure
    expose: bool = False  # rule c: the move itself records that the secret is about to be broadcast


@dataclass(frozen=True)
class Halt:
    """Beyond the configured bounds: nothing automatic is safe. An operator is alerted; the saga keeps
    watching and resumes by itself when the facts change."""

    alert: str
    message: str


Decision = Wait | Send | Move | Halt


# -- timing ----------------------------------------------------------------------------------------------


def destination_fits(f: Facts) -> bool:
    """Rule a: a destination lock sent now still leaves room to reveal and collect the source before the
    source's cancellation. Remaining seconds on each chain's own clock: the two clocks need not agree."""
    if f.src.state is not LockState.ACTIVE:
        return False
    src_left = f.src.cancellation_at - f.src_chain.now
    need = (
        f.dst_chain.inclusion_s  # the lock lands at most this late: its cancellation moves with it
        + f.terms.dst_timelocks.cancellation
        + f.src_chain.inclusion_s  # the source withdrawal sent after the destination's last moment
        + 2 * f.skew_s  # the source's time read now, and the destination withdrawal read that late too
    )
    return need < src_left and f.terms.dst_timelocks.cancellation + f.terms.reveal_margin_s < (
        f.terms.src_timelocks.cancellation
    )


def reveal_margin(f: Facts) -> int:
    """Never less than the destination's inclusion bound: the withdrawal must land before cancellation."""
    return max(f.terms.reveal_margin_s, f.dst_chain.inclusion_s)


def reveal_fits(f: Facts) -> bool:
    """Rule b's timing: the destination withdrawal lands before its cancellation and the source
    withdrawal, sent once it has, lands before the source's."""
    dst_ok = f.dst_chain.now + reveal_margin(f) + f.skew_s < f.dst.cancellation_at
    src_ok = (  # twice the skew, as in rule a: the source's time now, the destination withdrawal seen late
        f.src_chain.now + f.dst_chain.inclusion_s + f.src_chain.inclusion_s + 2 * f.skew_s < f.src.cancellation_at
    )
    return dst_ok and src_ok


def secret_deadline(f: Facts) -> tuple[Side, int]:
    """The last chain time at which rule b's timing still holds, on whichever chain runs out first: the
    maker's release must reach the service by then (secret mode "maker")."""
    dst_last = f.dst.cancellation_at - reveal_margin(f) - f.skew_s - 1
    src_last = f.src.cancellation_at - f.dst_chain.inclusion_s - f.src_chain.inclusion_s - 2 * f.skew_s - 1
    if dst_last - f.dst_chain.now <= src_last - f.src_chain.now:
        return Side.DST, dst_last
    return Side.SRC, src_last


def secret_deadline_on_destination(f: Facts) -> int:
    """secret_deadline as a time of the destination chain, the one the maker's client reads."""
    side, at = secret_deadline(f)
    return at if side is Side.DST else f.dst_chain.now + (at - f.src_chain.now)


def can_still_pay_receiver(f: Facts) -> bool:
    """A withdrawal sent now can land while the destination window is open."""
    return (
        f.dst.state is LockState.ACTIVE and f.dst_chain.now + f.dst_chain.inclusion_s + f.skew_s < f.dst.cancellation_at
    )


def destination_may_land(f: Facts) -> bool:
    """A destination lock sent earlier (a lost reply, a crash) may still appear within its bound (dst_sent_at
    was read from a head that may trail the truth by the skew)."""
    m = f.memory
    return bool(m.dst_sent_at) and f.dst_chain.now <= destination_landing_bound(f)


def destination_landing_bound(f: Facts) -> int:
    return f.memory.dst_sent_at + f.dst_chain.inclusion_s + f.skew_s


def source_may_land(f: Facts) -> bool:
    """The maker's lock / the submitted order may still appear: until the order deadline, however late the
    chain is (the escrow refuses an order after it; the NEAR HTLC refuses a maker's lock after it)."""
    t, m = f.terms, f.memory
    if t.maker_submits_source:
        return f.src_chain.now <= t.order_deadline
    return bool(m.src_sent_at) and f.src_chain.now <= t.order_deadline  # even when one send was refused


# -- verification ----------------------------------------------------------------------------------------


def source_mismatch(f: Facts) -> str:
    """The first term of the source lock that differs from the agreement ("" when all match): it must
    pay this resolver, in full, with the maker's funds, under the agreed plan."""
    t, lock = f.terms, f.src
    return _mismatch(
        lock,
        hashlock=t.hashlock,
        token=t.src_token,
        amount=t.src_amount,
        timelocks=t.src_timelocks,
        depositor=t.maker,
        beneficiary=f.src_chain.resolver,
        operator=f.src_chain.resolver,
    )


def destination_mismatch(f: Facts) -> str:
    t, lock = f.terms, f.dst
    return _mismatch(
        lock,
        hashlock=t.hashlock,
        token=t.dst_token,
        amount=f.memory.dst_amount,
        timelocks=t.dst_timelocks,
        depositor=f.dst_chain.resolver,
        beneficiary=t.receiver,
        operator=f.dst_chain.resolver,
    )


def _mismatch(
    lock: LockFact,
    *,
    hashlock: str,
    token: str,
    amount: str,
    timelocks: Timelocks,
    depositor: str,
    beneficiary: str,
    operator: str,
) -> str:
    checks = [
        ("state", lock.state is LockState.ACTIVE),
        ("hashlock", lock.hashlock.lower() == hashlock.lower()),
        ("token", lock.token.lower() == token.lower()),
        ("amount", lock.amount == amount),
        ("timelocks", lock.timelocks == timelocks),
        ("depositor", lock.depositor.lower() == depositor.lower()),
        ("beneficiary", lock.beneficiary.lower() == beneficiary.lower()),
        ("operator", lock.operator.lower() == operator.lower()),
    ]
    for name, ok in checks:
        if not ok:
            return f"{name} differs from the agreed terms"
    return ""


# -- the decision ----------------------------------------------------------------------------------------


def decide(f: Facts) -> Decision:
    state = f.memory.state
    if state in {S.COMPLETED, S.CANCELLED, S.REFUNDED, S.FAILED, S.TIMEOUT}:
        return Wait("ended")
    # Rule d, in every state: a withdrawn destination lock means the receiver is paid and the secret is
    # public; whatever the session was doing, the only goal left is collecting the source.
    if f.dst.state is LockState.WITHDRAWN and state is not S.REVEALING_SECRET:
        # (Exposed: the secret is on chain; in secret mode "maker" this may be the first the session knows of it.)
        note = "the destination was withdrawn: the receiver is paid; collecting the source"
        return Move(S.REVEALING_SECRET, note, expose=True)
    handler = _HANDLERS[state]
    return handler(f)


def _initialized(f: Facts) -> Decision:
    t, m = f.terms, f.memory
    if f.src.state is not LockState.ABSENT:
        # The maker locked before executing (NEAR): the lock is at the id the session announced, so it is
        # the session's to drive or to refund, whatever the maker does next.
        if m.cancel_requested or m.quote_expired:
            return Move(S.REFUNDING, "cancelled after the maker locked; the lock goes back when its window opens")
        if m.executed:
            return Move(S.EXECUTING, "executing")
        if f.src_chain.now > t.order_deadline:
            return Move(S.REFUNDING, "the maker locked but never executed", reason="NOT_EXECUTED")
        return Wait("waiting for the maker to execute", until=(Side.SRC, t.order_deadline + 1))
    if m.cancel_requested:
        if t.maker_submits_source:
            return Move(S.CANCELLING, "cancel requested; a lock the maker sent may still land until the order deadline")
        return Move(S.CANCELLED, "cancelled by the maker")
    if m.quote_expired:
        if t.maker_submits_source and f.src_chain.now <= t.order_deadline:
            # The maker may have sent their lock just before trying to execute: it can land until the deadline.
            return Wait(
                "the quote expired; a lock the maker sent may still land", until=(Side.SRC, t.order_deadline + 1)
            )
        return Move(S.TIMEOUT, "the quote expired before execution", reason="QUOTE_EXPIRED")
    if f.src_chain.now > t.order_deadline:
        return Move(S.TIMEOUT, "the order deadline passed before execution", reason="ORDER_EXPIRED")
    if m.executed:
        return Move(S.EXECUTING, "executing")
    return Wait("waiting for the maker", until=(Side.SRC, t.order_deadline + 1))


def _executing(f: Facts) -> Decision:
    t, m = f.terms, f.memory
    if f.src.state is not LockState.ABSENT:
        return Move(S.SOURCE_LOCKING, "the maker's lock appeared")
    if t.maker_submits_source:
        if m.cancel_requested:
            return Move(S.CANCELLING, "cancel requested; a lock the maker sent may still land until the order deadline")
        if f.src_chain.now > t.order_deadline:
            return Move(S.TIMEOUT, "the maker did not lock before the deadline", reason="MAKER_LOCK_MISSING")
        return Wait("waiting for the maker's lock", until=(Side.SRC, t.order_deadline + 1))
    if m.cancel_requested:
        return Move(S.CANCELLED, "cancelled before the source lock")
    return Move(S.SOURCE_LOCKING, "submitting the maker's order")


def _source_locking(f: Facts) -> Decision:
    t, m = f.terms, f.memory
    if m.cancel_requested:
        return Move(S.CANCELLING, "cancel requested while the source lock may be in flight")
    if f.src.state is LockState.ABSENT:
        if not t.maker_submits_source:
            if f.src_chain.now > t.order_deadline:  # the escrow refuses the order after its deadline
                note = "the source chain rejected the order" if m.src_rejected else "the order deadline passed"
                return Move(S.FAILED, f"{note}; nothing is locked", reason="SOURCE_LOCK_REJECTED")
            if m.src_rejected:
                # One send was refused, but an earlier one (its reply lost) may still land until the deadline.
                return Wait(
                    "the order was refused; an earlier send may still land", until=(Side.SRC, t.order_deadline + 1)
                )
            return Send(Action.SUBMIT_SOURCE)
        # A maker's lock seen once and now absent was reorged out: it may come back until the deadline.
        if f.src_chain.now > t.order_deadline:
            return Move(S.FAILED, "the maker's lock is gone; nothing is locked", reason="SOURCE_LOCK_MISSING")
        return Wait("the maker's lock was reorged out", until=(Side.SRC, t.order_deadline + 1))
    if f.src.state is not LockState.ACTIVE:
        return Move(S.REFUNDING, "the source lock was closed before the swap started", reason="SOURCE_LOCK_CLOSED")
    if not f.src.final:
        return Wait("the source lock is not final yet")
    if problem := source_mismatch(f):
        return Move(S.REFUNDING, f"source lock: {problem}", reason="SOURCE_LOCK_MISMATCH")
    return Move(S.SOURCE_LOCKED, "source lock final")


def _source_locked(f: Facts) -> Decision:
    if f.memory.cancel_requested:
        return Move(S.REFUNDING, "cancelled by the maker after the source lock")
    if f.src.state is not LockState.ACTIVE or not f.src.final:
        return Move(S.REFUNDING, "the source lock is no longer active and final", reason="LOCK_VERIFICATION_FAILED")
    if not destination_fits(f):
        return Move(
            S.REFUNDING,
            "too little time left on the source lock to lock the destination safely",
            reason="NO_TIME_FOR_DESTINATION",
        )
    if not f.memory.dst_lock_id:
        return Send(Action.PREPARE_DESTINATION)
    return Move(S.DESTINATION_LOCKING, f"locking {f.memory.dst_amount} on the destination")


def _destination_locking(f: Facts) -> Decision:
    m = f.memory
    if m.cancel_requested:
        return Move(S.REFUNDING, "cancelled by the maker while the destination lock may be in flight")
    if f.dst.state is LockState.CANCELLED:
        return Move(S.REFUNDING, "the destination lock was cancelled", reason="DESTINATION_CANCELLED")
    if f.dst.state is LockState.ABSENT:
        if not m.dst_lock_id:
            return Send(Action.PREPARE_DESTINATION)
        if m.dst_rejected:
            return Move(S.REFUNDING, "the destination chain refused the lock", reason="DESTINATION_LOCK_REJECTED")
        if destination_fits(f):
            return Send(Action.LOCK_DESTINATION)
        return Move(
            S.REFUNDING,
            "too little time left on the source lock to lock the destination safely",
            reason="NO_TIME_FOR_DESTINATION",
        )
    if not f.dst.final:
        return Wait("the destination lock is not final yet")
    return Move(S.BOTH_LOCKED, "destination lock final")


def _verification_problem(f: Facts) -> str:
    """Rule b's terms: both locks final and matching every agreed term ("" when they do)."""
    problem = source_mismatch(f)
    problem = f"source lock: {problem}" if problem else ""
    if not problem and (dst_problem := destination_mismatch(f)):
        problem = f"destination lock: {dst_problem}"
    if not problem and not (f.src.final and f.dst.final):
        problem = "a lock is no longer final"
    return problem


def _both_locked(f: Facts) -> Decision:
    if f.memory.cancel_requested:
        return Move(S.REFUNDING, "cancelled by the maker before the reveal")
    if problem := _verification_problem(f):
        return Move(S.REFUNDING, problem, reason="LOCK_VERIFICATION_FAILED")
    if not reveal_fits(f):
        return Move(S.REFUNDING, "too little time left to reveal safely", reason="NO_TIME_TO_REVEAL")
    if f.terms.maker_holds_secret:
        return Move(S.AWAITING_SECRET, "both locks verified; waiting for the maker to release the secret")
    # Chain times are whole seconds rounded down: wait until the window is open past any rounding, so no
    # withdrawal is sent a second early (a failed transaction still burns gas and publishes the secret).
    if f.dst_chain.now <= f.dst.withdrawal_at:
        return Wait("the destination withdrawal window is not open yet", until=(Side.DST, f.dst.withdrawal_at + 1))
    return Move(S.REVEALING_SECRET, "both locks verified; revealing the secret", expose=True)


def _awaiting_secret(f: Facts) -> Decision:
    m = f.memory
    if f.src.state is LockState.WITHDRAWN and m.secret_known and can_still_pay_receiver(f):
        # The maker used their secret on the source themselves (it pays the resolver): it is public, so the
        # receiver is paid with it.
        return Move(S.REVEALING_SECRET, "the secret is on chain: paying the receiver", expose=True)
    if m.cancel_requested:
        return Move(S.REFUNDING, "cancelled by the maker before releasing the secret")
    if problem := _verification_problem(f):
        return Move(S.REFUNDING, problem, reason="LOCK_VERIFICATION_FAILED")
    if not reveal_fits(f):
        return Move(
            S.REFUNDING, "the maker did not release the secret before the deadline", reason="SECRET_NOT_RELEASED"
        )
    if not m.secret_known:
        side, last = secret_deadline(f)
        return Wait("waiting for the maker to release the secret", until=(side, last + 1))
    if f.dst_chain.now <= f.dst.withdrawal_at:
        return Wait("the destination withdrawal window is not open yet", until=(Side.DST, f.dst.withdrawal_at + 1))
    return Move(S.REVEALING_SECRET, "the maker released the secret; revealing it", expose=True)


def _revealing(f: Facts) -> Decision:
    dst, src = f.dst, f.src
    if dst.state is LockState.WITHDRAWN:
        if src.state is LockState.ACTIVE:
            if f.src_chain.now >= src.cancellation_at:
                return Halt("RESOLVER_UNPAID", "the receiver is paid but the source cancellation window is open")
            if f.src_chain.now <= src.withdrawal_at:
                return Wait("the source withdrawal window is not open yet", until=(Side.SRC, src.withdrawal_at + 1))
            return Send(Action.WITHDRAW_SOURCE)
        if src.state is LockState.WITHDRAWN:
            if src.closed_final and dst.closed_final:
                return Move(S.COMPLETED, "both withdrawals final")
            return Wait("the withdrawals are not final yet")
        if src.state is LockState.CANCELLED:
            return Halt("RESOLVER_UNPAID", "the receiver is paid but the source went back to the maker")
        return Halt("SOURCE_LOCK_GONE", "the source lock is gone after the reveal (a reorg deeper than finality)")
    if dst.state is LockState.ACTIVE and can_still_pay_receiver(f):
        if f.dst_chain.now <= dst.withdrawal_at:
            return Wait("the destination withdrawal window is not open", until=(Side.DST, dst.withdrawal_at + 1))
        return Send(Action.WITHDRAW_DESTINATION)
    # Rule e: the receiver can no longer be paid through the lock (its window is closing, it was cancelled, or
    # a reorg took its creation out: one not final yet, which the maker's own early use of their secret can
    # expose, or one deeper than finality). If the source reached the resolver meanwhile, the resolver pays
    # the receiver itself; otherwise the destination goes back to the resolver and the source to the maker.
    if src.state is LockState.WITHDRAWN:
        return _pay_receiver(f)
    if dst.state is LockState.ACTIVE:
        return Move(
            S.REFUNDING,
            "the destination withdrawal can no longer land; the source goes back to the maker",
            reason="DESTINATION_WINDOW_MISSED",
        )
    if dst.state is LockState.CANCELLED:
        return Move(
            S.REFUNDING,
            "the destination was cancelled before the receiver was paid; the source goes back to the maker",
            reason="DESTINATION_CANCELLED",
        )
    return Move(
        S.REFUNDING,
        "the destination lock is gone after the reveal; the source goes back to the maker",
        reason="DESTINATION_LOCK_GONE",
    )


def _take_back_destination(f: Facts) -> Decision:
    """The destination lock's refund to the resolver, sent once its cancellation window is open."""
    if f.dst_chain.now >= f.dst.cancellation_at:
        return Send(Action.CANCEL_DESTINATION)
    return Wait("the destination cancellation window is not open yet", until=(Side.DST, f.dst.cancellation_at))


def _pay_receiver(f: Facts) -> Decision:
    """Rule e's last resort: the source reached the resolver with the exposed secret while the receiver
    can no longer be paid through the lock: the resolver pays the receiver itself. The destination lock is
    settled first: while it is active anyone holding the public secret can still withdraw it to the
    receiver, and a cancellation or an absence not final yet can be undone, so the receiver is paid directly
    only once that lock is cancelled for good or can no longer land: exactly once, either way."""
    dst = f.dst
    if dst.state is LockState.ACTIVE:
        return _take_back_destination(f)
    if not f.memory.receiver_paid_directly:
        if dst.state is LockState.CANCELLED and not dst.closed_final:
            return Wait("the destination refund is not final yet")
        if dst.state is LockState.ABSENT and destination_may_land(f):
            return Wait("the destination lock may still land", until=(Side.DST, destination_landing_bound(f) + 1))
        return Send(Action.PAY_RECEIVER)
    if f.src.closed_final and (dst.state is not LockState.CANCELLED or dst.closed_final):
        return Move(S.COMPLETED, "receiver paid directly; source collected", reason="RECEIVER_PAID_DIRECTLY")
    return Wait("the payments are not final yet")


def _cancelling(f: Facts) -> Decision:
    if f.src.state is not LockState.ABSENT:
        return Move(S.REFUNDING, "the source lock landed; it waits for its cancellation window")
    if source_may_land(f):
        # The maker's lock however late the chain is (its HTLC refuses it after the order deadline), or the
        # order the resolver submitted (the escrow refuses it after the deadline).
        sent = "a lock the maker sent" if f.terms.maker_submits_source else "the submitted order"
        return Wait(f"{sent} may still land", until=(Side.SRC, f.terms.order_deadline + 1))
    return Move(S.CANCELLED, "nothing was locked")


def _refunding(f: Facts) -> Decision:
    m, src, dst = f.memory, f.src, f.dst
    # Rule e: the source reached the resolver (a third party used the exposed secret) while the receiver was
    # not paid: pay the receiver, never keep the maker's funds.
    if src.state is LockState.WITHDRAWN and (m.secret_exposed or f.terms.maker_holds_secret):
        # (In secret mode "maker" the maker may have used the secret on chain: it is out all the same.)
        # Exposed: the source's withdrawal put the secret on chain, if the session had not revealed it already.
        note = "the source reached the resolver with the exposed secret: paying the receiver"
        return Move(S.REVEALING_SECRET, note, expose=True)
    # The destination first: the resolver's own funds, and its window opens earlier.
    if dst.state is LockState.ACTIVE:
        if m.secret_exposed and can_still_pay_receiver(f):
            # The secret is out and the receiver can still be paid: paying is safer than refunding.
            return Move(S.REVEALING_SECRET, "the secret is out and the receiver can still be paid")
        return _take_back_destination(f)
    if dst.state is LockState.ABSENT and destination_may_land(f):
        return Wait("the destination lock may still land", until=(Side.DST, destination_landing_bound(f) + 1))
    if src.state is LockState.ACTIVE:
        if f.src_chain.now >= src.cancellation_at:
            return Send(Action.CANCEL_SOURCE)
        return Wait("the source cancellation window is not open yet", until=(Side.SRC, src.cancellation_at))
    if src.state is LockState.ABSENT and source_may_land(f):
        return Wait("the source lock may still land", until=(Side.SRC, f.terms.order_deadline + 1))
    if src.state is LockState.WITHDRAWN:
        return Halt("SOURCE_WITHDRAWN_UNEXPECTEDLY", "the source was withdrawn while no secret was exposed")
    closed = [lock for lock in (src, dst) if lock.state is LockState.CANCELLED]
    if any(not lock.closed_final for lock in closed):
        return Wait("the refunds are not final yet")
    if dst.state is LockState.WITHDRAWN:  # handled by decide(); kept for exhaustiveness
        return Move(S.REVEALING_SECRET, "the destination was withdrawn")
    if not closed:
        if m.cancel_requested:
            return Move(S.CANCELLED, "nothing was locked after all")
        return Move(S.FAILED, "nothing was locked after all", reason="NOTHING_LOCKED")
    return Move(S.REFUNDED, "every lock refunded")


_HANDLERS = {
    S.INITIALIZED: _initialized,
    S.EXECUTING: _executing,
    S.SOURCE_LOCKING: _source_locking,
    S.SOURCE_LOCKED: _source_locked,
    S.DESTINATION_LOCKING: _destination_locking,
    S.BOTH_LOCKED: _both_locked,
    S.AWAITING_SECRET: _awaiting_secret,
    S.REVEALING_SECRET: _revealing,
    S.CANCELLING: _cancelling,
    S.REFUNDING: _refunding,
}

__all__ = [
    "ABSENT_LOCK",
    "Action",
    "ChainFact",
    "Decision",
    "Facts",
    "Halt",
    "LockFact",
    "LockState",
    "Memory",
    "Move",
    "Send",
    "Side",
    "Terms",
    "Timelocks",
    "Wait",
    "decide",
    "secret_deadline",
    "secret_deadline_on_destination",
]
