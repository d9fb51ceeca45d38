"""REST routes of docs/api.md under /api/v1: JSON in, protobuf to the services, JSON out.

Replies are rendered from the protobuf message and encoded once (views.JsonBody); `response_model` only
documents them. Dependencies are coroutines: FastAPI runs a plain function in a worker thread per request."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response, Security
from fastapi.security import APIKeyHeader
from swap.quote.v1 import quote_pb2
from swap.session.v1 import session_pb2
from swap_runtime import context

from gateway import schemas, views
from gateway.auth import Identity
from gateway.backends import Backends
from gateway.errors import ApiError, invalid_request
from gateway.views import JsonBody

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

_ERROR = {"model": schemas.ErrorBody}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {**_ERROR, "description": "Invalid request (field named) or failed precondition (reason named)."},
    401: {**_ERROR, "description": "Missing or unknown API key."},
    404: {**_ERROR, "description": "No such session (or another tenant's) / quote / route."},
    409: {**_ERROR, "description": "Conflict: IDEMPOTENCY_CONFLICT (a request id reused with another body)."},
    413: {**_ERROR, "description": "Body over the size limit."},
    429: {**_ERROR, "description": "Rate limit of the tenant or client address (Retry-After: seconds)."},
    500: {**_ERROR, "description": "Internal error (no detail)."},
    503: {**_ERROR, "description": "A service is unavailable."},
    504: {**_ERROR, "description": "A service did not answer in time."},
}

# Declares the key in the OpenAPI document; middleware.ApiGuard enforces it before any body is parsed.
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key of the gateway.")


async def backends(request: Request) -> Backends:
    found: Backends | None = getattr(request.app.state, "backends", None)
    if found is None:
        raise ApiError(503, "UNAVAILABLE", "UNAVAILABLE", "starting up")
    return found


async def caller(request: Request) -> str:
    """The caller's tenant (set by the guard)."""
    identity: Identity | None = request.scope.get("state", {}).get("identity")
    if identity is None:
        raise ApiError(401, "UNAUTHENTICATED", "API_KEY_MISSING", "a valid API key is required in X-API-Key")
    return identity.tenant


async def idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=128,
            description="Alias of the body's request_id (the same value, or the body's left out).",
        ),
    ] = None,
) -> str:
    return idempotency_key or ""


def request_id_of(body_id: str, header_id: str) -> str:
    """The request id of the body, or of the Idempotency-Key header; both given, they must agree."""
    if body_id and header_id and body_id != header_id:
        raise invalid_request("request_id differs from the Idempotency-Key header", "request_id")
    return body_id or header_id


BackendsDep = Annotated[Backends, Depends(backends)]
CallerDep = Annotated[str, Depends(caller)]
IdempotencyKeyDep = Annotated[str, Depends(idempotency_key)]
SessionId = Annotated[str, Path(pattern=schemas.SESSION_ID_PATTERN, description="The session's id.")]


def scoped_request_id(tenant: str, request_id: str) -> str:
    """Request ids are per tenant, so one caller can never replay into another caller's session."""
    return f"{tenant}:{request_id}" if request_id else ""


def bind_session(session_id: str) -> None:
    context.session_id.set(session_id)


def api_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX, dependencies=[Security(api_key_scheme)], responses=ERROR_RESPONSES)

    @router.get("/assets", response_model=schemas.AssetList, summary="The tokens that can be swapped")
    async def list_assets(b: BackendsDep) -> Response:
        reply = await b.call("quote", b.quotes.ListAssets, quote_pb2.ListAssetsRequest())
        return JsonBody(views.asset_list(reply.assets))

    @router.post("/quotes", response_model=schemas.Quote, summary="Price a swap")
    async def create_quote(body: schemas.QuoteRequest, b: BackendsDep) -> Response:
        request = quote_pb2.GetQuoteRequest(
            src=views.asset_pb(body.src),
            dst=views.asset_pb(body.dst),
            src_amount=body.src_amount,
            slippage_bps=body.slippage_bps,
            urgency=body.urgency,
        )
        reply = await b.call("quote", b.quotes.GetQuote, request)
        return JsonBody(views.quote(reply.quote))

    @router.post(
        "/sessions",
        response_model=schemas.Session,
        status_code=201,
        summary="Create a session",
        responses={200: {"model": schemas.Session, "description": "The session of an earlier request_id."}},
    )
    async def create_session(
        body: schemas.CreateSessionRequest,
        b: BackendsDep,
        who: CallerDep,
        header_id: IdempotencyKeyDep,
    ) -> Response:
        scoped = scoped_request_id(who, request_id_of(body.request_id, header_id))
        fresh = await b.first_create(scoped) if scoped else True
        request = session_pb2.CreateSessionRequest(
            request_id=scoped,
            src=views.asset_pb(body.src),
            dst=views.asset_pb(body.dst),
            src_amount=body.src_amount,
            maker=body.maker,
            receiver=body.receiver,
            slippage_bps=body.slippage_bps,
            quote_id=body.quote_id,
            secret_mode=views.SECRET_MODES[body.secret_mode],
            hashlock=body.hashlock.removeprefix("0x").lower(),
        )
        try:
            reply = await b.call("session", b.sessions.CreateSession, request)
        except ApiError:
            if scoped and fresh:
                await b.forget_create(scoped)
            raise
        return JsonBody(views.session(reply.session), status_code=201 if fresh else 200)

    @router.get("/sessions", response_model=schemas.SessionList, summary="List sessions, newest first")
    async def list_sessions(query: Annotated[schemas.ListSessionsQuery, Query()], b: BackendsDep) -> Response:
        request = session_pb2.ListSessionsRequest(
            maker=query.maker, page_size=query.page_size, page_token=query.page_token
        )
        reply = await b.call("session", b.sessions.ListSessions, request)
        return JsonBody(views.session_list(reply.sessions, reply.next_page_token))

    @router.get("/sessions/{session_id}", response_model=schemas.Session, summary="Get a session")
    async def get_session(session_id: SessionId, b: BackendsDep) -> Response:
        bind_session(session_id)
        return JsonBody(views.session(await b.get_session(session_id)))

    @router.post("/sessions/{session_id}/execute", response_model=schemas.Session, summary="Start the swap")
    async def execute_session(
        session_id: SessionId,
        b: BackendsDep,
        who: CallerDep,
        header_id: IdempotencyKeyDep,
        body: Annotated[schemas.ExecuteSessionRequest | None, Body()] = None,
    ) -> Response:
        bind_session(session_id)
        body = body or schemas.ExecuteSessionRequest()
        request = session_pb2.ExecuteSessionRequest(
            session_id=session_id,
            request_id=scoped_request_id(who, request_id_of(body.request_id, header_id)),
            signature=bytes.fromhex(body.signature.removeprefix("0x")),
        )
        reply = await b.call("session", b.sessions.ExecuteSession, request)
        return JsonBody(views.session(reply.session))

    @router.post("/sessions/{session_id}/cancel", response_model=schemas.Session, summary="Cancel (or refund)")
    async def cancel_session(
        session_id: SessionId,
        b: BackendsDep,
        body: Annotated[schemas.EmptyRequest | None, Body()] = None,
    ) -> Response:
        bind_session(session_id)
        request = session_pb2.CancelSessionRequest(session_id=session_id)
        reply = await b.call("session", b.sessions.CancelSession, request)
        return JsonBody(views.session(reply.session))

    @router.post(
        "/sessions/{session_id}/secret",
        response_model=schemas.Session,
        summary="Release the maker's secret (secret_mode maker, state awaiting_secret)",
    )
    async def reveal_secret(session_id: SessionId, body: schemas.RevealSecretRequest, b: BackendsDep) -> Response:
        bind_session(session_id)
        request = session_pb2.RevealSecretRequest(session_id=session_id, secret=body.secret)
        reply = await b.call("session", b.sessions.RevealSecret, request)
        return JsonBody(views.session(reply.session))

    return router
