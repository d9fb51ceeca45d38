"""SingleFlight: a step in flight is joined, never started twice; it outlives a caller who gives up."""

from __future__ import annotations

import asyncio

import pytest
from swap_runtime.singleflight import SingleFlight


async def test_calls_for_a_key_in_flight_join_the_first_run() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    started = 0
    release = asyncio.Event()

    async def send() -> int:
        nonlocal started
        started += 1
        await release.wait()
        return started

    calls = [asyncio.create_task(flights.run("withdraw:1", send)) for _ in range(5)]
    other = asyncio.create_task(flights.run("withdraw:2", send))
    await asyncio.sleep(0.01)
    assert flights.in_flight("withdraw:1")
    release.set()
    assert await asyncio.gather(*calls) == [2, 2, 2, 2, 2]  # one run for key 1 (and one for key 2)
    assert await other == 2
    assert started == 2
    assert not flights.in_flight("withdraw:1")
    # Once ended, a new call runs again (and would find the lock's new state).
    assert await flights.run("withdraw:1", send) == 3


async def test_a_caller_giving_up_does_not_stop_the_run() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    done = asyncio.Event()

    async def send() -> str:
        await asyncio.sleep(0.05)
        done.set()
        return "landed"

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(flights.run("k", send), 0.01)  # the caller's deadline passes
    assert flights.in_flight("k")
    assert await flights.run("k", send) == "landed"  # the retry joins the same run
    assert done.is_set()


async def test_a_failure_reaches_every_caller_and_is_not_kept() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    runs = 0

    async def fail() -> int:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("reverted")

    results = await asyncio.gather(flights.run("k", fail), flights.run("k", fail), return_exceptions=True)
    assert [str(r) for r in results] == ["reverted", "reverted"]
    assert runs == 1
    with pytest.raises(RuntimeError):
        await flights.run("k", fail)
    assert runs == 2
