"""Issued quotes: each signed into the quote_id it is handed out with, kept behind the request path, and looked
up again by that quote_id or by its serial.

The quote_id is a token (swap_runtime.quote_token) of the swap.quote.v1.Quote as issued, signed with this
service's Ed25519 key; inside, the quote's own quote_id is its serial (32 hex digits). Whoever trusts the key
(the session service) opens it without a round trip; nothing on the request path waits for Redis."""

from __future__ import annotations

import logging
import re
import time

from swap.quote.v1 import quote_pb2
from swap_runtime.errors import NotFound
from swap_runtime.quote_token import QuoteSigner, QuoteVerifier, check_valid, open_quote

from quote.model import Clock, Token
from quote.quoter import Quoter, QuoteRequest
from quote.store import QuoteStore
from quote.wire import quote_to_pb

log = logging.getLogger(__name__)

SERIAL = re.compile(r"[0-9a-f]{32}")

# How long an expired quote stays known (as expired) to a lookup by serial after its validity ends.
EXPIRED_KEPT_S = 3600


class Issuer:
    def __init__(self, quoter: Quoter, signer: QuoteSigner, store: QuoteStore, *, clock: Clock = time.time) -> None:
        self._quoter = quoter
        self._signer = signer
        # A lookup opens only what this service signed.
        self._verifier = QuoteVerifier([signer.public_key])
        self._store = store
        self._clock = clock

    async def issue(self, request: QuoteRequest) -> quote_pb2.Quote:
        quote = await self._quoter.quote(request)
        message = quote_to_pb(quote)
        token = self._signer.seal(message.SerializeToString(deterministic=True))
        message.quote_id = token
        self._store.offer(quote.quote_id, token, quote.valid_until - self._clock() + EXPIRED_KEPT_S)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "quote issued",
                extra={
                    "serial": quote.quote_id,
                    "pair": f"{quote.src.chain}:{quote.src.token}->{quote.dst.chain}:{quote.dst.token}",
                    "src_amount": str(quote.src_amount),
                    "current_amount": str(quote.auction.current_amount),
                },
            )
        return message

    async def lookup(self, quote_id: str) -> quote_pb2.Quote:
        """The quote a quote_id (or the serial inside one) names, while it is valid."""
        if SERIAL.fullmatch(quote_id):
            token = await self._store.get(quote_id)
            if token is None:
                raise NotFound("no such quote", reason="QUOTE_NOT_FOUND", metadata={"quote_id": quote_id})
        else:
            token = quote_id
        message = open_quote(self._verifier, token)
        check_valid(message, self._clock())
        return message

    def assets(self) -> list[Token]:
        return self._quoter.assets()
