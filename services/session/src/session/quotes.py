"""The session's view of the quote service: a new quote comes from GetQuote; a quote the maker brings (its
quote_id, a token the quote service signed) is opened here, offline, with the public keys this service trusts
(SESSION_QUOTE_PUBLIC_KEYS): signature, terms and expiry, without a Redis read or a LookupQuote round trip."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

import grpc
from swap.quote.v1 import quote_pb2, quote_pb2_grpc
from swap_runtime.context import outgoing_metadata
from swap_runtime.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound
from swap_runtime.quote_token import QuoteVerifier, check_valid, open_quote

from session.chains import error_reason, to_domain


def quote_error(exc: grpc.aio.AioRpcError) -> DomainError:
    """The quote service's answer as the same kind of error, its reason kept (QUOTE_EXPIRED, AMOUNT_TOO_SMALL)."""
    if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(exc.details() or "", reason=error_reason(exc) or "QUOTE_REJECTED")
    return to_domain(exc, "quote")


log = logging.getLogger(__name__)


class Quotes(Protocol):
    """Quotes as the quote service signed them, each under the quote_id (the token) it came with."""

    async def get_quote(self, request: quote_pb2.GetQuoteRequest) -> quote_pb2.Quote: ...
    def bind(self, quote_id: str) -> quote_pb2.Quote:
        """The quote a maker's quote_id carries, while it is valid: QUOTE_NOT_FOUND when it does not open with a
        trusted key (altered, unknown key), INVALID_ARGUMENT when it is not a quote id at all, QUOTE_EXPIRED past
        its valid_until."""
        ...


class GrpcQuotes:
    def __init__(
        self,
        stub: quote_pb2_grpc.QuoteServiceStub,
        timeout_s: float,
        verifier: QuoteVerifier,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stub = stub
        self._timeout = timeout_s
        self._verifier = verifier
        self._clock = clock

    async def get_quote(self, request: quote_pb2.GetQuoteRequest) -> quote_pb2.Quote:
        try:
            reply: quote_pb2.GetQuoteResponse = await self._stub.GetQuote(
                request, metadata=outgoing_metadata(), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise quote_error(exc) from None
        try:
            return open_quote(self._verifier, reply.quote.quote_id)
        except (NotFound, InvalidArgument) as err:
            # Our own quote service signs with a key we do not trust: a configuration fault, not the maker's.
            log.error("the quote service's quote does not open", extra={"error": err.message})
            raise DomainError(
                "the quote service signs with a key this service does not trust", reason="INTERNAL"
            ) from None

    def bind(self, quote_id: str) -> quote_pb2.Quote:
        quote = open_quote(self._verifier, quote_id)
        check_valid(quote, self._clock())
        return quote
