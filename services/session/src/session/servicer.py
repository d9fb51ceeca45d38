"""The swap.session.v1.SessionService RPC edge: protobuf in and out, domain errors mapped by the
shared interceptor."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from swap.session.v1 import session_pb2, session_pb2_grpc

from session.service import INTERNAL, Caller, Sessions
from session.views import to_pb
from session.watchers import Watchers, client_id

# Set by the edge (the gateway, Envoy's ext_authz) to the caller it authenticated; streams without it count
# per host, and calls without it come from inside (docs/api.md "Tenancy"). The role says whether the tenant
# is an operator, who sees every tenant's sessions.
TENANT_HEADER = "x-tenant"
TENANT_ROLE_HEADER = "x-tenant-role"
OPERATOR_ROLE = "operator"


class SessionServicer(session_pb2_grpc.SessionServiceServicer):
    def __init__(self, sessions: Sessions, watchers: Watchers) -> None:
        self._sessions = sessions
        self._watchers = watchers

    async def CreateSession(
        self, request: session_pb2.CreateSessionRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.CreateSessionResponse:
        return session_pb2.CreateSessionResponse(session=to_pb(await self._sessions.create(request, _caller(context))))

    async def GetSession(
        self, request: session_pb2.GetSessionRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.GetSessionResponse:
        record = await self._sessions.get(request.session_id, _caller(context))
        return session_pb2.GetSessionResponse(session=to_pb(record))

    async def ListSessions(
        self, request: session_pb2.ListSessionsRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.ListSessionsResponse:
        records, token = await self._sessions.list(
            request.maker, request.page_size, request.page_token, _caller(context)
        )
        return session_pb2.ListSessionsResponse(sessions=[to_pb(r) for r in records], next_page_token=token)

    async def ExecuteSession(
        self, request: session_pb2.ExecuteSessionRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.ExecuteSessionResponse:
        record = await self._sessions.execute(
            request.session_id, request.request_id, request.signature, _caller(context)
        )
        return session_pb2.ExecuteSessionResponse(session=to_pb(record))

    async def CancelSession(
        self, request: session_pb2.CancelSessionRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.CancelSessionResponse:
        record = await self._sessions.cancel(request.session_id, _caller(context))
        return session_pb2.CancelSessionResponse(session=to_pb(record))

    async def RevealSecret(
        self, request: session_pb2.RevealSecretRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.RevealSecretResponse:
        record = await self._sessions.reveal(request.session_id, request.secret, _caller(context))
        return session_pb2.RevealSecretResponse(session=to_pb(record))

    async def WatchSession(
        self, request: session_pb2.WatchSessionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[session_pb2.WatchSessionResponse]:
        # The slot goes back when this generator ends: the last update, an error, or the client cancelling.
        with self._watchers.slot(_client(context)):
            async for cursor, payload in self._sessions.watch(
                request.session_id, request.cursor, self._watchers, _caller(context)
            ):
                yield session_pb2.WatchSessionResponse(cursor=cursor, session=session_pb2.Session.FromString(payload))


def _metadata(context: grpc.aio.ServicerContext, name: str) -> str | None:
    found = None
    for key, value in context.invocation_metadata() or ():
        if key == name:
            found = value.decode() if isinstance(value, bytes) else value
    return found


def _caller(context: grpc.aio.ServicerContext) -> Caller:
    tenant = _metadata(context, TENANT_HEADER)
    if not tenant:
        return INTERNAL
    return Caller(tenant=tenant, operator=_metadata(context, TENANT_ROLE_HEADER) == OPERATOR_ROLE)


def _client(context: grpc.aio.ServicerContext) -> str:
    return client_id(_metadata(context, TENANT_HEADER), context.peer())
