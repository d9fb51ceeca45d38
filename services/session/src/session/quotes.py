"""The session's view of the quote service."""

from __future__ import annotations

from typing import Protocol

import grpc
from swap.quote.v1 import quote_pb2, quote_pb2_grpc
from swap_runtime.context import outgoing_metadata
from swap_runtime.errors import DomainError, FailedPrecondition

from session.chains import error_reason, to_domain


def quote_error(exc: grpc.aio.AioRpcError) -> DomainError:
    """The quote service's answer as the same kind of error, its reason kept (QUOTE_EXPIRED, AMOUNT_TOO_SMALL)."""
    if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(exc.details() or "", reason=error_reason(exc) or "QUOTE_REJECTED")
    return to_domain(exc, "quote")


class Quotes(Protocol):
    async def get_quote(self, request: quote_pb2.GetQuoteRequest) -> quote_pb2.Quote: ...
    async def lookup(self, quote_id: str) -> quote_pb2.Quote: ...


class GrpcQuotes:
    def __init__(self, stub: quote_pb2_grpc.QuoteServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout = timeout_s

    async def get_quote(self, request: quote_pb2.GetQuoteRequest) -> quote_pb2.Quote:
        try:
            reply: quote_pb2.GetQuoteResponse = await self._stub.GetQuote(
                request, metadata=outgoing_metadata(), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise quote_error(exc) from None
        return reply.quote

    async def lookup(self, quote_id: str) -> quote_pb2.Quote:
        request = quote_pb2.LookupQuoteRequest(quote_id=quote_id)
        try:
            reply: quote_pb2.LookupQuoteResponse = await self._stub.LookupQuote(
                request, metadata=outgoing_metadata(), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise quote_error(exc) from None
        return reply.quote
