"""The session opens the maker's quote_id itself: the quote service's signature, the terms and the expiry, with
the public keys of SESSION_QUOTE_PUBLIC_KEYS, and no call to the quote service or Redis."""

from __future__ import annotations

from typing import Any, cast

import pytest
from pydantic import ValidationError
from session.config import SessionSettings
from session.quotes import GrpcQuotes
from swap.quote.v1 import quote_pb2, quote_pb2_grpc
from swap_runtime.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound
from swap_runtime.quote_token import QuoteSigner, new_key_pair, private_key

from tests.unit.test_quote_token import QUOTE

SEED, PUBLIC = new_key_pair()
OTHER_SEED, OTHER_PUBLIC = new_key_pair()
SIGNER = QuoteSigner(private_key(SEED))
TERMS = QUOTE  # a quote's terms as the quote service signs them


class NoStub:
    """Binding a quote must not call the quote service."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the quote service was called: {name}")


class IssuingStub:
    def __init__(self, signer: QuoteSigner) -> None:
        self._signer = signer

    async def GetQuote(self, request: quote_pb2.GetQuoteRequest, **_: Any) -> quote_pb2.GetQuoteResponse:
        reply = quote_pb2.Quote()
        reply.CopyFrom(TERMS)
        reply.quote_id = self._signer.seal(TERMS.SerializeToString())
        return quote_pb2.GetQuoteResponse(quote=reply)


def quotes(now: float, stub: Any = None, *keys: str) -> GrpcQuotes:
    settings = SessionSettings(dev_mode=True, plaintext=True, quote_public_keys=list(keys or [PUBLIC]))
    return GrpcQuotes(
        cast(quote_pb2_grpc.QuoteServiceStub, stub or NoStub()), 5.0, settings.quote_verifier(), lambda: now
    )


def test_a_signed_quote_binds_offline_until_it_expires() -> None:
    token = SIGNER.seal(TERMS.SerializeToString())
    bound = quotes(TERMS.valid_until - 1).bind(token)
    assert bound.quote_id == token  # the session shows the quote_id it was given
    bound.quote_id = TERMS.quote_id
    assert bound == TERMS
    with pytest.raises(FailedPrecondition) as err:
        quotes(TERMS.valid_until).bind(token)
    assert err.value.reason == "QUOTE_EXPIRED" and err.value.metadata["field"] == "quote_id"


def test_a_tampered_or_foreign_quote_is_refused_naming_the_field() -> None:
    token = SIGNER.seal(TERMS.SerializeToString())
    foreign = QuoteSigner(private_key(OTHER_SEED)).seal(TERMS.SerializeToString())
    flipped = token[:100] + ("A" if token[100] != "A" else "B") + token[101:]
    for bad in (foreign, flipped):
        with pytest.raises(NotFound) as err:
            quotes(TERMS.valid_until - 1).bind(bad)
        assert err.value.reason == "QUOTE_NOT_FOUND"
        assert err.value.metadata == {"field": "quote_id"} and err.value.message.startswith("quote_id: ")
    for malformed in ("f" * 32, "not a quote id"):
        with pytest.raises(InvalidArgument) as invalid:
            quotes(TERMS.valid_until - 1).bind(malformed)
        assert invalid.value.field == "quote_id"


def test_both_keys_are_trusted_while_rotating() -> None:
    foreign = QuoteSigner(private_key(OTHER_SEED)).seal(TERMS.SerializeToString())
    assert quotes(TERMS.valid_until - 1, None, PUBLIC, OTHER_PUBLIC).bind(foreign).valid_until == TERMS.valid_until
    with pytest.raises(NotFound):
        quotes(TERMS.valid_until - 1, None, OTHER_PUBLIC).bind(SIGNER.seal(TERMS.SerializeToString()))


async def test_a_new_quote_is_opened_too() -> None:
    fresh = await quotes(0, IssuingStub(SIGNER)).get_quote(quote_pb2.GetQuoteRequest())
    assert fresh.min_received == TERMS.min_received and len(fresh.quote_id) > 32
    with pytest.raises(DomainError) as err:
        await quotes(0, IssuingStub(QuoteSigner(private_key(OTHER_SEED)))).get_quote(quote_pb2.GetQuoteRequest())
    assert err.value.reason == "INTERNAL" and "does not trust" in err.value.message


def test_the_trusted_keys_are_required_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SESSION_QUOTE_PUBLIC_KEYS", raising=False)
    with pytest.raises(ValidationError, match="SESSION_QUOTE_PUBLIC_KEYS is required"):
        SessionSettings(dev_mode=True)
    with pytest.raises(ValidationError, match="64 hex digits"):
        SessionSettings(dev_mode=True, quote_public_keys=["abc"])
    monkeypatch.setenv("SESSION_QUOTE_PUBLIC_KEYS", f" 0x{PUBLIC.upper()} , {OTHER_PUBLIC}")
    assert SessionSettings(dev_mode=True).quote_public_keys == [PUBLIC, OTHER_PUBLIC]
    monkeypatch.setenv("SESSION_QUOTE_PUBLIC_KEYS", f'["{PUBLIC}"]')
    assert SessionSettings(dev_mode=True).quote_public_keys == [PUBLIC]
    monkeypatch.setenv("SESSION_QUOTE_PUBLIC_KEYS", "[]")
    with pytest.raises(ValidationError, match="SESSION_QUOTE_PUBLIC_KEYS is required"):
        SessionSettings(dev_mode=True)
