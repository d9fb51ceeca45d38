"""Secret mode "maker": the kernel waits for the maker's release in awaiting_secret, exposes the secret only
while rule b still holds, and refunds when the release never comes or comes too late."""

from __future__ import annotations

from dataclasses import replace

from session.kernel import (
    LockState,
    Move,
    Side,
    Wait,
    reveal_fits,
    secret_deadline,
    secret_deadline_on_destination,
)
from session.states import State

from tests.unit.session.test_kernel_rules import (
    DST_LOCK,
    SRC_LOCK,
    TERMS,
    WITHDRAWN,
    decided,
    facts,
)

S = State
MAKER_TERMS = replace(TERMS, maker_holds_secret=True)


def maker_facts(state: State, **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("dst", DST_LOCK)
    kw.setdefault("secret_known", False)
    return facts(state, terms=MAKER_TERMS, **kw)  # type: ignore[arg-type]


def test_both_locked_waits_for_the_maker_instead_of_revealing() -> None:
    d = decided(maker_facts(S.BOTH_LOCKED))
    assert isinstance(d, Move) and d.to is S.AWAITING_SECRET and not d.expose


def test_service_mode_still_reveals_at_once() -> None:
    f = facts(S.BOTH_LOCKED, dst=DST_LOCK, dst_now=DST_LOCK.withdrawal_at + 1)
    d = decided(f)
    assert isinstance(d, Move) and d.to is S.REVEALING_SECRET and d.expose


def test_verification_comes_before_waiting_for_the_secret() -> None:
    bad = replace(DST_LOCK, amount="1")
    d = decided(maker_facts(S.BOTH_LOCKED, dst=bad))
    assert isinstance(d, Move) and d.to is S.REFUNDING and d.reason == "LOCK_VERIFICATION_FAILED"


def test_without_the_secret_the_session_waits_until_the_deadline() -> None:
    f = maker_facts(S.AWAITING_SECRET)
    d = decided(f)
    assert isinstance(d, Wait)
    side, last = secret_deadline(f)
    assert d.until == (side, last + 1)


def test_the_deadline_is_the_last_moment_rule_b_holds() -> None:
    f = maker_facts(S.AWAITING_SECRET)
    side, last = secret_deadline(f)
    at_deadline = _at(f, side, last)
    after = _at(f, side, last + 1)
    assert reveal_fits(at_deadline)
    assert not reveal_fits(after)
    # The destination's clock is what the maker's client reads.
    assert secret_deadline_on_destination(f) == (last if side is Side.DST else f.dst_chain.now + last - f.src_chain.now)


def _at(f, side: Side, t: int):  # type: ignore[no-untyped-def]
    """The same facts with both chains advanced so that `side` reads `t`."""
    now = f.dst_chain.now if side is Side.DST else f.src_chain.now
    delta = t - now
    return replace(
        f,
        src_chain=replace(f.src_chain, now=f.src_chain.now + delta),
        dst_chain=replace(f.dst_chain, now=f.dst_chain.now + delta),
    )


def test_released_secret_is_exposed_once_the_window_opens() -> None:
    early = maker_facts(S.AWAITING_SECRET, secret_known=True, dst_now=DST_LOCK.withdrawal_at)
    d = decided(early)
    assert isinstance(d, Wait) and d.until == (Side.DST, DST_LOCK.withdrawal_at + 1)
    ready = maker_facts(S.AWAITING_SECRET, secret_known=True, dst_now=DST_LOCK.withdrawal_at + 1)
    d = decided(ready)
    assert isinstance(d, Move) and d.to is S.REVEALING_SECRET and d.expose


def test_no_release_before_the_deadline_refunds() -> None:
    f = maker_facts(S.AWAITING_SECRET)
    side, last = secret_deadline(f)
    d = decided(_at(f, side, last + 1))
    assert isinstance(d, Move) and d.to is S.REFUNDING and d.reason == "SECRET_NOT_RELEASED"


def test_a_release_that_comes_too_late_is_not_used() -> None:
    """Known but past the deadline: rule b no longer holds, so the secret is never broadcast."""
    f = maker_facts(S.AWAITING_SECRET, secret_known=True)
    side, last = secret_deadline(f)
    d = decided(_at(f, side, last + 1))
    assert isinstance(d, Move) and d.to is S.REFUNDING and not d.expose


def test_cancel_while_awaiting_refunds() -> None:
    d = decided(maker_facts(S.AWAITING_SECRET, cancel_requested=True))
    assert isinstance(d, Move) and d.to is S.REFUNDING


def test_destination_withdrawn_by_the_maker_collects_the_source() -> None:
    """The maker used the secret on the destination themselves: the receiver is paid, the resolver collects."""
    dst = replace(DST_LOCK, **WITHDRAWN)  # type: ignore[arg-type]
    d = decided(maker_facts(S.AWAITING_SECRET, dst=dst, secret_known=True))
    assert isinstance(d, Move) and d.to is S.REVEALING_SECRET


def test_source_withdrawn_by_the_maker_pays_the_receiver() -> None:
    src = replace(SRC_LOCK, **WITHDRAWN)  # type: ignore[arg-type]
    d = decided(maker_facts(S.AWAITING_SECRET, src=src, secret_known=True, dst_now=DST_LOCK.withdrawal_at + 1))
    assert isinstance(d, Move) and d.to is S.REVEALING_SECRET and d.expose


def test_source_withdrawn_while_refunding_is_not_an_anomaly_in_maker_mode() -> None:
    src = replace(SRC_LOCK, **WITHDRAWN)  # type: ignore[arg-type]
    d = decided(maker_facts(S.REFUNDING, src=src, secret_known=True))
    assert isinstance(d, Move) and d.to is S.REVEALING_SECRET


def test_refund_path_never_withdraws_with_a_known_but_unexposed_secret() -> None:
    f = maker_facts(S.REFUNDING, secret_known=True, dst_now=DST_LOCK.cancellation_at)
    d = decided(f)
    assert not (isinstance(d, Move) and d.to is S.REVEALING_SECRET)
    assert LockState.ACTIVE is f.dst.state
