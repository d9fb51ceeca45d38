"""The one mapping of failures to HTTP: gRPC statuses of the services (with their google.rpc details),
the gateway's own request checks, and the error body every failure answers with."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from starlette.responses import JSONResponse
from swap_runtime import context

log = logging.getLogger(__name__)

# docs/api.md "Errors": anything not listed is a 500.
HTTP_STATUS: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}

# Codes whose transport-level message (no rich details attached) names hosts and ports, not the problem.
_TRANSPORT_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}

INVALID_REQUEST = "INVALID_REQUEST"


class ApiError(Exception):
    """A failure answered with `{"error": {...}}` and `status`."""

    def __init__(
        self,
        status: int,
        code: str,
        reason: str,
        message: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.reason = reason
        self.message = message
        self.field = field
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.reason, self.message, self.field)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def error_body(code: str, reason: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "reason": reason, "message": message, "field": field}}


def invalid_request(message: str, field: str | None = None) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", INVALID_REQUEST, message, field)


def internal_error() -> ApiError:
    rid = context.request_id.get() or "-"
    return ApiError(500, "INTERNAL", "INTERNAL", f"internal error (request {rid})")


def _rich_status(err: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    try:
        status: status_pb2.Status | None = rpc_status.from_call(err)
    except ValueError:
        # A status whose details contradict its code is not to be trusted for a field or reason.
        return None
    return status


def from_rpc_error(err: grpc.aio.AioRpcError, service: str) -> ApiError:
    """The HTTP error for a failed call to `service`, with field / reason from the attached details."""
    code = err.code()
    http = HTTP_STATUS.get(code)
    status = _rich_status(err)
    if http is None:
        log.error("upstream failed", extra={"upstream": service, "code": code.name, "error": err.details()})
        return internal_error()
    reason, field = code.name, None
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            if bad.field_violations and field is None:
                field = bad.field_violations[0].field or None
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason or reason
            field = field or info.metadata.get("field") or None
    message = err.details() or code.name.lower()
    if status is None and code in _TRANSPORT_CODES:
        log.warning("upstream unreachable", extra={"upstream": service, "code": code.name, "error": err.details()})
        message = f"the {service} service is unavailable; retry later"
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            message = f"the {service} service did not answer in time; retry later"
    return ApiError(http, code.name, reason, message, field)


# HTTP statuses the gateway answers by itself (routing, methods) in the gRPC vocabulary of the body.
_HTTP_CODES: Mapping[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", INVALID_REQUEST),
    401: ("UNAUTHENTICATED", "API_KEY_INVALID"),
    403: ("PERMISSION_DENIED", "FORBIDDEN"),
    404: ("NOT_FOUND", "ROUTE_NOT_FOUND"),
    405: ("UNIMPLEMENTED", "METHOD_NOT_ALLOWED"),
    406: ("INVALID_ARGUMENT", "NOT_ACCEPTABLE"),
    413: ("INVALID_ARGUMENT", "BODY_TOO_LARGE"),
    415: ("INVALID_ARGUMENT", "UNSUPPORTED_MEDIA_TYPE"),
    429: ("RESOURCE_EXHAUSTED", "RATE_LIMITED"),
    503: ("UNAVAILABLE", "UNAVAILABLE"),
}


def from_http_status(status: int, message: str, headers: Mapping[str, str] | None = None) -> ApiError:
    code, reason = _HTTP_CODES.get(status, ("INTERNAL", "INTERNAL") if status >= 500 else ("UNKNOWN", "HTTP_ERROR"))
    return ApiError(status, code, reason, message, headers=headers)


def dotted(loc: Sequence[int | str]) -> str | None:
    """`("body", "src", "chain")` -> `"src.chain"`: the field path as the request spells it."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or None


def from_validation_errors(errors: Sequence[Mapping[str, Any]]) -> ApiError:
    """The first offending field of a request that failed the gateway's own checks."""
    if not errors:
        return invalid_request("invalid request")
    first = errors[0]
    kind = str(first.get("type", ""))
    loc: Sequence[int | str] = first.get("loc", ())
    if kind == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        return invalid_request(f"malformed JSON: {detail}" if detail else "malformed JSON")
    field = dotted(loc)
    msg = str(first.get("msg", "invalid"))
    if kind == "extra_forbidden":
        msg = "unknown field"
    elif kind == "missing" and field is None:
        return invalid_request("a JSON object body is required")
    elif field is None and kind in {"model_attributes_type", "dict_type", "model_type"}:
        return invalid_request("the body must be a JSON object")
    return invalid_request(f"{field}: {msg}" if field else msg, field)
