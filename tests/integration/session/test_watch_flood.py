"""A maker floods WatchSession around the moment its swap reveals the secret: the saga must not notice.

Before the watch pool was split from the saga's, thousands of streams blocked in XREAD on the one pool the
saga saves through, so once the receiver was paid the saga could not record it nor withdraw the source,
and the source's cancellation window would hand the maker its tokens back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, cast

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from swap.session.v1 import session_pb2, session_pb2_grpc
from swap_devnet.stack import LocalStack
from swap_runtime.tls import Tls

from tests.integration.swaps import AMOUNT, TERMINAL, Balances, St, create_base_to_near, execute_base

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)

# The stack's session service runs with the default caps: 1,000 streams per replica, 50 per client.
REPLICA_CAP = 1000
# Streams standing before the swap starts (opening them takes the service seconds, longer than the reveal
# lasts), then a burst at both_locked; from enough tenants that none reaches the per-client cap, so the
# replica cap is what bites.
STANDING = REPLICA_CAP
BURST = 1500
TENANTS = 60
CHANNELS = 10
# An ordinary swap on this stack takes 4-8 s, 3 of them waiting for the destination withdrawal window.
SWAP_BUDGET_S = 30
# Marks in a swap's timeline besides its states.
EXECUTED, BURST_SENT, BURST_SETTLED = -1, -2, -3


def operator_credentials(stack: LocalStack) -> grpc.ChannelCredentials:
    tls = stack.identity_dir("operator")
    assert tls is not None, "the stack runs with mutual TLS"
    return Tls.load(tls).channel_credentials()


class Flood:
    """WatchSession streams on one session from many tenants, each read like a real watcher's until it ends."""

    def __init__(self, address: str, credentials: grpc.ChannelCredentials, session_id: str) -> None:
        # A channel of its own per connection: channels to one address otherwise share one connection.
        self.channels = [
            grpc.aio.secure_channel(address, credentials, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(CHANNELS)
        ]
        self.session_id = session_id
        self.held = 0
        self.held_to_the_end = 0
        self.held_ended = 0  # held streams that are over, however they ended
        self._held_over = asyncio.Event()
        self.refused: dict[tuple[str, str], int] = {}
        self.reset = 0
        self.errors: list[str] = []
        self._closing = False
        self._calls: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._settled = 0
        self._target = 0
        self._all_settled = asyncio.Event()

    async def open(self, count: int) -> None:
        """Opens `count` more streams and returns once each is held or refused."""
        first = len(self._tasks)
        self._target = first + count
        self._all_settled.clear()
        self._tasks += [asyncio.create_task(self._one(first + i)) for i in range(count)]
        await asyncio.wait_for(self._all_settled.wait(), 30)

    def _settle(self) -> None:
        self._settled += 1
        if self._settled >= self._target:
            self._all_settled.set()

    async def _one(self, i: int) -> None:
        stub = session_pb2_grpc.SessionServiceStub(self.channels[i % CHANNELS])
        call = stub.WatchSession(
            session_pb2.WatchSessionRequest(session_id=self.session_id),
            # Operator tenants: the flooded session has no tenant of its own.
            metadata=(("x-tenant", f"flood-{i % TENANTS}"), ("x-tenant-role", "operator")),
        )
        self._calls.append(call)
        held = False
        try:
            last = await call.read()
            self.held += 1
            held = True
            self._settle()
            while (update := await call.read()) is not grpc.aio.EOF:
                last = update
            if last.session.state in TERMINAL:
                self.held_to_the_end += 1
        except grpc.aio.AioRpcError as err:
            if self._closing:
                return
            self._settle()
            if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                key = _reason(err)
                self.refused[key] = self.refused.get(key, 0) + 1
            elif err.code() == grpc.StatusCode.CANCELLED:
                # Seen only alongside refusals under this load: gRPC resets some refused streams instead of
                # delivering their status. Refused either way.
                self.reset += 1
            else:
                self.errors.append(f"{err.code().name}: {err.details()}")
        finally:
            if held:
                self.held_ended += 1
                if self.held_ended >= self.held:
                    self._held_over.set()

    async def drained(self, timeout_s: float) -> None:
        """Until every held stream is over (the session's last update read, or an error), or the timeout.
        Called once no more streams open."""
        if self.held_ended >= self.held:
            return
        self._held_over.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._held_over.wait(), timeout_s)

    async def close(self) -> None:
        self._closing = True
        for call in self._calls:
            call.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for channel in self.channels:
            await channel.close()


def _reason(err: grpc.aio.AioRpcError) -> tuple[str, str]:
    status = rpc_status.from_call(err)
    info = error_details_pb2.ErrorInfo()
    if status is None or not status.details or not status.details[0].Unpack(info):
        return ("", "")
    return info.reason, info.metadata.get("cap", "")


async def follow(
    sessions: session_pb2_grpc.SessionServiceStub,
    session_id: str,
    reached: dict[int, float],
    events: dict[Any, asyncio.Event],
) -> session_pb2.Session:
    """Stamps when each state was first seen, until the session ends; sets the events of the states seen."""
    async for update in sessions.WatchSession(session_pb2.WatchSessionRequest(session_id=session_id)):
        reached.setdefault(update.session.state, time.monotonic())
        if update.session.state in events:
            events[update.session.state].set()
        if update.session.state in TERMINAL:
            found: session_pb2.Session = update.session
            return found
    raise AssertionError(f"the stream ended before the session did: {sorted(reached)}")


async def swap(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack, flood: bool
) -> tuple[session_pb2.Session, dict[int, float], Flood | None, int]:
    """One BASE -> NEAR swap, flooded or not: its end, its timeline, the flood and how many of its streams
    stood when the swap was executed."""
    session = await create_base_to_near(sessions, stack)
    reached: dict[int, float] = {}
    events = {St.SESSION_STATE_INITIALIZED: asyncio.Event(), St.SESSION_STATE_BOTH_LOCKED: asyncio.Event()}
    # The swap's own stream opens first, so it holds one of the replica's slots throughout.
    watching = asyncio.create_task(follow(sessions, session.session_id, reached, events))
    streams = (
        Flood(stack.services["session"].address, operator_credentials(stack), session.session_id) if flood else None
    )
    standing = 0
    try:
        await asyncio.wait_for(events[St.SESSION_STATE_INITIALIZED].wait(), 10)
        if streams is not None:
            await streams.open(STANDING)
            standing = streams.held
        reached[EXECUTED] = time.monotonic()
        await execute_base(sessions, stack, session)
        if streams is not None:
            await asyncio.wait_for(events[St.SESSION_STATE_BOTH_LOCKED].wait(), 30)
            reached[BURST_SENT] = time.monotonic()
            await streams.open(BURST)
            reached[BURST_SETTLED] = time.monotonic()
        done = await asyncio.wait_for(watching, 60)
        if streams is not None:
            # The held streams end with the session: each reads its last update (a thousand of them, over TLS,
            # on a busy machine, can take a few seconds).
            await streams.drained(30)
        return done, reached, streams, standing
    finally:
        watching.cancel()
        if streams is not None:
            await streams.close()


async def test_a_watch_flood_at_the_reveal_does_not_stall_the_swap(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack
) -> None:
    balances = Balances(stack)

    calm, calm_reached, _, _ = await swap(sessions, stack, flood=False)
    assert calm.state == St.SESSION_STATE_COMPLETED, calm.error
    calm_s = calm_reached[St.SESSION_STATE_COMPLETED] - calm_reached[EXECUTED]

    before = balances.snapshot()
    done, reached, flood, standing = await swap(sessions, stack, flood=True)
    assert flood is not None
    started = reached[EXECUTED]
    flooded_s = reached[St.SESSION_STATE_COMPLETED] - started
    marks = {EXECUTED: "executed", BURST_SENT: "burst sent", BURST_SETTLED: "burst settled"}
    timeline = {
        marks.get(k) or St.Name(cast(Any, k)): round(v - started, 2)
        for k, v in sorted(reached.items(), key=lambda kv: kv[1])
    }
    log.info(
        "watch flood: %d streams, %d standing, %d held to the end, refused %s, %d reset; swap %.1f s calm, "
        "%.1f s flooded; %s",
        STANDING + BURST,
        standing,
        flood.held_to_the_end,
        flood.refused,
        flood.reset,
        calm_s,
        flooded_s,
        timeline,
    )
    assert not flood.errors, flood.errors[:5]
    # The replica cap held the flood: the swap's own stream has one slot, the flood took all the others...
    assert standing == REPLICA_CAP - 1, standing
    # ...and those stood until the session ended, through the reveal. (Burst streams that came after the
    # end are held too, for the one last update.)
    assert flood.held_to_the_end == flood.held >= standing
    assert set(flood.refused) == {("TOO_MANY_WATCHERS", "replica")}, flood.refused
    # The burst came while both legs were locked, before the reveal.
    assert reached[BURST_SENT] < reached[St.SESSION_STATE_REVEALING_SECRET], timeline

    assert done.state == St.SESSION_STATE_COMPLETED, (done.error, timeline)
    assert flooded_s < SWAP_BUDGET_S, (flooded_s, calm_s, timeline)
    dst_amount = int(done.dst_amount)
    after = balances.snapshot()
    assert after["base_maker"] == before["base_maker"] - AMOUNT
    assert after["base_resolver"] == before["base_resolver"] + AMOUNT
    assert after["near_receiver"] == before["near_receiver"] + dst_amount
    assert after["near_resolver"] == before["near_resolver"] - dst_amount
