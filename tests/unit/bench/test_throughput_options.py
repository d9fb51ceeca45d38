"""The throughput section's size and its chain-bound ceiling's goal."""

from __future__ import annotations

from bench.__main__ import _parse
from bench.goals import GOALS, judge


def test_the_full_run_puts_500_swaps_in_flight_the_smoke_run_20_and_the_option_sets_it() -> None:
    assert _parse([]).throughput_swaps == 500
    assert _parse(["--smoke"]).throughput_swaps == 20
    assert _parse(["--smoke", "--throughput-swaps", "100"]).throughput_swaps == 100


def test_the_efficiency_goal_is_judged_from_the_throughput_section() -> None:
    goal = next(g for g in GOALS if g.path == ("throughput", "efficiency"))
    assert not goal.note  # measured now: the ceiling runs beside the orchestrator's batch
    rows = {row["goal"]: row for row in judge({"throughput": {"efficiency": 0.82, "in_flight": 500}})["targets"]}
    assert (rows[goal.name]["measured"], rows[goal.name]["pass"]) == (0.82, True)
