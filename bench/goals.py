"""The performance targets, each read from a report and judged: the report's `goals` block.

A target whose figure the run did not produce (a section skipped or failed, or a measurement this bench does
not make yet) is judged `null`, never passed. `met` counts the passed ones, so a partial run cannot look like a
pass. The figures are ratios measured side by side in the same run wherever the target is a ratio; absolute
figures (milliseconds, KiB) carry the load average of their section, since these machines are shared.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

_OPS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, ">=": operator.ge, "==": operator.eq}


@dataclass(frozen=True)
class Goal:
    name: str
    path: tuple[str, ...]  # where the figure is in the report; its first key is the section
    op: str
    target: float
    note: str = ""
    # A figure the same run measures that bounds this one: the floor of the work it cannot leave out.
    limit: tuple[str, ...] | None = None
    limit_note: str = ""


GOALS: tuple[Goal, ...] = (
    Goal("chain-base lock vs direct web3.py, median ratio", ("chain_base", "lock", "ratio_median"), "<=", 1.3),
    Goal("chain-base withdraw vs direct web3.py, median ratio", ("chain_base", "withdraw", "ratio_median"), "<=", 1.3),
    Goal("chain-near native lock vs direct py-near", ("chain_near", "native", "lock", "ratio_median"), "<=", 1.1),
    Goal(
        "chain-near native withdraw vs direct py-near", ("chain_near", "native", "withdraw", "ratio_median"), "<=", 1.1
    ),
    Goal("chain-near NEP-141 lock vs direct py-near", ("chain_near", "ft", "lock", "ratio_median"), "<=", 1.1),
    Goal("chain-near NEP-141 withdraw vs direct py-near", ("chain_near", "ft", "withdraw", "ratio_median"), "<=", 1.1),
    Goal("throughput: swaps in flight", ("throughput", "in_flight"), ">=", 500),
    Goal("throughput: failed swaps", ("throughput", "failures"), "==", 0),
    Goal(
        "throughput: completed per second over the chain-bound ceiling",
        ("throughput", "efficiency"),
        ">=",
        0.7,
    ),
    Goal(
        "gateway REST GetQuote throughput over Envoy's transcoder at 16 in flight",
        ("gateway_vs_transcoder", "ratio_rps_16"),
        ">=",
        0.8,
    ),
    Goal(
        "gateway REST GetQuote p99 at 16 in flight, ms",
        ("gateway_vs_transcoder", "under_load", "p99_ms", "gateway_rest"),
        "<=",
        20,
    ),
    Goal(
        "quote service over a no-op servicer, requests/s",
        ("quote_vs_noop", "ratio_rps"),
        ">=",
        0.9,
        limit=("quote_vs_noop", "ratio_rps_signed_noop"),
        limit_note="a servicer that only signs its constant quote per call (Ed25519), over the same no-op",
    ),
    Goal("WebSocket: one update to every subscriber, p99 after the first, ms", ("ws_fanout", "p99_ms"), "<=", 50),
    Goal(
        "memory per open session, session service, KiB",
        ("memory_per_session", "session", "per_session_kib"),
        "<=",
        10.6,
    ),
    Goal("memory per open session, gateway, KiB", ("memory_per_session", "gateway", "per_session_kib"), "<=", 1.6),
)


def _figure(report: dict[str, Any], path: Sequence[str]) -> float | None:
    value: Any = report
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def judge(report: dict[str, Any], goals: Sequence[Goal] = GOALS) -> dict[str, Any]:
    """The `goals` block: every target with its figure, the section's load average and the verdict."""
    rows: list[dict[str, Any]] = []
    for goal in goals:
        measured = _figure(report, goal.path)
        section = report.get(goal.path[0])
        load = section.get("loadavg_1m") if isinstance(section, dict) else None
        row: dict[str, Any] = {
            "goal": goal.name,
            "target": f"{goal.op} {goal.target:g}",
            "measured": measured,
            "pass": None if measured is None else _OPS[goal.op](measured, goal.target),
            "loadavg_1m": load,
        }
        if measured is None:
            row["why_unjudged"] = goal.note or f"no figure at {'.'.join(goal.path)} in this run"
        elif goal.note:
            row["note"] = goal.note
        if goal.limit is not None:
            row["limit"] = {"measured": _figure(report, goal.limit), "what": goal.limit_note}
        rows.append(row)
    met = sum(1 for row in rows if row["pass"] is True)
    return {
        "met": met,
        "of": len(rows),
        "failed": [row["goal"] for row in rows if row["pass"] is False],
        "unjudged": [row["goal"] for row in rows if row["pass"] is None],
        "all_met": met == len(rows),
        "targets": rows,
    }


def table(goals: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    marks = {True: "pass", False: "FAIL", None: "----"}
    lines = [f"goals met: {goals['met']} of {goals['of']}"]
    for row in goals["targets"]:
        measured = "not measured" if row["measured"] is None else f"{row['measured']:g}"
        line = f"  {marks[row['pass']]}  {row['goal']}: {measured} (target {row['target']})"
        limit = row.get("limit")
        if limit and limit["measured"] is not None:
            line += f"; limit {limit['measured']:g}: {limit['what']}"
        lines.append(line)
    return "\n".join(lines)
