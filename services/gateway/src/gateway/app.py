"""The FastAPI application: routes, WebSocket, health, metrics, docs, the web page, and the one error format."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Match
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from gateway import schemas
from gateway.backends import Backends
from gateway.config import GatewaySettings
from gateway.errors import ApiError, from_http_status, from_rpc_error, from_validation_errors, invalid_request
from gateway.fanout import Hub
from gateway.metrics import Metrics
from gateway.middleware import (
    API_KEY,
    REQUEST_ID,
    ApiGuard,
    BodyLimit,
    RequestContext,
    authenticate,
    client_address,
    origins,
)
from gateway.routes import api_router
from gateway.ws import Connection

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
# Envoy's ext_authz HTTP service: the original request's path follows this prefix.
AUTHZ_PATH = "/internal/authz/check"
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_app(settings: GatewaySettings) -> FastAPI:
    metrics = Metrics()
    holder: dict[str, Backends] = {}
    hubs: dict[str, Hub] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backends = Backends(settings)
        hub = Hub(backends.sessions, metrics)
        holder["backends"] = backends
        hubs["ws"] = hub
        app.state.backends = backends
        try:
            yield
        finally:
            holder.clear()
            hubs.clear()
            app.state.backends = None
            await hub.close()
            await backends.close()

    app = FastAPI(
        title="Swap gateway",
        version="1",
        description="Trustless atomic swaps between BASE and NEAR: REST under /api/v1 and a WebSocket at /ws.",
        lifespan=lifespan,
        redoc_url=None,
        docs_url=None,  # served below from the pinned swagger-ui-bundle: no CDN, works offline
    )
    app.state.backends = None
    app.state.metrics = metrics
    # add_middleware wraps: the last added is the outermost layer.
    app.add_middleware(ApiGuard, backends=lambda: holder.get("backends"), metrics=metrics)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=[API_KEY, REQUEST_ID, "Content-Type"],
        expose_headers=[REQUEST_ID, "Retry-After"],
        max_age=600,
    )
    api = api_router()
    # FastAPI keeps included routers as one opaque entry; metrics and the 405 check need each API route.
    page_chains = settings.page_chains()
    chain_origins = origins([str(chain.get("rpc_url", "")) for chain in page_chains.values()])
    app.add_middleware(
        RequestContext,
        metrics=metrics,
        routes=lambda: [*api.routes, *_plain_routes(app)],
        chain_origins=chain_origins,
    )

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, err: ApiError) -> JSONResponse:
        return err.response()

    @app.exception_handler(grpc.aio.AioRpcError)
    async def on_rpc_error(request: Request, err: grpc.aio.AioRpcError) -> JSONResponse:
        return from_rpc_error(err, "upstream").response()

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        errors = err.errors()
        if errors and tuple(errors[0].get("loc", ())) == ("body",) and isinstance(errors[0].get("input"), bytes):
            # FastAPI hands over the raw bytes when the body is not declared JSON.
            return invalid_request("the body must be JSON, sent with Content-Type: application/json").response()
        return from_validation_errors(errors).response()

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return from_http_status(err.status_code, str(err.detail), err.headers).response()

    app.include_router(api)

    @app.api_route("/api/{rest:path}", methods=_METHODS, include_in_schema=False)
    async def api_fallback(request: Request, rest: str) -> JSONResponse:
        """Unknown API paths are 404 and known paths with another method 405, both in the error format."""
        allowed = sorted(
            {
                method
                for route in api.routes
                if route.matches(request.scope)[0] is Match.PARTIAL
                for method in (getattr(route, "methods", None) or ())
            }
        )
        if allowed:
            raise ApiError(
                405,
                "UNIMPLEMENTED",
                "METHOD_NOT_ALLOWED",
                f"{request.method} is not allowed here",
                headers={"Allow": ", ".join(allowed)},
            )
        raise ApiError(404, "NOT_FOUND", "ROUTE_NOT_FOUND", f"no route {request.url.path}")

    @app.api_route(AUTHZ_PATH + "{original:path}", methods=_METHODS, include_in_schema=False)
    async def authz_check(request: Request, original: str) -> Response:
        """Envoy's ext_authz (HTTP): the headers of a gRPC / gRPC-Web / transcoded request, under this prefix.
        200 names the tenant in x-tenant (Envoy copies it upstream, over whatever the client sent); anything
        else is the error Envoy answers the client with."""
        backends = holder.get("backends")
        if backends is None:
            return from_http_status(503, "starting up").response()
        key = request.headers.get(API_KEY)
        if key is None and original.split("?", 1)[0] == "/ws":
            key = request.query_params.get("api_key")
        found = await authenticate(backends, key, request.method, client_address(request.scope))
        if isinstance(found, ApiError):
            if found.status == 429:
                metrics.rate_limited.inc()
            return found.response()
        return Response(status_code=200, headers=dict(found.metadata()))

    @app.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        backends, hub = holder.get("backends"), hubs.get("ws")
        if backends is None or hub is None:
            await ws.close(code=1013)
            return
        await Connection(ws, backends, hub, metrics).run()

    @app.get(
        "/health",
        response_model=schemas.Health,
        summary="Liveness and dependencies",
        responses={503: {"model": schemas.Health, "description": "The session service or Redis is down."}},
    )
    async def health(response: Response) -> schemas.Health:
        backends = holder.get("backends")
        if backends is None:
            response.status_code = 503
            return schemas.Health(status="down", checks={})
        report = await backends.health.report()
        if report.status == "down":
            response.status_code = 503
        return schemas.Health(
            status=report.status,
            checks={
                name: schemas.HealthCheck(state=c.state, latency_ms=c.latency_ms, detail=c.detail)
                for name, c in report.checks.items()
            },
        )

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text."}},
    )
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    # Swagger UI's own files, from the pinned swagger-ui-bundle package.
    app.mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title}: API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )

    @app.get("/chains.json", include_in_schema=False)
    async def chains() -> JSONResponse:
        """Where the page reads destination locks itself (secret mode maker); {} offers service mode only."""
        return JSONResponse(page_chains)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        index = STATIC_DIR / "index.html"
        if not index.is_file():
            raise ApiError(404, "NOT_FOUND", "ROUTE_NOT_FOUND", "the web page is not installed")
        return FileResponse(index)

    # The page and its assets (static/index.html refers to them as static/...).
    app.mount("/static", StaticFiles(directory=STATIC_DIR, html=True), name="static")
    return app


def _plain_routes(app: FastAPI) -> list[BaseRoute]:
    return [r for r in app.router.routes if hasattr(r, "path")]


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with validation failures as the gateway answers them (400 ErrorBody, not 422)."""
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            operation.get("responses", {}).pop("422", None)
    schemas_ = doc.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas_.pop(name, None)
    return doc
