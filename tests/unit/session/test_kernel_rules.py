"""The safety kernel's rules a-g (kernel.py's docstring), one small test each, plus the regressions.

Every test builds real kernel facts: the agreed terms, the persisted memory and what both chains say.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from session.kernel import (
    ABSENT_LOCK,
    Action,
    ChainFact,
    Decision,
    Facts,
    LockFact,
    LockState,
    Memory,
    Move,
    Send,
    Side,
    Terms,
    Timelocks,
    Wait,
    decide,
    destination_fits,
)
from session.states import TERMINAL, State, check

S = State
RESOLVER = "0xresolver"
MAKER = "maker.near"
RECEIVER = "0xreceiver"
HASHLOCK = "ab" * 32
SRC_TL = Timelocks(withdrawal=2, public_withdrawal=60, cancellation=200, public_cancellation=260)
DST_TL = Timelocks(withdrawal=1, public_withdrawal=40, cancellation=80, public_cancellation=100)
SRC_NOW, DST_NOW = 10_000, 50_000
SRC_LOCKED_AT, DST_LOCKED_AT = SRC_NOW - 5, DST_NOW - 5
TERMS = Terms(
    hashlock=HASHLOCK,
    maker=MAKER,
    receiver=RECEIVER,
    src_token="near",
    src_amount="1000",
    dst_token="0xusdc",
    src_timelocks=SRC_TL,
    dst_timelocks=DST_TL,
    reveal_margin_s=10,
    order_deadline=SRC_NOW + 60,
    maker_submits_source=True,
)
SRC_LOCK = LockFact(
    state=LockState.ACTIVE,
    final=True,
    hashlock=HASHLOCK,
    token="near",
    amount="1000",
    depositor=MAKER,
    beneficiary=RESOLVER,
    operator=RESOLVER,
    timelocks=SRC_TL,
    withdrawal_at=SRC_LOCKED_AT + SRC_TL.withdrawal,
    cancellation_at=SRC_LOCKED_AT + SRC_TL.cancellation,
)
DST_LOCK = LockFact(
    state=LockState.ACTIVE,
    final=True,
    hashlock=HASHLOCK,
    token="0xusdc",
    amount="990",
    depositor=RESOLVER,
    beneficiary=RECEIVER,
    operator=RESOLVER,
    timelocks=DST_TL,
    withdrawal_at=DST_LOCKED_AT + DST_TL.withdrawal,
    cancellation_at=DST_LOCKED_AT + DST_TL.cancellation,
)
WITHDRAWN = {"state": LockState.WITHDRAWN, "closed_final": True}
CANCELLED = {"state": LockState.CANCELLED, "closed_final": True}


def facts(
    state: State,
    *,
    src: LockFact = SRC_LOCK,
    dst: LockFact = ABSENT_LOCK,
    src_now: int = SRC_NOW,
    dst_now: int = DST_NOW,
    skew_s: int = 2,
    terms: Terms = TERMS,
    **memory: object,
) -> Facts:
    """Facts in `state`; the destination lock id and amount are known unless memory says otherwise."""
    fields: dict[str, object] = {"executed": True, "dst_amount": "990", "dst_lock_id": "0xdst"}
    fields.update(memory)
    return Facts(
        terms=terms,
        memory=Memory(state=state, **fields),  # type: ignore[arg-type]
        src_chain=ChainFact(src_now, 5, RESOLVER),
        dst_chain=ChainFact(dst_now, 4, RESOLVER),
        src=src,
        dst=dst,
        skew_s=skew_s,
    )


def decided(f: Facts) -> Decision:
    """The kernel's decision, checked against the state table."""
    decision = decide(f)
    if isinstance(decision, Move):
        check(f.memory.state, decision.to)
    return decision


def need_for_destination(f: Facts) -> int:
    """Seconds the source must have left for rule a (the kernel's budget)."""
    return f.dst_chain.inclusion_s + f.terms.dst_timelocks.cancellation + f.src_chain.inclusion_s + 2 * f.skew_s


# -- a. the destination lock only if it fits, on fresh facts -------------------------------------------


def test_a_destination_lock_sent_when_it_fits() -> None:
    assert decided(facts(S.DESTINATION_LOCKING)) == Send(Action.LOCK_DESTINATION)


def test_a_regression_destination_never_locked_1s_before_the_source_cancellation() -> None:
    f = facts(S.DESTINATION_LOCKING, src_now=SRC_LOCK.cancellation_at - 1)
    decision = decided(f)
    assert isinstance(decision, Move) and decision.to is S.REFUNDING
    assert decision.reason == "NO_TIME_FOR_DESTINATION"


def test_a_rechecked_before_every_resend() -> None:
    """A lock sent while it fitted (its reply lost) is not sent again once the source ran short."""
    late = SRC_LOCK.cancellation_at - need_for_destination(facts(S.DESTINATION_LOCKING))
    f = facts(S.DESTINATION_LOCKING, src_now=late, dst_sent_at=DST_NOW - 30)
    decision = decided(f)
    assert isinstance(decision, Move) and decision.to is S.REFUNDING
    assert decided(replace(f, src_chain=ChainFact(late - 1, 5, RESOLVER))) == Send(Action.LOCK_DESTINATION)


def test_a_budgets_the_skew_twice() -> None:
    """Regression: the source's time read now may trail by the skew, and the destination withdrawal can be
    seen that late too; with one skew the source withdrawal could land after the source's cancellation."""
    base = facts(S.SOURCE_LOCKED, skew_s=3)
    budget_one_skew = SRC_LOCK.cancellation_at - (need_for_destination(base) - 3) - 1
    assert not destination_fits(replace(base, src_chain=ChainFact(budget_one_skew, 5, RESOLVER)))
    budget = SRC_LOCK.cancellation_at - need_for_destination(base) - 1
    assert destination_fits(replace(base, src_chain=ChainFact(budget, 5, RESOLVER)))


def test_a_plan_without_room_is_refused() -> None:
    terms = replace(TERMS, dst_timelocks=replace(DST_TL, cancellation=SRC_TL.cancellation))
    decision = decided(facts(S.SOURCE_LOCKED, terms=terms, dst_amount="", dst_lock_id=""))
    assert isinstance(decision, Move) and decision.reason == "NO_TIME_FOR_DESTINATION"


# -- b. reveal only when both final, matching and in time ------------------------------------------------


def test_b_reveals_with_both_locks_final_matching_and_in_time() -> None:
    decision = decided(facts(S.BOTH_LOCKED, dst=DST_LOCK))
    assert decision == Move(S.REVEALING_SECRET, "both locks verified; revealing the secret", expose=True)


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (replace(SRC_LOCK, final=False), DST_LOCK),
        (SRC_LOCK, replace(DST_LOCK, final=False)),
        (replace(SRC_LOCK, amount="999"), DST_LOCK),
        (SRC_LOCK, replace(DST_LOCK, amount="1")),
        (SRC_LOCK, replace(DST_LOCK, beneficiary="0xsomeoneelse")),
        (SRC_LOCK, replace(DST_LOCK, timelocks=replace(DST_TL, cancellation=81))),
        (SRC_LOCK, replace(DST_LOCK, hashlock="cd" * 32)),
    ],
    ids=["src-not-final", "dst-not-final", "src-amount", "dst-amount", "dst-beneficiary", "dst-timelocks", "hashlock"],
)
def test_b_no_reveal_when_a_lock_is_not_final_or_differs(src: LockFact, dst: LockFact) -> None:
    decision = decided(facts(S.BOTH_LOCKED, src=src, dst=dst))
    assert isinstance(decision, Move) and decision.to is S.REFUNDING and not decision.expose


def test_b_no_reveal_without_time_on_either_chain() -> None:
    short_dst = facts(S.BOTH_LOCKED, dst=DST_LOCK, dst_now=DST_LOCK.cancellation_at - 10 - 2)
    short_src = facts(S.BOTH_LOCKED, dst=DST_LOCK, src_now=SRC_LOCK.cancellation_at - 5 - 4 - 2 * 2)
    for f in (short_dst, short_src):
        decision = decided(f)
        assert isinstance(decision, Move) and decision.reason == "NO_TIME_TO_REVEAL" and not decision.expose


def test_b_no_reveal_before_the_destination_withdrawal_window_opens() -> None:
    decision = decided(facts(S.BOTH_LOCKED, dst=DST_LOCK, dst_now=DST_LOCK.withdrawal_at))
    assert decision == Wait(
        "the destination withdrawal window is not open yet", until=(Side.DST, DST_LOCK.withdrawal_at + 1)
    )


# -- c. exposure persisted with the move; then the receiver first ----------------------------------------


def test_c_the_only_exposing_move_is_the_reveal_and_withdrawals_follow_it() -> None:
    reveal = decided(facts(S.BOTH_LOCKED, dst=DST_LOCK))
    assert isinstance(reveal, Move) and reveal.expose
    # Before the move no state sends a withdrawal: the exposure is persisted by the move itself.
    assert decided(facts(S.REVEALING_SECRET, dst=DST_LOCK, secret_exposed=True)) == Send(Action.WITHDRAW_DESTINATION)


def test_c_destination_withdrawal_resent_after_a_reorg_undid_it() -> None:
    """The withdrawal (and even the source's) landed, then a reorg undid the destination's."""
    for src in (SRC_LOCK, replace(SRC_LOCK, state=LockState.WITHDRAWN)):
        f = facts(S.REVEALING_SECRET, src=src, dst=DST_LOCK, secret_exposed=True)
        assert decided(f) == Send(Action.WITHDRAW_DESTINATION)


def test_c_regression_reverted_destination_withdrawal_is_resent_and_never_ends_refunded() -> None:
    """A destination withdrawal that reverts after broadcast is resent while the window is open; when it
    closes the source goes back, and if a third party collects the source with the public secret meanwhile
    the receiver is paid directly: never refunded with the source collected."""
    last_chance = DST_LOCK.cancellation_at - 4 - 2 - 1
    assert decided(facts(S.REVEALING_SECRET, dst=DST_LOCK, dst_now=last_chance, secret_exposed=True)) == Send(
        Action.WITHDRAW_DESTINATION
    )
    closed = facts(S.REVEALING_SECRET, dst=DST_LOCK, dst_now=last_chance + 1, secret_exposed=True)
    decision = decided(closed)
    assert isinstance(decision, Move) and decision.to is S.REFUNDING
    collected = replace(SRC_LOCK, state=LockState.WITHDRAWN, closed_final=True)
    for dst in (DST_LOCK, replace(DST_LOCK, **CANCELLED)):  # type: ignore[arg-type]
        f = facts(S.REFUNDING, src=collected, dst=dst, dst_now=last_chance + 1, secret_exposed=True)
        decision = decided(f)
        assert isinstance(decision, Move) and decision.to is S.REVEALING_SECRET
        revealing = replace(f, memory=replace(f.memory, state=S.REVEALING_SECRET))
        if dst.state is LockState.ACTIVE:  # taken back first: anyone with the secret could still pay the receiver
            assert decided(revealing) == Wait(
                "the destination cancellation window is not open yet", until=(Side.DST, DST_LOCK.cancellation_at)
            )
        else:
            assert decided(revealing) == Send(Action.PAY_RECEIVER)


def test_e_the_receiver_is_paid_directly_only_once_the_destination_lock_is_settled() -> None:
    """Regression (the kernel's property run, long profile): in secret mode "maker" the maker's own public
    withdrawal of the destination was still pending when the kernel asked an operator to pay the receiver
    directly; it landed after, and the receiver was paid twice with the resolver's funds. Now the destination
    lock is taken back, and its refund final, or it can no longer land, before the direct payment."""
    collected = replace(SRC_LOCK, state=LockState.WITHDRAWN, closed_final=True)
    late = DST_LOCK.cancellation_at - 3  # too late for a withdrawal sent now to land in the window
    f = facts(S.REVEALING_SECRET, src=collected, dst=DST_LOCK, dst_now=late, secret_exposed=True)
    assert decided(f) == Wait(
        "the destination cancellation window is not open yet", until=(Side.DST, DST_LOCK.cancellation_at)
    )
    # Withdrawn by someone meanwhile: the receiver is paid through the lock and nothing more is sent.
    withdrawn = replace(f, dst=replace(DST_LOCK, **WITHDRAWN))  # type: ignore[arg-type]
    assert decided(withdrawn) == Move(S.COMPLETED, "both withdrawals final")
    opened = replace(f, dst_chain=ChainFact(DST_LOCK.cancellation_at, 4, RESOLVER))
    assert decided(opened) == Send(Action.CANCEL_DESTINATION)
    not_final = replace(opened, dst=replace(DST_LOCK, state=LockState.CANCELLED, closed_final=False))
    assert decided(not_final) == Wait("the destination refund is not final yet")
    final = replace(opened, dst=replace(DST_LOCK, **CANCELLED))  # type: ignore[arg-type]
    assert decided(final) == Send(Action.PAY_RECEIVER)


def test_e_a_destination_lock_gone_after_the_reveal_pays_the_receiver_or_refunds() -> None:
    """Regression (the kernel's property run, long profile): a reorg took out a destination lock that was not
    final after the maker had used their secret on it; the secret was public, a third party collected the
    source for the resolver, and the session halted with the receiver unpaid. Now: with the source collected
    the receiver is paid directly once the lock can no longer land; with the source still locked the session
    refunds (and pays the receiver if someone collects the source meanwhile)."""
    collected = replace(SRC_LOCK, state=LockState.WITHDRAWN, closed_final=True)
    gone = facts(S.REVEALING_SECRET, src=collected, secret_exposed=True, dst_sent_at=DST_NOW - 1)
    assert decided(gone) == Wait("the destination lock may still land", until=(Side.DST, DST_NOW - 1 + 4 + 2 + 1))
    assert decided(replace(gone, memory=replace(gone.memory, dst_sent_at=DST_NOW - 10))) == Send(Action.PAY_RECEIVER)
    still_locked = facts(S.REVEALING_SECRET, secret_exposed=True, dst_sent_at=DST_NOW - 10)
    decision = decided(still_locked)
    assert isinstance(decision, Move) and decision.to is S.REFUNDING and decision.reason == "DESTINATION_LOCK_GONE"


def test_e_the_source_collected_with_the_makers_secret_marks_it_exposed() -> None:
    """Regression (the kernel's property run, long profile): in secret mode "maker", a third party collected
    the source with the secret the maker had broadcast; the session went on to pay the receiver without
    recording the secret as exposed (rule c: recorded before the session's first broadcast of it)."""
    collected = replace(SRC_LOCK, state=LockState.WITHDRAWN, closed_final=True)
    f = facts(S.REFUNDING, src=collected, dst=DST_LOCK, terms=replace(TERMS, maker_holds_secret=True))
    decision = decided(f)
    assert isinstance(decision, Move) and decision.to is S.REVEALING_SECRET and decision.expose


# -- d. a withdrawn destination: collect the source, never refund it -------------------------------------


@pytest.mark.parametrize(
    "state", [S.SOURCE_LOCKED, S.DESTINATION_LOCKING, S.BOTH_LOCKED, S.REFUNDING], ids=lambda s: s.value
)
def test_d_destination_withdrawn_by_anyone_collects_the_source(state: State) -> None:
    dst = replace(DST_LOCK, state=LockState.WITHDRAWN)
    decision = decided(facts(state, dst=dst, cancel_requested=True))
    assert isinstance(decision, Move) and decision.to is S.REVEALING_SECRET
    assert decided(facts(S.REVEALING_SECRET, dst=dst, secret_exposed=True)) == Send(Action.WITHDRAW_SOURCE)


def test_d_regression_destination_withdrawn_while_refunding_collects_the_source() -> None:
    dst = replace(DST_LOCK, state=LockState.WITHDRAWN)
    f = facts(S.REFUNDING, dst=dst, src_now=SRC_LOCK.cancellation_at - 1, secret_exposed=True)
    decision = decided(f)
    assert isinstance(decision, Move) and decision.to is S.REVEALING_SECRET
    following = decided(replace(f, memory=replace(f.memory, state=S.REVEALING_SECRET)))
    assert following == Send(Action.WITHDRAW_SOURCE)


# -- e. the receiver no longer payable: never collect the source; a third party did: pay the receiver ----


def test_e_receiver_not_payable_never_withdraws_the_source() -> None:
    f = facts(S.REVEALING_SECRET, dst=DST_LOCK, dst_now=DST_LOCK.cancellation_at - 1, secret_exposed=True)
    decision = decided(f)
    assert isinstance(decision, Move) and decision.to is S.REFUNDING
    assert decision.reason == "DESTINATION_WINDOW_MISSED"
    refunding = replace(f, memory=replace(f.memory, state=S.REFUNDING))
    assert decided(refunding) == Wait(
        "the destination cancellation window is not open yet", until=(Side.DST, DST_LOCK.cancellation_at)
    )
    opened = replace(refunding, dst_chain=ChainFact(DST_LOCK.cancellation_at, 4, RESOLVER))
    assert decided(opened) == Send(Action.CANCEL_DESTINATION)


def test_e_third_party_withdrew_the_source_pays_the_receiver() -> None:
    collected = replace(SRC_LOCK, state=LockState.WITHDRAWN, closed_final=True)
    cancelled = replace(DST_LOCK, **CANCELLED)  # type: ignore[arg-type]
    f = facts(S.REVEALING_SECRET, src=collected, dst=cancelled, secret_exposed=True)
    assert decided(f) == Send(Action.PAY_RECEIVER)
    paid = replace(f, memory=replace(f.memory, receiver_paid_directly=True))
    assert decided(paid) == Move(
        S.COMPLETED, "receiver paid directly; source collected", reason="RECEIVER_PAID_DIRECTLY"
    )


# -- f. terminal states only on the facts the docstring gives --------------------------------------------


def test_f_completed_only_when_both_withdrawals_are_final() -> None:
    src_w, dst_w = replace(SRC_LOCK, **WITHDRAWN), replace(DST_LOCK, **WITHDRAWN)  # type: ignore[arg-type]
    assert decided(facts(S.REVEALING_SECRET, src=src_w, dst=dst_w, secret_exposed=True)) == Move(
        S.COMPLETED, "both withdrawals final"
    )
    for src, dst in ((replace(src_w, closed_final=False), dst_w), (src_w, replace(dst_w, closed_final=False))):
        assert isinstance(decided(facts(S.REVEALING_SECRET, src=src, dst=dst, secret_exposed=True)), Wait)


def test_f_refunded_only_when_every_known_lock_is_cancelled_and_final() -> None:
    src_c, dst_c = replace(SRC_LOCK, **CANCELLED), replace(DST_LOCK, **CANCELLED)  # type: ignore[arg-type]
    assert decided(facts(S.REFUNDING, src=src_c, dst=dst_c)) == Move(S.REFUNDED, "every lock refunded")
    assert isinstance(decided(facts(S.REFUNDING, src=src_c, dst=replace(dst_c, closed_final=False))), Wait)
    assert decided(facts(S.REFUNDING, src=src_c, dst=DST_LOCK, dst_now=DST_LOCK.cancellation_at)) == Send(
        Action.CANCEL_DESTINATION
    )


def test_f_nothing_locked_ends_only_when_nothing_can_still_land() -> None:
    """A maker's NEAR lock can land however late the chain is, until the order deadline (the HTLC refuses it
    after): a cancel before it is seen ends once the deadline has passed, not after an inclusion bound."""
    nothing = facts(S.CANCELLING, src=ABSENT_LOCK, cancel_requested=True)
    for now in (SRC_NOW + 5 + 2 + 1, TERMS.order_deadline):
        assert decided(replace(nothing, src_chain=ChainFact(now, 5, RESOLVER))) == Wait(
            "a lock the maker sent may still land", until=(Side.SRC, TERMS.order_deadline + 1)
        )
    later = replace(nothing, src_chain=ChainFact(TERMS.order_deadline + 1, 5, RESOLVER))
    assert decided(later) == Move(S.CANCELLED, "nothing was locked")
    terms = replace(TERMS, maker_submits_source=False)
    order_sent = facts(S.REFUNDING, src=ABSENT_LOCK, terms=terms, src_sent_at=SRC_NOW - 1, dst_lock_id="")
    assert isinstance(decided(order_sent), Wait)
    expired = replace(order_sent, src_chain=ChainFact(TERMS.order_deadline + 1, 5, RESOLVER))
    assert decided(expired) == Move(S.FAILED, "nothing was locked after all", reason="NOTHING_LOCKED")


def test_f_terminal_states_decide_nothing() -> None:
    for state in TERMINAL:
        assert decided(facts(state, dst=replace(DST_LOCK, state=LockState.WITHDRAWN))) == Wait("ended")


# -- g. the lock id is persisted before the lock is sent -------------------------------------------------


def test_g_prepare_destination_precedes_lock_destination() -> None:
    for state in (S.SOURCE_LOCKED, S.DESTINATION_LOCKING):
        assert decided(facts(state, dst_amount="", dst_lock_id="")) == Send(Action.PREPARE_DESTINATION)
    assert decided(facts(S.SOURCE_LOCKED)) == Move(S.DESTINATION_LOCKING, "locking 990 on the destination")


# -- the maker's NEAR lock and cancel / expiry -----------------------------------------------------------


def test_regression_cancel_between_the_makers_near_lock_and_execute_refunds() -> None:
    locked = facts(S.INITIALIZED, src=replace(SRC_LOCK, final=False), executed=False, cancel_requested=True)
    decision = decided(locked)
    assert isinstance(decision, Move) and decision.to is S.REFUNDING
    # The lock not seen yet when the cancel arrives: cancelling waits for it, never cancelled while it is active.
    in_flight = facts(S.INITIALIZED, src=ABSENT_LOCK, executed=False, cancel_requested=True)
    assert decided(in_flight) == Move(
        S.CANCELLING, "cancel requested; a lock the maker sent may still land until the order deadline"
    )
    landed = facts(S.CANCELLING, src=replace(SRC_LOCK, final=False), cancel_requested=True)
    decision = decided(landed)
    assert isinstance(decision, Move) and decision.to is S.REFUNDING
    refunding = facts(S.REFUNDING, src=SRC_LOCK, cancel_requested=True, dst_lock_id="")
    assert decided(refunding) == Wait(
        "the source cancellation window is not open yet", until=(Side.SRC, SRC_LOCK.cancellation_at)
    )


def test_regression_cancelling_waits_for_a_makers_lock_held_up_past_the_inclusion_bound() -> None:
    """Chaos seed 6: a NEAR stall longer than the inclusion bound held a maker's lock sent just before the
    cancel; the session concluded nothing was locked and the lock landed a block later, left to the maker.
    The lock's terms carry the order deadline, which the HTLC enforces: the session waits for exactly that."""
    f = facts(S.CANCELLING, src=ABSENT_LOCK, cancel_requested=True, skew_s=3)
    stalled = replace(f, src_chain=ChainFact(SRC_NOW + 19, 5, RESOLVER))
    assert isinstance(decided(stalled), Wait)
    assert isinstance(decided(replace(stalled, src=replace(SRC_LOCK, final=False))), Move)


def test_regression_quote_expired_waits_for_a_makers_lock_in_flight() -> None:
    """The maker sends the NEAR lock, then executes on an expired quote: the lock may land until the order
    deadline, so the session does not time out before it."""
    f = facts(S.INITIALIZED, src=ABSENT_LOCK, executed=False, quote_expired=True)
    assert decided(f) == Wait(
        "the quote expired; a lock the maker sent may still land", until=(Side.SRC, TERMS.order_deadline + 1)
    )
    landed = decided(replace(f, src=SRC_LOCK))
    assert isinstance(landed, Move) and landed.to is S.REFUNDING
    later = replace(f, src_chain=ChainFact(TERMS.order_deadline + 1, 5, RESOLVER))
    assert decided(later) == Move(S.TIMEOUT, "the quote expired before execution", reason="QUOTE_EXPIRED")
    resolver_submits = replace(f, terms=replace(TERMS, maker_submits_source=False))
    assert decided(resolver_submits) == Move(S.TIMEOUT, "the quote expired before execution", reason="QUOTE_EXPIRED")


def test_regression_a_refused_order_fails_only_once_an_earlier_send_cannot_land() -> None:
    """One submission reverted (src_rejected) while an earlier one, its reply lost, is still in flight."""
    terms = replace(TERMS, maker_submits_source=False)
    f = facts(S.SOURCE_LOCKING, src=ABSENT_LOCK, terms=terms, src_sent_at=SRC_NOW - 3, src_rejected=True)
    assert decided(f) == Wait(
        "the order was refused; an earlier send may still land", until=(Side.SRC, TERMS.order_deadline + 1)
    )
    expired = replace(f, src_chain=ChainFact(TERMS.order_deadline + 1, 5, RESOLVER))
    decision = decided(expired)
    assert isinstance(decision, Move) and decision.to is S.FAILED and decision.reason == "SOURCE_LOCK_REJECTED"
    cancelled = replace(f, memory=replace(f.memory, state=S.CANCELLING, cancel_requested=True))
    assert isinstance(decided(cancelled), Wait)
