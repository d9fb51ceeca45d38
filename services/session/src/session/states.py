"""The session state machine: ONE table, the only truth for transitions.

Which transition a session takes is the safety kernel's decision (`session.kernel`), made on fresh chain
facts; this table says which ones exist at all. A session with funds locked ends only in completed or
refunded: `failed`, `cancelled` and `timeout` are reachable only from states in which nothing is locked
yet, or from those (source_locking, cancelling, refunding) where the kernel ends there only when chain
state shows no lock at any id the session announced, and none able to land.

`docs/session-states.md` holds the diagram generated from this table (`python -m session.states`);
a test fails when the two differ.
"""

from __future__ import annotations

import sys
from enum import StrEnum


class State(StrEnum):
    INITIALIZED = "initialized"
    EXECUTING = "executing"
    SOURCE_LOCKING = "source_locking"
    SOURCE_LOCKED = "source_locked"
    DESTINATION_LOCKING = "destination_locking"
    BOTH_LOCKED = "both_locked"
    AWAITING_SECRET = "awaiting_secret"  # noqa: S105 - a state name, not a secret
    REVEALING_SECRET = "revealing_secret"  # noqa: S105 - a state name, not a secret
    COMPLETED = "completed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    REFUNDING = "refunding"
    REFUNDED = "refunded"
    FAILED = "failed"
    TIMEOUT = "timeout"


S = State

# state -> (states it may move to, why each exists)
TRANSITIONS: dict[State, dict[State, str]] = {
    S.INITIALIZED: {
        S.EXECUTING: "the maker signed the order / asked to adopt their NEAR lock",
        S.CANCELLED: "cancelled before anything was locked",
        S.CANCELLING: "cancelled while a lock the maker sent (NEAR) may still land",
        S.REFUNDING: "the maker's lock exists but the maker cancelled or never executed",
        S.TIMEOUT: "the quote or the order deadline passed before execution",
    },
    S.EXECUTING: {
        S.SOURCE_LOCKING: "the resolver submits the maker's signed order / the maker's NEAR lock appeared",
        S.CANCELLED: "cancelled before the source lock",
        S.CANCELLING: "cancelled while a lock the maker sent (NEAR) may still land",
        S.TIMEOUT: "the maker's lock did not appear before the order deadline",
    },
    S.SOURCE_LOCKING: {
        S.SOURCE_LOCKED: "the source lock reached the configured confirmations and matches every term",
        S.CANCELLING: "cancel requested while the source lock may be in flight",
        S.FAILED: "the source lock was rejected and chain state shows nothing locked or able to land",
        S.REFUNDING: "the source lock exists but its terms are not the agreed ones",
    },
    S.SOURCE_LOCKED: {
        S.DESTINATION_LOCKING: "the destination lock id is persisted; the resolver locks the destination leg",
        S.REFUNDING: "cancel requested, or too little time left to lock the destination leg safely",
        S.REVEALING_SECRET: "the destination was withdrawn by someone: collect the source",
    },
    S.DESTINATION_LOCKING: {
        S.BOTH_LOCKED: "the destination lock is final",
        S.REFUNDING: "cancel requested, the destination lock was refused or cancelled, or no time is left",
        S.REVEALING_SECRET: "the destination was withdrawn by someone: collect the source",
    },
    S.BOTH_LOCKED: {
        S.REVEALING_SECRET: "both locks final and verified term by term, time left on both: the secret is exposed",
        S.AWAITING_SECRET: "secret mode maker: both locks final and verified, time left on both; the maker's "
        "client checks the destination lock itself before releasing the secret",
        S.REFUNDING: "cancel requested, verification failed, or too little time left to reveal",
    },
    S.AWAITING_SECRET: {
        S.REVEALING_SECRET: "the maker released the secret in time (or it appeared on chain): the secret is exposed",
        S.REFUNDING: "cancel requested, verification failed, or the secret was not released before the deadline",
    },
    S.REVEALING_SECRET: {
        S.COMPLETED: "both withdrawals final (or the receiver paid directly and the source collected)",
        S.REFUNDING: "the receiver can no longer be paid through the lock: the source goes back to the maker",
    },
    S.CANCELLING: {
        S.REFUNDING: "the source lock landed; it waits for its cancellation window",
        S.CANCELLED: "chain state shows the source lock never landed and no longer can",
    },
    S.REFUNDING: {
        S.REFUNDED: "every lock of the session is cancelled, final, and the funds are back",
        S.REVEALING_SECRET: "the destination was withdrawn (the receiver is paid), or the secret is out and the "
        "receiver can still be paid: collect the source",
        S.CANCELLED: "cancelled, and chain state shows nothing was ever locked",
        S.FAILED: "chain state shows nothing was ever locked",
    },
    S.COMPLETED: {},
    S.CANCELLED: {},
    S.REFUNDED: {},
    S.FAILED: {},
    S.TIMEOUT: {},
}

TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
# States in which no funds can be locked yet: the only ones from which a session may end without a refund.
NOTHING_LOCKED = frozenset({S.INITIALIZED, S.EXECUTING})
# States whose locks may or may not exist: they end without a refund only when chain state says so.
LOCK_IN_FLIGHT = frozenset({S.SOURCE_LOCKING, S.CANCELLING, S.REFUNDING})


class IllegalTransition(Exception):
    def __init__(self, src: State, dst: State) -> None:
        super().__init__(f"illegal session transition {src} -> {dst}")
        self.src = src
        self.dst = dst


def check(src: State, dst: State) -> None:
    if dst not in TRANSITIONS[src]:
        raise IllegalTransition(src, dst)


def mermaid() -> str:
    """The state diagram, generated from TRANSITIONS."""
    lines = ["stateDiagram-v2", f"    [*] --> {S.INITIALIZED.value}"]
    for src, nexts in TRANSITIONS.items():
        for dst, why in nexts.items():
            lines.append(f"    {src.value} --> {dst.value}: {why}")
    lines.extend(f"    {s.value} --> [*]" for s in TRANSITIONS if s in TERMINAL)
    return "\n".join(lines)


def document() -> str:
    return (
        "# Session states\n\n"
        "Generated from `services/session/src/session/states.py` by `python -m session.states`; "
        "do not edit by hand.\n\n"
        "Terminal: " + ", ".join(f"`{s.value}`" for s in TRANSITIONS if s in TERMINAL) + ". "
        "`failed`, `cancelled` and `timeout` are reached only when chain state shows no lock at any id the "
        "session announced (and none able to land); with funds locked a session ends in `completed` or "
        "`refunded`. Which transition is taken is decided by the safety kernel on fresh chain facts "
        "(docs/safety.md).\n\n"
        "```mermaid\n" + mermaid() + "\n```\n"
    )


if __name__ == "__main__":
    sys.stdout.write(document())
