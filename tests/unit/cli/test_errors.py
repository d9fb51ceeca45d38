"""The gateway's error body as one readable line, and the exit code each failure maps to."""

from __future__ import annotations

import json

from swapctl.errors import ExitCode, api_error


def body(code: str, reason: str, message: str, field: str | None = None) -> bytes:
    return json.dumps({"error": {"code": code, "reason": reason, "message": message, "field": field}}).encode()


def test_field_is_named_with_its_argument() -> None:
    e = api_error(
        400,
        body("INVALID_ARGUMENT", "INVALID_REQUEST", "src_amount: must be\n a decimal string", "src_amount"),
        field_hints={"src_amount": "AMOUNT"},
    )
    assert e.exit_code is ExitCode.REJECTED
    assert e.field == "src_amount"
    assert e.message == (
        'field "src_amount" (AMOUNT): must be a decimal string [HTTP 400 INVALID_ARGUMENT INVALID_REQUEST]'
    )
    assert "\n" not in e.message


def test_nested_field_falls_back_to_its_object() -> None:
    e = api_error(
        400, body("INVALID_ARGUMENT", "INVALID_REQUEST", "unknown chain", "src.chain"), field_hints={"src": "SRC"}
    )
    assert e.message.startswith('field "src.chain" (SRC): unknown chain')


def test_precondition_without_field() -> None:
    e = api_error(400, body("FAILED_PRECONDITION", "AMOUNT_TOO_SMALL", "fees leave nothing to receive"))
    assert e.message == "fees leave nothing to receive [HTTP 400 FAILED_PRECONDITION AMOUNT_TOO_SMALL]"
    assert e.exit_code is ExitCode.REJECTED


def test_reason_equal_to_code_is_said_once() -> None:
    e = api_error(503, body("UNAVAILABLE", "UNAVAILABLE", "the session service is unavailable; retry later"))
    assert e.message.endswith("[HTTP 503 UNAVAILABLE]")
    assert e.exit_code is ExitCode.SERVER


def test_rate_limit_says_when_to_retry() -> None:
    e = api_error(429, body("RESOURCE_EXHAUSTED", "RATE_LIMITED", "too many requests"), retry_after="3")
    assert e.message.endswith("; retry after 3 s")
    assert e.exit_code is ExitCode.REJECTED


def test_unauthenticated_points_at_the_key() -> None:
    e = api_error(401, body("UNAUTHENTICATED", "API_KEY_INVALID", "missing or unknown API key"))
    assert e.exit_code is ExitCode.AUTH
    assert "SWAPCTL_API_KEY" in e.message


def test_body_that_is_not_the_api_shape() -> None:
    e = api_error(502, b"<html>\n<h1>Bad Gateway</h1></html>")
    assert e.exit_code is ExitCode.SERVER
    assert e.message == (
        "the gateway answered without an API error body: <html> <h1>Bad Gateway</h1></html> [HTTP 502]"
    )
    assert api_error(500, b"").message == "empty answer [HTTP 500]"
