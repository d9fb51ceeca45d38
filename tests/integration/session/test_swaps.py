"""Whole swaps through the session service against real chains, checked by balances on both chains."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
import redis.asyncio as aioredis
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2, quote_pb2_grpc
from swap.session.v1 import session_pb2, session_pb2_grpc
from swap_devnet.evm import increase_time
from swap_devnet.procs import ServiceProcess
from swap_devnet.stack import LocalStack
from swap_runtime.quote_token import QuoteSigner, QuoteVerifier, new_key_pair, private_key

from tests.integration.rich_status import error_reason
from tests.integration.swaps import (
    AMOUNT,
    TERMINAL,
    Balances,
    St,
    create_base_to_near,
    execute_base,
    make_near_maker_calls,
    sign,
    watch_until,
)

pytestmark = pytest.mark.integration


async def test_base_to_near_swap_completes(sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack) -> None:
    assert stack.evm is not None
    balances = Balances(stack)
    before = balances.snapshot()
    session = await create_base_to_near(sessions, stack)
    assert session.state == St.SESSION_STATE_INITIALIZED
    assert session.maker_action.sign_order.allowance == str(AMOUNT)
    assert not session.secret

    await sessions.ExecuteSession(
        session_pb2.ExecuteSessionRequest(
            session_id=session.session_id, signature=sign(session, stack.evm.maker.private_key)
        )
    )
    done, seen = await watch_until(sessions, session.session_id, TERMINAL)
    assert done.state == St.SESSION_STATE_COMPLETED, (seen, done.error)
    for state in (St.SESSION_STATE_SOURCE_LOCKED, St.SESSION_STATE_BOTH_LOCKED, St.SESSION_STATE_REVEALING_SECRET):
        assert state in [s.state for s in done.steps]
    assert hashlib.sha256(bytes.fromhex(done.secret)).hexdigest() == done.hashlock

    dst_amount = int(done.dst_amount)
    assert dst_amount >= int(done.quote.min_received) > 0
    after = balances.snapshot()
    assert after["base_maker"] == before["base_maker"] - AMOUNT
    assert after["base_resolver"] == before["base_resolver"] + AMOUNT
    assert after["near_receiver"] == before["near_receiver"] + dst_amount
    assert after["near_resolver"] == before["near_resolver"] - dst_amount


async def test_cancel_after_both_locks_refunds_both_legs(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack
) -> None:
    assert stack.evm is not None and stack.near_devnet is not None
    balances = Balances(stack)
    before = balances.snapshot()
    session = await create_base_to_near(sessions, stack)
    await sessions.ExecuteSession(
        session_pb2.ExecuteSessionRequest(
            session_id=session.session_id, signature=sign(session, stack.evm.maker.private_key)
        )
    )
    await watch_until(sessions, session.session_id, {St.SESSION_STATE_BOTH_LOCKED})
    cancelled = await sessions.CancelSession(session_pb2.CancelSessionRequest(session_id=session.session_id))
    assert cancelled.session.state == St.SESSION_STATE_BOTH_LOCKED
    await watch_until(sessions, session.session_id, {St.SESSION_STATE_REFUNDING})
    locked = balances.snapshot()
    assert locked["base_maker"] == before["base_maker"] - AMOUNT

    # Past both cancellation windows on both chains' clocks: the saga refunds each lock.
    increase_time(balances.w3, 200)
    stack.near_devnet.fast_forward(delta_seconds=200)
    done, seen = await watch_until(sessions, session.session_id, TERMINAL)
    assert done.state == St.SESSION_STATE_REFUNDED, (seen, done.error)
    assert not done.secret
    assert balances.snapshot() == before


async def test_bad_requests_name_the_field_and_store_nothing(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack
) -> None:
    assert stack.evm is not None and stack.near is not None
    good = session_pb2.CreateSessionRequest(
        src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=stack.evm.token),
        dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=stack.near.token.account_id),
        src_amount=str(AMOUNT),
        maker=stack.evm.maker.address,
        receiver=stack.near.receiver.account_id,
    )
    listed = await sessions.ListSessions(session_pb2.ListSessionsRequest(maker=stack.evm.maker.address, page_size=100))
    cases: list[tuple[str, dict[str, Any]]] = [
        ("src_amount", {"src_amount": "-1"}),
        ("src_amount", {"src_amount": "1.5"}),
        ("maker", {"maker": "not-an-address"}),
        ("receiver", {"receiver": "0x" + "ab" * 20 + "!"}),
        ("receiver", {"receiver": "UPPER.near"}),
        ("dst.chain", {"dst": quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=stack.evm.token)}),
        ("src.chain", {"src": quote_pb2.Asset(chain=common_pb2.CHAIN_UNSPECIFIED, token="x")}),
        ("slippage_bps", {"slippage_bps": 9000}),
        ("dst.token", {"dst": quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token="nosuch.test.near")}),
    ]
    for field, change in cases:
        request = session_pb2.CreateSessionRequest()
        request.CopyFrom(good)
        for key, value in change.items():
            if isinstance(value, quote_pb2.Asset):
                getattr(request, key).CopyFrom(value)
            else:
                setattr(request, key, value)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sessions.CreateSession(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, err.value.details())
        assert (err.value.details() or "").startswith(field), (field, err.value.details())
    after = await sessions.ListSessions(session_pb2.ListSessionsRequest(maker=stack.evm.maker.address, page_size=100))
    with pytest.raises(grpc.aio.AioRpcError) as token:
        await sessions.ListSessions(session_pb2.ListSessionsRequest(page_token="9" * 30))
    assert token.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(after.sessions) == len(listed.sessions)

    session = await create_base_to_near(sessions, stack)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sessions.ExecuteSession(
            session_pb2.ExecuteSessionRequest(
                session_id=session.session_id, signature=sign(session, stack.evm.receiver.private_key)
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.value.details() or "").startswith("signature")
    still = await sessions.GetSession(session_pb2.GetSessionRequest(session_id=session.session_id))
    assert still.session.state == St.SESSION_STATE_INITIALIZED
    # A cancel records the maker's intent; the saga, the only writer of state, ends the session.
    await sessions.CancelSession(session_pb2.CancelSessionRequest(session_id=session.session_id))
    cancelled, _ = await watch_until(sessions, session.session_id, TERMINAL, timeout=30)
    assert cancelled.state == St.SESSION_STATE_CANCELLED


async def test_near_to_base_swap_completes(sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack) -> None:
    """The mirror direction through the same saga: the maker locks on NEAR with the call the session gave."""
    assert stack.evm is not None and stack.near is not None
    balances = Balances(stack)
    maker = stack.near.maker
    before = {
        "near_maker": balances.near_tusd(maker.account_id),
        "near_resolver": balances.near_tusd(stack.near.resolver.account_id),
        "base_receiver": balances.base(stack.evm.receiver.address),
        "base_resolver": balances.base(stack.evm.resolver.address),
    }
    created = await sessions.CreateSession(
        session_pb2.CreateSessionRequest(
            src=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=stack.near.token.account_id),
            dst=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=stack.evm.token),
            src_amount=str(AMOUNT),
            maker=maker.account_id,
            receiver=stack.evm.receiver.address,
        )
    )
    session = created.session
    call = session.maker_action.near_call
    assert call.method == "ft_transfer_call" and call.contract == stack.near.token.account_id
    # The lock's storage fee comes from NEAR the maker prepays on the HTLC: the top-up comes first.
    prepay = session.maker_action.near_prepay
    assert (prepay.contract, prepay.method) == (stack.near.htlc.account_id, "deposit_native")
    await sessions.ExecuteSession(session_pb2.ExecuteSessionRequest(session_id=session.session_id))
    await make_near_maker_calls(stack, session.maker_action)

    done, seen = await watch_until(sessions, session.session_id, TERMINAL)
    assert done.state == St.SESSION_STATE_COMPLETED, (seen, done.error)
    dst_amount = int(done.dst_amount)
    assert dst_amount >= int(done.quote.min_received) > 0
    assert balances.near_tusd(maker.account_id) == before["near_maker"] - AMOUNT
    assert balances.near_tusd(stack.near.resolver.account_id) == before["near_resolver"] + AMOUNT
    assert balances.base(stack.evm.receiver.address) == before["base_receiver"] + dst_amount
    assert balances.base(stack.evm.resolver.address) == before["base_resolver"] - dst_amount


async def test_cancel_before_the_makers_near_lock_ends_cancelled(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack
) -> None:
    assert stack.evm is not None and stack.near is not None and stack.near_devnet is not None
    created = await sessions.CreateSession(
        session_pb2.CreateSessionRequest(
            src=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token="native"),
            dst=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=stack.evm.token),
            src_amount=str(5 * 10**24),
            maker=stack.near.maker.account_id,
            receiver=stack.evm.receiver.address,
        )
    )
    assert created.session.maker_action.near_call.method == "lock_native"
    await sessions.ExecuteSession(session_pb2.ExecuteSessionRequest(session_id=created.session.session_id))
    await sessions.CancelSession(session_pb2.CancelSessionRequest(session_id=created.session.session_id))
    # A lock the maker sent may land until the order deadline, however late the chain is (the HTLC refuses
    # it after): the session waits for that, not for an inclusion bound.
    await watch_until(sessions, created.session.session_id, {St.SESSION_STATE_CANCELLING})
    await stack.near_devnet.afast_forward(delta_seconds=30)  # far past the inclusion bound (8 s)
    await asyncio.sleep(1.5)
    again = await sessions.GetSession(session_pb2.GetSessionRequest(session_id=created.session.session_id))
    assert again.session.state == St.SESSION_STATE_CANCELLING
    near_now = int(stack.near_devnet.block()["header"]["timestamp"]) // 10**9
    await stack.near_devnet.afast_forward(delta_seconds=again.session.order_deadline - near_now + 2)
    done, seen = await watch_until(sessions, created.session.session_id, TERMINAL)
    assert done.state == St.SESSION_STATE_CANCELLED, seen


async def test_a_makers_near_lock_cancelled_before_execute_is_refunded_to_the_maker(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack
) -> None:
    """Regression: the maker locked on NEAR at the id the session announced, then cancelled before
    executing. The session once went straight to `cancelled` and left the lock for the maker to recover
    after the public window; now it refunds the lock as soon as its cancellation window opens."""
    assert stack.evm is not None and stack.near is not None and stack.near_devnet is not None
    balances = Balances(stack)
    maker = stack.near.maker
    before = balances.near_tusd(maker.account_id)
    created = await sessions.CreateSession(
        session_pb2.CreateSessionRequest(
            src=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=stack.near.token.account_id),
            dst=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=stack.evm.token),
            src_amount=str(AMOUNT),
            maker=maker.account_id,
            receiver=stack.evm.receiver.address,
        )
    )
    session = created.session
    await make_near_maker_calls(stack, session.maker_action)
    assert balances.near_tusd(maker.account_id) == before - AMOUNT

    await sessions.CancelSession(session_pb2.CancelSessionRequest(session_id=session.session_id))
    refunding, seen = await watch_until(sessions, session.session_id, {St.SESSION_STATE_REFUNDING} | TERMINAL)
    assert refunding.state == St.SESSION_STATE_REFUNDING, seen
    assert St.SESSION_STATE_CANCELLED not in seen
    await stack.near_devnet.afast_forward(delta_seconds=130)
    done, seen = await watch_until(sessions, session.session_id, TERMINAL)
    assert done.state == St.SESSION_STATE_REFUNDED, seen
    assert balances.near_tusd(maker.account_id) == before
    assert not done.secret


@pytest.mark.parametrize(
    "kill_at",
    [St.SESSION_STATE_SOURCE_LOCKED, St.SESSION_STATE_BOTH_LOCKED, St.SESSION_STATE_REVEALING_SECRET],
    ids=["after-source-lock", "after-both-locked", "after-reveal"],
)
async def test_session_service_killed_mid_swap_resumes_and_completes(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack, kill_at: Any
) -> None:
    """SIGKILL mid-swap: the restarted service reloads the session from Redis, reads both chains and
    finishes; nothing is sent twice (each leg moves its amount exactly once)."""
    assert stack.evm is not None
    balances = Balances(stack)
    before = balances.snapshot()
    session = await create_base_to_near(sessions, stack)
    await sessions.ExecuteSession(
        session_pb2.ExecuteSessionRequest(
            session_id=session.session_id, signature=sign(session, stack.evm.maker.private_key)
        )
    )
    await watch_until(
        sessions, session.session_id, {St.SESSION_STATE_SOURCE_LOCKED, St.SESSION_STATE_DESTINATION_LOCKING}
    )
    service = stack.services["session"]
    service.kill()
    assert service.returncode == -9
    service.start()

    done, seen = await watch_until(sessions, session.session_id, TERMINAL)
    assert done.state == St.SESSION_STATE_COMPLETED, (seen, done.error)
    dst_amount = int(done.dst_amount)
    after = balances.snapshot()
    assert after["base_maker"] == before["base_maker"] - AMOUNT
    assert after["base_resolver"] == before["base_resolver"] + AMOUNT
    assert after["near_receiver"] == before["near_receiver"] + dst_amount
    assert after["near_resolver"] == before["near_resolver"] - dst_amount


async def test_create_is_idempotent_with_a_request_id(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack
) -> None:
    assert stack.evm is not None and stack.near is not None
    request = session_pb2.CreateSessionRequest(
        request_id="req-" + hashlib.sha256(str(asyncio.get_running_loop().time()).encode()).hexdigest()[:16],
        src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=stack.evm.token),
        dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=stack.near.token.account_id),
        src_amount=str(AMOUNT),
        maker=stack.evm.maker.address,
        receiver=stack.near.receiver.account_id,
    )
    first, second = await asyncio.gather(sessions.CreateSession(request), sessions.CreateSession(request))
    assert first.session.session_id == second.session.session_id
    third = await sessions.CreateSession(request)
    assert third.session.session_id == first.session.session_id
    await sessions.CancelSession(session_pb2.CancelSessionRequest(session_id=first.session.session_id))


async def test_tenants_see_only_their_sessions_and_have_their_own_limits_and_request_ids(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack
) -> None:
    """x-tenant (set by the edge): sessions are the tenant's own (another tenant's answer NOT_FOUND, an
    operator and an internal caller see all), request ids are per tenant and a changed request conflicts,
    MAKER_LIMIT counts a maker within the tenant and TENANT_LIMIT the tenant (SESSION_MAX_ACTIVE_PER_TENANT=6)."""
    assert stack.evm is not None and stack.near is not None
    suffix = hashlib.sha256(str(asyncio.get_running_loop().time()).encode()).hexdigest()[:12]
    mine, theirs = (("x-tenant", f"t-{suffix}"),), (("x-tenant", f"u-{suffix}"),)
    operator = (("x-tenant", f"ops-{suffix}"), ("x-tenant-role", "operator"))
    base = session_pb2.CreateSessionRequest(
        src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=stack.evm.token),
        dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=stack.near.token.account_id),
        src_amount=str(AMOUNT),
        maker=stack.evm.maker.address,
        receiver=stack.near.receiver.account_id,
    )
    near = session_pb2.CreateSessionRequest(
        src=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=stack.near.token.account_id),
        dst=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=stack.evm.token),
        src_amount=str(AMOUNT),
        maker=stack.near.maker.account_id,
        receiver=stack.evm.receiver.address,
    )
    created: list[str] = []
    try:
        keyed = session_pb2.CreateSessionRequest()
        keyed.CopyFrom(base)
        keyed.request_id = f"req-{suffix}"
        first = (await sessions.CreateSession(keyed, metadata=mine)).session.session_id
        created.append(first)
        again = (await sessions.CreateSession(keyed, metadata=mine)).session.session_id
        other = (await sessions.CreateSession(keyed, metadata=theirs)).session.session_id
        created.append(other)
        assert again == first != other
        keyed.src_amount = str(AMOUNT * 2)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sessions.CreateSession(keyed, metadata=mine)
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS and error_reason(err.value) == "IDEMPOTENCY_CONFLICT"

        # Visibility.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sessions.GetSession(session_pb2.GetSessionRequest(session_id=first), metadata=theirs)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND and error_reason(err.value) == "SESSION_NOT_FOUND"
        for who in (mine, operator, ()):
            got = await sessions.GetSession(session_pb2.GetSessionRequest(session_id=first), metadata=who)
            assert got.session.session_id == first

        # Limits: 5 open sessions of the BASE maker within the tenant, then one of another maker, then none.
        for _ in range(4):
            created.append((await sessions.CreateSession(base, metadata=mine)).session.session_id)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sessions.CreateSession(base, metadata=mine)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(err.value) == "MAKER_LIMIT"
        created.append((await sessions.CreateSession(near, metadata=mine)).session.session_id)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sessions.CreateSession(near, metadata=mine)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(err.value) == "TENANT_LIMIT"
        # Another tenant is not held up by these, even for the same maker.
        created.append((await sessions.CreateSession(base, metadata=theirs)).session.session_id)

        listed = await sessions.ListSessions(session_pb2.ListSessionsRequest(page_size=100), metadata=mine)
        assert {s.session_id for s in listed.sessions} == set(created) - {other, created[-1]}
        by_maker = await sessions.ListSessions(
            session_pb2.ListSessionsRequest(maker=stack.near.maker.account_id, page_size=100), metadata=mine
        )
        assert [s.session_id for s in by_maker.sessions] == [created[-2]]
        everyone = await sessions.ListSessions(session_pb2.ListSessionsRequest(page_size=100), metadata=operator)
        assert set(created) <= {s.session_id for s in everyone.sessions}
    finally:
        for session_id in created:
            await sessions.CancelSession(session_pb2.CancelSessionRequest(session_id=session_id))


async def test_a_receiver_that_does_not_exist_is_refused_before_the_maker_locks(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack
) -> None:
    """The destination chain service says the receiver does not exist: Create refuses it, naming the
    field, so the maker never locks funds for a destination lock that could not be made."""
    assert stack.evm is not None and stack.near is not None
    balances = Balances(stack)
    before = balances.snapshot()
    listed = await sessions.ListSessions(session_pb2.ListSessionsRequest(page_size=100))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sessions.CreateSession(
            session_pb2.CreateSessionRequest(
                src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=stack.evm.token),
                dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=stack.near.token.account_id),
                src_amount=str(AMOUNT),
                maker=stack.evm.maker.address,
                receiver="nobody-here.test.near",
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.value.details() or "").startswith("receiver: no account nobody-here.test.near")
    after = await sessions.ListSessions(session_pb2.ListSessionsRequest(page_size=100))
    assert [s.session_id for s in after.sessions] == [s.session_id for s in listed.sessions]
    assert balances.snapshot() == before


async def test_both_locked_but_no_time_to_reveal_refunds_both(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack
) -> None:
    """The destination clock runs past the last safe reveal moment while both legs wait: the secret is
    never revealed and both legs are refunded."""
    assert stack.near_devnet is not None and stack.near is not None
    balances = Balances(stack)
    before = balances.snapshot()
    session = await create_base_to_near(sessions, stack)
    await execute_base(sessions, stack, session)
    await watch_until(sessions, session.session_id, {St.SESSION_STATE_BOTH_LOCKED})
    stack.near_devnet.fast_forward(delta_seconds=75)  # dst cancellation is at 80 s, the margin 10 s
    refunding, _ = await watch_until(sessions, session.session_id, {St.SESSION_STATE_REFUNDING})
    assert refunding.error.reason == "NO_TIME_TO_REVEAL"
    increase_time(balances.w3, 200)
    stack.near_devnet.fast_forward(delta_seconds=60)
    done, seen = await watch_until(sessions, session.session_id, TERMINAL)
    assert done.state == St.SESSION_STATE_REFUNDED, seen
    assert not done.secret
    assert (
        stack.near_devnet.view(stack.near.htlc.account_id, "get_lock", {"lock_id": done.dst_lock_id})["secret"] is None
    )
    assert balances.snapshot() == before


async def test_watch_resumes_from_its_cursor_without_missing_an_update(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack
) -> None:
    session = await create_base_to_near(sessions, stack)
    first = sessions.WatchSession(session_pb2.WatchSessionRequest(session_id=session.session_id))
    update = await first.read()
    versions = [update.session.version]
    cursor = update.cursor
    await execute_base(sessions, stack, session)
    update = await first.read()
    versions.append(update.session.version)
    cursor = update.cursor
    first.cancel()  # the client drops mid-swap
    await asyncio.sleep(1.0)
    async for update in sessions.WatchSession(
        session_pb2.WatchSessionRequest(session_id=session.session_id, cursor=cursor)
    ):
        versions.append(update.session.version)
    final = (await sessions.GetSession(session_pb2.GetSessionRequest(session_id=session.session_id))).session
    assert final.state == St.SESSION_STATE_COMPLETED
    assert versions == list(range(versions[0], final.version + 1))

    # Resuming an ended session from its last cursor ends at once, with nothing more to send.
    async def drain() -> list[Any]:
        request = session_pb2.WatchSessionRequest(session_id=session.session_id, cursor=update.cursor)
        return [u async for u in sessions.WatchSession(request)]

    assert await asyncio.wait_for(drain(), 5) == []

    # A cursor Redis would refuse (beyond 64 bits) is the caller's mistake, named, not an internal error.
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        request = session_pb2.WatchSessionRequest(session_id=session.session_id, cursor="99999999999999999999-0")
        await asyncio.wait_for(drain_request(sessions, request), 5)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (bad.value.details() or "").startswith("cursor")


async def drain_request(sessions: session_pb2_grpc.SessionServiceStub, request: Any) -> list[Any]:
    return [u async for u in sessions.WatchSession(request)]


async def test_expired_or_foreign_quotes_are_refused(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack
) -> None:
    assert stack.evm is not None and stack.near is not None
    request = session_pb2.CreateSessionRequest(
        src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=stack.evm.token),
        dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=stack.near.token.account_id),
        src_amount=str(AMOUNT),
        maker=stack.evm.maker.address,
        receiver=stack.near.receiver.account_id,
        quote_id="f" * 32,
    )
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await sessions.CreateSession(request)
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (malformed.value.details() or "").startswith("quote_id: not a signed quote")

    # The session opens a quote_id with the quote service's public key alone: one signed with another key, one
    # with a term changed and one past its valid_until (signed with the stack's own key) are refused.
    async with stack.channel("quote") as channel:
        issued = (
            await quote_pb2_grpc.QuoteServiceStub(channel).GetQuote(
                quote_pb2.GetQuoteRequest(src=request.src, dst=request.dst, src_amount=request.src_amount)
            )
        ).quote.quote_id
    own = QuoteSigner(private_key((Path(stack.options.work_dir) / "quote-signing.key").read_text()))
    terms = quote_pb2.Quote.FromString(QuoteVerifier([own.public_key]).open(issued))
    foreign_seed, _ = new_key_pair()
    altered = quote_pb2.Quote()
    altered.CopyFrom(terms)
    altered.min_received = str(int(terms.min_received) * 2)
    signed = base64.urlsafe_b64decode(issued + "=" * (-len(issued) % 4))
    stale = quote_pb2.Quote()
    stale.CopyFrom(terms)
    stale.valid_until = stale.issued_at - 1
    cases = {
        "foreign": (QuoteSigner(private_key(foreign_seed)).seal(terms.SerializeToString()), "QUOTE_NOT_FOUND"),
        "altered": (
            base64.urlsafe_b64encode(signed[:73] + altered.SerializeToString()).rstrip(b"=").decode(),
            "QUOTE_NOT_FOUND",
        ),
        "expired": (own.seal(stale.SerializeToString()), "QUOTE_EXPIRED"),
    }
    for name, (quote_id, reason) in cases.items():
        request.quote_id = quote_id
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await sessions.CreateSession(request)
        code = grpc.StatusCode.NOT_FOUND if reason == "QUOTE_NOT_FOUND" else grpc.StatusCode.FAILED_PRECONDITION
        assert (refused.value.code(), error_reason(refused.value)) == (code, reason), name
        assert (refused.value.details() or "").startswith("quote_id: "), name
    request.quote_id = issued  # the same quote, unaltered, binds
    bound = (await sessions.CreateSession(request)).session
    assert bound.quote.quote_id == issued
    await sessions.CancelSession(session_pb2.CancelSessionRequest(session_id=bound.session_id))

    # Age the stored quote past its validity, as if the maker had waited too long to sign.
    session = await create_base_to_near(sessions, stack)
    client = redis.Redis.from_url(stack.redis_url)
    key = f"{stack.options.key_prefix}session:{session.session_id}"
    raw = client.get(key)
    assert isinstance(raw, bytes)
    record = json.loads(raw)
    quote = quote_pb2.Quote.FromString(base64.b64decode(record["quote"]))
    quote.valid_until = quote.issued_at - 1
    record["quote"] = base64.b64encode(quote.SerializeToString()).decode()
    client.set(key, json.dumps(record))
    client.close()
    with pytest.raises(grpc.aio.AioRpcError) as expired:
        await execute_base(sessions, stack, session)
    assert expired.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "quote expired" in (expired.value.details() or "")
    after, _ = await watch_until(sessions, session.session_id, TERMINAL, timeout=30)
    assert after.state == St.SESSION_STATE_TIMEOUT and after.error.reason == "QUOTE_EXPIRED"

    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await sessions.CancelSession(session_pb2.CancelSessionRequest(session_id=session.session_id))
    assert ended.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_secrets_stay_sealed_in_redis_and_out_of_every_log(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack
) -> None:
    """Runs last in this module: every log line the stack wrote so far is searched for every secret."""
    session = await create_base_to_near(sessions, stack)
    client = redis.Redis.from_url(stack.redis_url)
    values = [client.dump(k) or b"" for k in client.scan_iter(match=f"{stack.options.key_prefix}*")]
    stored = b"".join(values)
    blobs = re.findall(rb"[0-9a-f]{64}", stored) + [
        # Whole 4-character groups only: other keys hold runs of these characters that are not base64.
        base64.b64decode(b[: len(b) - len(b) % 4])
        for b in re.findall(rb"[A-Za-z0-9+/]{40,}", stored)
    ]
    hashlock = bytes.fromhex(session.hashlock)
    for blob in blobs:
        for candidate in (
            {bytes.fromhex(blob.decode())}
            if len(blob) == 64
            else {blob[i : i + 32] for i in range(max(len(blob) - 31, 0))}
        ):
            assert hashlib.sha256(candidate).digest() != hashlock, "a secret is stored in clear"
    await sessions.CancelSession(session_pb2.CancelSessionRequest(session_id=session.session_id))

    listed = await sessions.ListSessions(session_pb2.ListSessionsRequest(page_size=100))
    secrets = [s.secret for s in listed.sessions if s.secret]
    assert secrets, "earlier tests in this module completed swaps"
    logs = "".join(p.read_text(errors="replace") for p in Path(stack.options.work_dir).glob("*.log"))  # noqa: ASYNC240
    assert len(logs) > 10_000
    for secret in secrets:
        assert secret.lower() not in logs.lower()
        assert base64.b64encode(bytes.fromhex(secret)).decode() not in logs
    client.close()


async def test_second_replica_takes_over_when_the_first_dies(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack
) -> None:
    """Two replicas on one Redis: the one holding the lease drives the swap; SIGKILL it mid-swap and the
    other takes the swap over once the lease expires, and completes it."""
    assert stack.evm is not None
    first = stack.services["session"]
    second = ServiceProcess("session-b", "session.main", dict(first.env), Path(stack.options.work_dir))
    second.env["SESSION_PORT"] = str(second.port)
    second.env["SESSION_METRICS_PORT"] = "0"
    balances = Balances(stack)
    before = balances.snapshot()
    with second:
        session = await create_base_to_near(sessions, stack)
        await execute_base(sessions, stack, session)
        await watch_until(sessions, session.session_id, {St.SESSION_STATE_SOURCE_LOCKED})
        first.kill()
        try:
            async with second.channel(stack.identity_dir("operator")) as channel:
                other = session_pb2_grpc.SessionServiceStub(channel)
                done, seen = await watch_until(other, session.session_id, TERMINAL)
        finally:
            first.start()
    assert done.state == St.SESSION_STATE_COMPLETED, (seen, done.error)
    moved_by_b = [
        line
        for line in second.log_path.read_text().splitlines()
        if session.session_id in line and "session moved" in line
    ]
    assert moved_by_b, "the second replica drove the rest of the swap"
    dst_amount = int(done.dst_amount)
    after = balances.snapshot()
    assert after["base_maker"] == before["base_maker"] - AMOUNT
    assert after["near_receiver"] == before["near_receiver"] + dst_amount
    assert after["near_resolver"] == before["near_resolver"] - dst_amount


async def test_an_ended_session_leaves_no_key_without_an_expiry(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack
) -> None:
    """Every key the service writes either expires or is a live index: an ended session's record and
    history expire after the retention, and it is gone from the live indexes."""
    session = await create_base_to_near(sessions, stack)
    await execute_base(sessions, stack, session)
    done, _ = await watch_until(sessions, session.session_id, TERMINAL)
    assert done.state == St.SESSION_STATE_COMPLETED
    sid, prefix = session.session_id, stack.options.key_prefix
    client = aioredis.Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        for own in (f"session:{sid}", f"updates:{sid}", f"epoch:{sid}"):
            ttl = await client.ttl(prefix + own)
            assert 0 < ttl <= 30 * 24 * 3600, (own, ttl)
        assert not await client.sismember(prefix + "active", sid)

        async def still_indexed() -> list[str]:
            found = []
            for chain in ("base", "near"):
                if sid in (await client.hgetall(f"{prefix}locks:{chain}")).values():
                    found.append(f"locks:{chain}")
                if await client.zscore(f"{prefix}deadlines:{chain}", sid) is not None:
                    found.append(f"deadlines:{chain}")
            return found

        # The saga drops its locks and deadlines right after the move that ended it.
        for _ in range(50):
            if not (indexed := await still_indexed()):
                break
            await asyncio.sleep(0.1)
        assert not indexed, indexed
        ongoing = set(await client.smembers(prefix + "active"))
        live_indexes = ("active", "tenant-active:", "locks:", "deadlines:")
        async for full in client.scan_iter(match=f"{prefix}*", count=1000):
            key = full.removeprefix(prefix)
            if key.startswith(live_indexes) or key.split(":", 1)[-1] in ongoing:
                continue  # a live index, or a session still running (earlier tests' refunds)
            # -2: the key went between the scan and this read (a lease released, a short-lived key expiring).
            assert await client.ttl(full) in range(1, 10**9) or await client.exists(full) == 0, f"{key} never expires"
    finally:
        await client.aclose()
