"""The session state table: complete, safe with locked funds, and its diagram up to date."""

from __future__ import annotations

from pathlib import Path

import pytest
from session.states import (
    LOCK_IN_FLIGHT,
    NOTHING_LOCKED,
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    State,
    check,
    document,
)
from swap.session.v1 import session_pb2

ROOT = Path(__file__).resolve().parents[3]


def reachable(start: State) -> set[State]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_every_state_has_a_row_and_a_proto_value() -> None:
    assert set(TRANSITIONS) == set(State)
    for state in State:
        assert session_pb2.SessionState.Value(f"SESSION_STATE_{state.name}")


def test_every_state_can_end() -> None:
    for state in State:
        assert reachable(state) & TERMINAL, state


def test_locked_funds_end_only_through_refunding_or_completed() -> None:
    """From a state with funds locked, a lossy ending is reachable only through refunding, where the kernel
    ends it so only when every lock reads absent (docs/safety.md, rule f)."""
    locked = set(State) - NOTHING_LOCKED - LOCK_IN_FLIGHT - TERMINAL
    for state in locked:
        for nxt in TRANSITIONS[state]:
            assert nxt in {State.COMPLETED, State.REFUNDED} or nxt not in TERMINAL, (state, nxt)


def test_lossy_endings_only_before_locks() -> None:
    for src, nexts in TRANSITIONS.items():
        for dst in nexts.keys() & {State.FAILED, State.CANCELLED, State.TIMEOUT}:
            assert src in NOTHING_LOCKED | LOCK_IN_FLIGHT, (src, dst)


def test_revealed_secret_never_refunds_the_source_without_completion_attempt() -> None:
    assert set(TRANSITIONS[State.REVEALING_SECRET]) == {State.COMPLETED, State.REFUNDING}
    assert State.REVEALING_SECRET in TRANSITIONS[State.REFUNDING], "a withdrawn destination collects the source"


def test_illegal_transition_raises() -> None:
    check(State.INITIALIZED, State.EXECUTING)
    with pytest.raises(IllegalTransition):
        check(State.BOTH_LOCKED, State.FAILED)
    with pytest.raises(IllegalTransition):
        check(State.COMPLETED, State.REFUNDING)


def test_diagram_is_generated_from_the_table() -> None:
    assert (ROOT / "docs" / "session-states.md").read_text() == document(), "run: python -m session.states"
