"""The bench's reference servicers: the no-op answers the real service's reply size, the signed one a real
token of its constant quote."""

from __future__ import annotations

import asyncio

from swap.quote.v1 import quote_pb2
from swap_runtime.quote_token import QuoteVerifier, open_quote

from bench.noop_quote import REPLY, TERMS, NoopQuoteServicer, SignedNoopQuoteServicer


def _get_quote(servicer: NoopQuoteServicer) -> quote_pb2.GetQuoteResponse:
    return asyncio.run(servicer.GetQuote(quote_pb2.GetQuoteRequest(), None))


def test_the_signed_noop_hands_out_a_token_of_its_constant_quote() -> None:
    servicer = SignedNoopQuoteServicer()
    first, second = _get_quote(servicer), _get_quote(servicer)
    opened = open_quote(QuoteVerifier([servicer._signer.public_key]), first.quote.quote_id)
    # Opened, a token is the quote as handed out: its quote_id is the token itself. Signed anew on every call,
    # it comes out the same each time (Ed25519 signatures are deterministic).
    assert opened.quote_id == first.quote.quote_id == second.quote.quote_id
    opened.quote_id = TERMS.quote_id
    assert opened == TERMS
    # Everything but the token is the constant reply; the constant itself is never touched.
    second.quote.quote_id = REPLY.quote.quote_id
    assert second == REPLY and REPLY.quote.quote_id.startswith("n")


def test_both_reference_replies_are_as_long_as_each_other() -> None:
    signed = _get_quote(SignedNoopQuoteServicer())
    assert len(signed.SerializeToString()) == len(_get_quote(NoopQuoteServicer()).SerializeToString())
