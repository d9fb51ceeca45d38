"""Mutual TLS inside the stack: every gRPC service asks for a certificate from the stack's CA, and the chain
services, which lock and withdraw the resolver's funds, answer only the session service's."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from swap.chain.v1 import chain_pb2, chain_pb2_grpc
from swap.quote.v1 import quote_pb2, quote_pb2_grpc
from swap.session.v1 import session_pb2, session_pb2_grpc
from swap_devnet.pki import Authority
from swap_devnet.stack import LocalStack
from swap_runtime.tls import Tls

from tests.integration.rich_status import error_reason

CHAINS = ("chain-base", "chain-near")
SERVICES = ("session", "quote", *CHAINS)
NOT_SESSION = ("operator", "gateway", "envoy", "quote", "chain-base")


async def chain_info(stack: LocalStack, chain: str, identity: str) -> chain_pb2.GetChainInfoResponse:
    async with stack.channel(chain, identity) as channel:
        reply: chain_pb2.GetChainInfoResponse = await chain_pb2_grpc.ChainServiceStub(channel).GetChainInfo(
            chain_pb2.GetChainInfoRequest(), timeout=5
        )
        return reply


async def health(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return int(reply.status)


@pytest.mark.parametrize("chain", CHAINS)
async def test_chain_service_answers_the_session_service(stack: LocalStack, chain: str) -> None:
    reply = await chain_info(stack, chain, "session")
    assert reply.confirmations >= 1


@pytest.mark.parametrize("identity", NOT_SESSION)
@pytest.mark.parametrize("chain", CHAINS)
async def test_chain_service_refuses_every_other_certificate(stack: LocalStack, chain: str, identity: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await chain_info(stack, chain, identity)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_reason(refused.value) == "CALLER_NOT_ALLOWED"
    assert identity in (refused.value.details() or "")


@pytest.mark.parametrize("chain", CHAINS)
async def test_chain_service_refuses_a_stream_to_another_certificate(stack: LocalStack, chain: str) -> None:
    """WatchEvents tells what the resolver is doing: refused like the unary calls."""
    async with stack.channel(chain, "gateway") as channel:
        call = chain_pb2_grpc.ChainServiceStub(channel).WatchEvents(chain_pb2.WatchEventsRequest(), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in call:
                pass
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("name", SERVICES)
async def test_health_is_open_to_any_certificate_of_the_ca(stack: LocalStack, name: str) -> None:
    async with stack.channel(name, "gateway") as channel:
        assert await health(channel) == health_pb2.HealthCheckResponse.SERVING


async def test_session_refuses_the_services_it_calls(stack: LocalStack) -> None:
    """Only the edge (which sets the tenant) and the operator's tools call the session service."""
    async with stack.channel("session", "chain-base") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await session_pb2_grpc.SessionServiceStub(channel).ListSessions(
                session_pb2.ListSessionsRequest(), timeout=5
            )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_session_and_quote_answer_the_edge_identities(stack: LocalStack) -> None:
    for identity in ("gateway", "envoy", "operator"):
        async with stack.channel("session", identity) as channel:
            reply = await session_pb2_grpc.SessionServiceStub(channel).ListSessions(
                session_pb2.ListSessionsRequest(page_size=1), timeout=5
            )
            assert len(reply.sessions) <= 1
        async with stack.channel("quote", identity) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await quote_pb2_grpc.QuoteServiceStub(channel).LookupQuote(
                    quote_pb2.LookupQuoteRequest(quote_id="0" * 32), timeout=5
                )
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def _ca_only(stack: LocalStack) -> grpc.ChannelCredentials:
    tls = stack.identity_dir("operator")
    assert tls is not None
    return grpc.ssl_channel_credentials(root_certificates=(tls / "ca.crt").read_bytes())


@pytest.mark.parametrize("name", SERVICES)
async def test_a_caller_without_a_certificate_is_refused_at_the_handshake(stack: LocalStack, name: str) -> None:
    async with grpc.aio.secure_channel(stack.services[name].address, _ca_only(stack)) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("name", SERVICES)
async def test_plaintext_is_refused(stack: LocalStack, name: str) -> None:
    async with grpc.aio.insecure_channel(stack.services[name].address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("chain", CHAINS)
async def test_a_session_certificate_from_another_ca_is_refused(stack: LocalStack, chain: str, tmp_path: Path) -> None:
    """Someone who names himself "session" with a CA of his own gets no further than the handshake."""
    forged = Authority.create().issue("session", tmp_path / "forged")
    real_ca = stack.identity_dir("session")
    assert real_ca is not None
    # He trusts the stack's CA (so his side of the handshake would go through) but shows his own certificate.
    forged.ca.write_bytes((real_ca / "ca.crt").read_bytes())
    async with grpc.aio.secure_channel(
        stack.services[chain].address, Tls.load(forged.directory).channel_credentials()
    ) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await chain_pb2_grpc.ChainServiceStub(channel).GetChainInfo(chain_pb2.GetChainInfoRequest(), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
