"""Which rows the progress display shows, and with what status, for the paths a session can take; the
refund windows' countdown."""

from __future__ import annotations

import time

from rich.console import Console
from swapctl.render import countdown, progress_rows, refund_windows, swap_view

from tests.unit.cli.stub import BASE_TX, happy_until, session


def statuses(s: dict[str, object]) -> list[tuple[str, str]]:
    return [(row.state, row.status) for row in progress_rows(s)]


def test_happy_path_in_progress() -> None:
    assert statuses(happy_until("source_locked")) == [
        ("initialized", "done"),
        ("executing", "done"),
        ("source_locking", "done"),
        ("source_locked", "current"),
        ("destination_locking", "pending"),
        ("both_locked", "pending"),
        ("revealing_secret", "pending"),
        ("completed", "pending"),
    ]


def test_completed_is_all_done_with_transactions() -> None:
    rows = progress_rows(happy_until("completed"))
    assert {row.status for row in rows} == {"done"}
    assert next(row for row in rows if row.state == "source_locked").txs == [f"base {BASE_TX}"]


def test_refund_detour_replaces_the_rest_of_the_happy_path() -> None:
    s = session(
        "refunded", ["initialized", "executing", "source_locking", "source_locked", "refunding", "refunded"], version=6
    )
    assert statuses(s) == [
        ("initialized", "done"),
        ("executing", "done"),
        ("source_locking", "done"),
        ("source_locked", "done"),
        ("refunding", "done"),
        ("refunded", "ended"),
    ]


def test_states_skipped_in_the_steps_count_as_passed() -> None:
    s = session("both_locked", ["initialized", "both_locked"], version=2)
    assert [status for _, status in statuses(s)][:6] == ["done"] * 5 + ["current"]


def test_timeout_before_execution_is_a_failure() -> None:
    assert statuses(session("timeout", ["initialized", "timeout"], version=2)) == [
        ("initialized", "done"),
        ("timeout", "failed"),
    ]


def test_countdown() -> None:
    assert [countdown(s) for s in (0, 9.6, 72, 600, 3723, -4)] == ["0s", "10s", "1m 12s", "10m 00s", "1h 02m 03s", "0s"]


def test_refund_windows_count_down_while_refunding_or_cancelling() -> None:
    now = 1_700_000_000
    opens = time.strftime("%H:%M:%S", time.localtime(now + 72))
    steps = ["initialized", "executing", "source_locking", "source_locked", "refunding"]
    refunding = session("refunding", steps, version=5, src_cancellation_at=now + 72, dst_cancellation_at=now - 1)
    assert refund_windows(refunding, now) == [
        f"source refund window opens {opens} (in 1m 12s)",
        f"destination refund window open since {time.strftime('%H:%M:%S', time.localtime(now - 1))}",
    ]
    assert refund_windows(refunding, now + 60) == [
        f"source refund window opens {opens} (in 12s)",
        refund_windows(refunding, now)[1],
    ]
    # Only the legs whose lock is on chain have a window; other states show none.
    cancelling = session("cancelling", ["initialized", "cancelling"], version=2, src_cancellation_at=now + 5)
    assert refund_windows(cancelling, now) == [
        f"source refund window opens {time.strftime('%H:%M:%S', time.localtime(now + 5))} (in 5s)"
    ]
    assert refund_windows(happy_until("both_locked", src_cancellation_at=now + 5), now) == []
    # Cancelling with nothing locked yet: it ends once a lock the maker sent can no longer land.
    waiting = session("cancelling", ["initialized", "cancelling"], version=2, order_deadline=now + 90)
    assert refund_windows(waiting, now) == [
        f"a source lock already sent may land until {time.strftime('%H:%M:%S', time.localtime(now + 90))} (in 1m 30s)"
    ]
    console = Console(width=200, record=True)
    console.print(swap_view(refunding, src_decimals=6, dst_decimals=6, spinner=None, now=now))
    assert f"source refund window opens {opens} (in 1m 12s)" in console.export_text()
