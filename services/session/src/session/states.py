"""The session state machine: ONE table, the only truth for transitions.

Each state names who holds the maker's and the resolver's funds, so a session with funds locked on
either chain can never end anywhere but in completed or refunded: `failed`, `cancelled` and
`timeout` are reachable only from states in which nothing is locked yet.

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
        S.TIMEOUT: "the quote or the order deadline passed before execution",
    },
    S.EXECUTING: {
        S.SOURCE_LOCKING: "the resolver submits the maker's signed order / the maker's NEAR lock appeared",
        S.CANCELLED: "cancelled before the source lock",
        S.TIMEOUT: "the maker's lock did not appear before the order deadline",
        S.FAILED: "the source chain rejected the order (nothing was locked)",
    },
    S.SOURCE_LOCKING: {
        S.SOURCE_LOCKED: "the source lock reached the configured confirmations",
        S.CANCELLING: "cancel requested while the source lock may be in flight",
        S.FAILED: "the source lock was rejected and chain state shows nothing locked",
        S.REFUNDING: "the source lock exists but its terms or timing are unusable",
    },
    S.SOURCE_LOCKED: {
        S.DESTINATION_LOCKING: "the resolver locks the destination leg",
        S.REFUNDING: "cancel requested, or too little time left to lock the destination leg safely",
    },
    S.DESTINATION_LOCKING: {
        S.BOTH_LOCKED: "the destination lock is final",
        S.REFUNDING: "the destination lock failed or the time budget ran out",
    },
    S.BOTH_LOCKED: {
        S.REVEALING_SECRET: "both locks read back, verified term by term, time left on both",
        S.REFUNDING: "cancel requested, verification failed, or too little time left to reveal",
    },
    S.REVEALING_SECRET: {
        S.COMPLETED: "both withdrawals landed; the secret is public",
        S.REFUNDING: "the destination withdrawal proved impossible and the secret never reached a chain",
    },
    S.CANCELLING: {
        S.REFUNDING: "the source lock landed; it waits for its cancellation window",
        S.CANCELLED: "chain state shows the source lock never landed",
    },
    S.REFUNDING: {
        S.REFUNDED: "every lock of the session is cancelled and the funds are back",
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
# States whose lock may or may not have landed: they end without a refund only when chain state says so.
LOCK_IN_FLIGHT = frozenset({S.SOURCE_LOCKING, S.CANCELLING})


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
        "`failed`, `cancelled` and `timeout` are reachable only before any lock exists; "
        "with funds locked a session ends in `completed` or `refunded`.\n\n"
        "```mermaid\n" + mermaid() + "\n```\n"
    )


if __name__ == "__main__":
    sys.stdout.write(document())
