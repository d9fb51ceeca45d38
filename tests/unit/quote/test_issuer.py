"""Issuing signed quotes and looking them up, with the clock in the test's hand: the quote_id is the quote as
signed, the store is offered it off the request path, and a lookup by quote_id or by serial opens it again."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from quote.issuer import EXPIRED_KEPT_S, Issuer
from quote.model import NATIVE, Asset, Chain
from quote.quoter import Quoter, QuoteRequest
from quote.tokens import TokenRegistry
from swap.quote.v1 import quote_pb2
from swap_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from swap_runtime.quote_token import QuoteSigner, QuoteVerifier, new_key_pair, open_quote, private_key, public_key

from tests.unit.quote.test_quoter import BASE_TUSD, PRICES, T0, TERMS, TOKENS, Clock, pricer

SEED, PUBLIC = new_key_pair()


@dataclass
class MemoryStore:
    offered: dict[str, tuple[str, float]] = field(default_factory=dict)

    def offer(self, serial: str, token: str, ttl_s: float) -> None:
        self.offered[serial] = (token, ttl_s)

    async def get(self, serial: str) -> str | None:
        entry = self.offered.get(serial)
        return None if entry is None else entry[0]

    async def close(self) -> None:
        return None


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def issuer(clock: Clock, store: MemoryStore) -> Issuer:
    quoter = Quoter(TokenRegistry(TOKENS), PRICES, pricer(), TERMS, clock=clock)
    return Issuer(quoter, QuoteSigner(private_key(SEED)), store, clock=clock)


def request() -> QuoteRequest:
    return QuoteRequest(Asset(Chain.BASE, BASE_TUSD), Asset(Chain.NEAR, NATIVE), 10_000_000)


def as_signed(q: quote_pb2.Quote) -> quote_pb2.Quote:
    """The quote as signed: under its serial."""
    return quote_pb2.Quote.FromString(QuoteVerifier([public_key(PUBLIC)]).open(q.quote_id))


async def test_the_quote_id_is_the_quote_signed(issuer: Issuer, store: MemoryStore) -> None:
    q = await issuer.issue(request())
    signed = as_signed(q)
    assert len(signed.quote_id) == 32 and int(signed.quote_id, 16) >= 0  # the serial
    reply = quote_pb2.Quote()
    reply.CopyFrom(q)
    reply.quote_id = signed.quote_id
    assert reply == signed  # every term the reply shows is signed
    assert open_quote(QuoteVerifier([public_key(PUBLIC)]), q.quote_id) == q
    assert (q.issued_at, q.valid_until) == (1_700_000_000, 1_700_000_030)
    # Offered to the store under its serial for what is left of the validity window (from the unrounded
    # clock), then an hour in which a lookup is told it expired.
    assert store.offered == {signed.quote_id: (q.quote_id, 29.75 + EXPIRED_KEPT_S)}


async def test_quote_ids_differ(issuer: Issuer) -> None:
    assert len({(await issuer.issue(request())).quote_id for _ in range(10)}) == 10


async def test_lookup_by_quote_id_or_serial_until_valid_until(issuer: Issuer, clock: Clock) -> None:
    q = await issuer.issue(request())
    serial = as_signed(q).quote_id
    clock.now = q.valid_until - 0.01
    assert await issuer.lookup(q.quote_id) == q
    assert await issuer.lookup(serial) == q
    clock.now = q.valid_until
    for quote_id in (q.quote_id, serial):
        with pytest.raises(FailedPrecondition) as err:
            await issuer.lookup(quote_id)
        assert err.value.reason == "QUOTE_EXPIRED"
        assert str(q.valid_until) in err.value.message


async def test_lookup_needs_no_store_for_a_quote_id(issuer: Issuer, store: MemoryStore) -> None:
    q = await issuer.issue(request())
    store.offered.clear()  # Redis was down: nothing was written
    assert await issuer.lookup(q.quote_id) == q
    with pytest.raises(NotFound):
        await issuer.lookup(as_signed(q).quote_id)


async def test_lookup_of_quotes_not_issued_here(issuer: Issuer, clock: Clock) -> None:
    with pytest.raises(NotFound) as unknown:
        await issuer.lookup("0" * 32)
    assert (unknown.value.reason, unknown.value.message) == ("QUOTE_NOT_FOUND", "no such quote")
    other_seed, _ = new_key_pair()
    foreign = QuoteSigner(private_key(other_seed)).seal(quote_pb2.Quote(valid_until=int(T0) + 60).SerializeToString())
    with pytest.raises(NotFound) as err:
        await issuer.lookup(foreign)
    assert err.value.reason == "QUOTE_NOT_FOUND"
    assert err.value.metadata == {"field": "quote_id"}
    for malformed in ("xyz", "A" * 31, "0" * 33, "g" * 32):
        with pytest.raises(InvalidArgument) as invalid:
            await issuer.lookup(malformed)
        assert invalid.value.field == "quote_id"
