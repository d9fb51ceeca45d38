"""Which rows the progress display shows, and with what status, for the paths a session can take."""

from __future__ import annotations

from swapctl.render import progress_rows

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
