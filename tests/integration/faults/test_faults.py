"""Crashes, outages and reorgs in the middle of swaps: every swap still ends completed or refunded, and
the balances on both chains say nothing was lost and nothing was paid twice."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from swap.session.v1 import session_pb2_grpc
from swap_devnet.evm import increase_time
from swap_devnet.stack import LocalStack
from web3.types import RPCEndpoint

from tests.integration.swaps import AMOUNT, TERMINAL, Balances, St, create_base_to_near, execute_base, watch_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]
# The full matrix runs with `make faults`; `make test` keeps the core cases within its time budget.
SLOW = pytest.mark.slow


async def finish(sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack, session_id: str) -> Any:
    """Follows the session to its end; a refunding session gets both chains' clocks moved past its
    cancellation windows, as time would."""
    assert stack.near_devnet is not None
    balances = Balances(stack)
    done, seen = await watch_until(sessions, session_id, TERMINAL | {St.SESSION_STATE_REFUNDING}, timeout=90)
    if done.state == St.SESSION_STATE_REFUNDING:
        increase_time(balances.w3, 200)
        stack.near_devnet.fast_forward(delta_seconds=200)
        done, more = await watch_until(sessions, session_id, TERMINAL, timeout=90)
        seen += more
    return done, seen


def assert_whole(before: dict[str, int], after: dict[str, int], done: Any) -> None:
    """The balance invariant: a completed swap moved each leg exactly once; a refunded one moved nothing."""
    if done.state == St.SESSION_STATE_COMPLETED:
        dst = int(done.dst_amount)
        assert after == {
            "base_maker": before["base_maker"] - AMOUNT,
            "base_resolver": before["base_resolver"] + AMOUNT,
            "near_resolver": before["near_resolver"] - dst,
            "near_receiver": before["near_receiver"] + dst,
        }
    else:
        assert done.state == St.SESSION_STATE_REFUNDED, done
        assert after == before


async def start_swap(sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack) -> Any:
    session = await create_base_to_near(sessions, stack)
    await execute_base(sessions, stack, session)
    return session


@pytest.mark.parametrize(
    ("service", "at"),
    [
        pytest.param("chain-base", St.SESSION_STATE_SOURCE_LOCKING, id="chain-base@source-locking"),
        pytest.param(
            "chain-near", St.SESSION_STATE_DESTINATION_LOCKING, id="chain-near@destination-locking", marks=SLOW
        ),
        pytest.param("chain-near", St.SESSION_STATE_REVEALING_SECRET, id="chain-near@reveal"),
        pytest.param("chain-base", St.SESSION_STATE_REVEALING_SECRET, id="chain-base@reveal", marks=SLOW),
        pytest.param("quote", St.SESSION_STATE_EXECUTING, id="quote@executing", marks=SLOW),
    ],
)
async def test_service_killed_and_restarted_mid_swap(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack, service: str, at: Any
) -> None:
    balances = Balances(stack)
    before = balances.snapshot()
    session = await start_swap(sessions, stack)
    await watch_until(sessions, session.session_id, {at} | TERMINAL)
    proc = stack.services[service]
    proc.kill()
    await asyncio.sleep(1.0)
    proc.start()
    done, seen = await finish(sessions, stack, session.session_id)
    assert_whole(before, balances.snapshot(), done)
    assert done.state == St.SESSION_STATE_COMPLETED, (seen, done.error)


@pytest.mark.parametrize(
    ("chain", "at"),
    [
        pytest.param("base", St.SESSION_STATE_SOURCE_LOCKING, id="base@source-lock"),
        pytest.param("near", St.SESSION_STATE_DESTINATION_LOCKING, id="near@destination-lock", marks=SLOW),
        pytest.param("near", St.SESSION_STATE_REVEALING_SECRET, id="near@withdrawal"),
        pytest.param("base", St.SESSION_STATE_REVEALING_SECRET, id="base@withdrawal", marks=SLOW),
    ],
)
async def test_chain_rpc_unreachable_for_a_while(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack, chain: str, at: Any
) -> None:
    balances = Balances(stack)
    before = balances.snapshot()
    session = await start_swap(sessions, stack)
    await watch_until(sessions, session.session_id, {at} | TERMINAL)
    proxy = stack.proxies[chain]
    proxy.cut()
    await asyncio.sleep(4.0)
    proxy.restore()
    done, seen = await finish(sessions, stack, session.session_id)
    assert_whole(before, balances.snapshot(), done)
    assert done.state == St.SESSION_STATE_COMPLETED, (seen, done.error)


@pytest.mark.parametrize("depth", [pytest.param(1, marks=SLOW), 3, pytest.param(5, marks=SLOW)])
@pytest.mark.parametrize(
    "at",
    [
        St.SESSION_STATE_SOURCE_LOCKING,
        # make test's chaos run reorgs BASE under load, withdrawals included; the matrix case runs in make faults.
        pytest.param(St.SESSION_STATE_REVEALING_SECRET, marks=SLOW),
    ],
    ids=["during-source-lock", "during-withdrawal"],
)
async def test_reorg_of_the_base_chain(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack, depth: int, at: Any
) -> None:
    """The last `depth` BASE blocks are replaced by empty ones while the source lock (or the resolver's
    withdrawal) is in them: the saga notices from chain state, does the step again, and the swap ends
    with every balance accounted for. The stack waits 6 confirmations, deeper than these reorgs."""
    balances = Balances(stack)
    before = balances.snapshot()
    session = await start_swap(sessions, stack)
    await watch_until(sessions, session.session_id, {at} | TERMINAL)
    if at == St.SESSION_STATE_REVEALING_SECRET:
        await asyncio.sleep(1.5)  # let the resolver's withdrawal land in the blocks about to be replaced
    reorg = balances.w3.provider.make_request(RPCEndpoint("anvil_reorg"), [depth, []])
    assert "error" not in reorg, reorg
    done, seen = await finish(sessions, stack, session.session_id)
    assert_whole(before, balances.snapshot(), done)
    assert done.state == St.SESSION_STATE_COMPLETED, (seen, done.error)
