"""gRPC statuses (with their google.rpc details) and request checks -> the gateway's HTTP errors."""

from __future__ import annotations

import grpc
import pytest
from gateway.errors import HTTP_STATUS, dotted, from_rpc_error, from_validation_errors
from grpc_status import rpc_status
from swap_runtime.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)


def rpc_error(err: DomainError | None, code: grpc.StatusCode, details: str = "boom") -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata()
    if err is not None:
        status = rpc_status.to_status(err.to_status())
        trailing = grpc.aio.Metadata(*status.trailing_metadata)
        code, details = status.code, status.details
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details)


def test_the_table_of_docs_api_md() -> None:
    assert {code.name: status for code, status in HTTP_STATUS.items()} == {
        "INVALID_ARGUMENT": 400,
        "FAILED_PRECONDITION": 400,
        "NOT_FOUND": 404,
        "ALREADY_EXISTS": 409,
        "ABORTED": 409,
        "RESOURCE_EXHAUSTED": 429,
        "UNAVAILABLE": 503,
        "DEADLINE_EXCEEDED": 504,
    }


def test_invalid_argument_names_its_field() -> None:
    err = from_rpc_error(
        rpc_error(InvalidArgument("src.chain", "must be CHAIN_BASE or CHAIN_NEAR"), grpc.StatusCode.OK), "session"
    )
    assert err.status == 400
    assert err.body() == {
        "error": {
            "code": "INVALID_ARGUMENT",
            "reason": "INVALID_ARGUMENT",
            "message": "src.chain: must be CHAIN_BASE or CHAIN_NEAR",
            "field": "src.chain",
        }
    }


@pytest.mark.parametrize(
    ("domain", "status", "code", "reason"),
    [
        (
            FailedPrecondition("the session is completed", reason="SESSION_ENDED"),
            400,
            "FAILED_PRECONDITION",
            "SESSION_ENDED",
        ),
        (NotFound("no session x", reason="SESSION_NOT_FOUND"), 404, "NOT_FOUND", "SESSION_NOT_FOUND"),
        (Unavailable("busy; retry", reason="BUSY"), 503, "UNAVAILABLE", "BUSY"),
        (
            ResourceExhausted("too many WatchSession streams; retry later", reason="TOO_MANY_WATCHERS"),
            429,
            "RESOURCE_EXHAUSTED",
            "TOO_MANY_WATCHERS",
        ),
    ],
)
def test_reason_comes_from_error_info(domain: DomainError, status: int, code: str, reason: str) -> None:
    err = from_rpc_error(rpc_error(domain, grpc.StatusCode.OK), "session")
    assert (err.status, err.code, err.reason, err.message, err.field) == (status, code, reason, domain.message, None)


@pytest.mark.parametrize(
    ("code", "status"),
    [(grpc.StatusCode.ALREADY_EXISTS, 409), (grpc.StatusCode.ABORTED, 409), (grpc.StatusCode.RESOURCE_EXHAUSTED, 429)],
)
def test_plain_statuses_map_by_code(code: grpc.StatusCode, status: int) -> None:
    err = from_rpc_error(rpc_error(None, code, "the details"), "quote")
    assert (err.status, err.code, err.reason, err.message) == (status, code.name, code.name, "the details")


def test_transport_failures_do_not_leak_addresses() -> None:
    unreachable = rpc_error(
        None, grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; ipv4:10.1.2.3:50054"
    )
    err = from_rpc_error(unreachable, "session")
    assert err.status == 503 and "10.1.2.3" not in err.message and "session" in err.message
    slow = from_rpc_error(rpc_error(None, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"), "quote")
    assert slow.status == 504 and slow.code == "DEADLINE_EXCEEDED" and "quote" in slow.message


@pytest.mark.parametrize("code", [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS])
def test_anything_else_is_500_without_detail(code: grpc.StatusCode) -> None:
    err = from_rpc_error(rpc_error(None, code, "Traceback: secret calldata 0xdeadbeef"), "session")
    assert err.status == 500 and err.code == "INTERNAL" and err.reason == "INTERNAL"
    assert "deadbeef" not in err.message and err.message.startswith("internal error")


def test_dotted_paths() -> None:
    assert dotted(("body", "src", "chain")) == "src.chain"
    assert dotted(("query", "page_size")) == "page_size"
    assert dotted(("body", "args", 0, "session_id")) == "args.0.session_id"
    assert dotted(("body",)) is None


def test_validation_errors_name_the_first_field() -> None:
    err = from_validation_errors(
        [
            {"type": "extra_forbidden", "loc": ("body", "src", "x"), "msg": "Extra inputs are not permitted"},
            {"type": "missing", "loc": ("body", "dst"), "msg": "Field required"},
        ]
    )
    assert (err.status, err.code, err.reason, err.field) == (400, "INVALID_ARGUMENT", "INVALID_REQUEST", "src.x")
    assert err.message == "src.x: unknown field"
    malformed = from_validation_errors(
        [{"type": "json_invalid", "loc": ("body", 3), "msg": "JSON decode error", "ctx": {"error": "Expecting value"}}]
    )
    assert malformed.field is None and malformed.message == "malformed JSON: Expecting value"
    missing_body = from_validation_errors([{"type": "missing", "loc": ("body",), "msg": "Field required"}])
    assert missing_body.field is None and "required" in missing_body.message
