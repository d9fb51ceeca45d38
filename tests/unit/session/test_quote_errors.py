"""The quote service's refusals reach the maker with their own reason: an expired quote is QUOTE_EXPIRED, an
unknown one QUOTE_NOT_FOUND (not a chain's or a lock's reason)."""

from __future__ import annotations

import grpc
from grpc_status import rpc_status
from session.quotes import quote_error
from swap_runtime.errors import DomainError, FailedPrecondition, NotFound


def rpc_error(err: DomainError) -> grpc.aio.AioRpcError:
    status = rpc_status.to_status(err.to_status())
    return grpc.aio.AioRpcError(
        err.code, grpc.aio.Metadata(), grpc.aio.Metadata(*status.trailing_metadata), details=err.message
    )


def test_an_expired_quote_keeps_its_reason() -> None:
    mapped = quote_error(rpc_error(FailedPrecondition("the quote expired at 5", reason="QUOTE_EXPIRED")))
    assert isinstance(mapped, FailedPrecondition)
    assert (mapped.reason, mapped.message) == ("QUOTE_EXPIRED", "the quote expired at 5")


def test_an_unknown_quote_is_quote_not_found() -> None:
    mapped = quote_error(rpc_error(NotFound("no such quote", reason="QUOTE_NOT_FOUND")))
    assert isinstance(mapped, NotFound) and mapped.reason == "QUOTE_NOT_FOUND"


def test_other_refusals_keep_theirs() -> None:
    mapped = quote_error(rpc_error(FailedPrecondition("fees leave nothing", reason="AMOUNT_TOO_SMALL")))
    assert mapped.reason == "AMOUNT_TOO_SMALL"
