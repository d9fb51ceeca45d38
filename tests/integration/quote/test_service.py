"""The quote service as a process over gRPC with a real Redis: issue then look up, expiry, bad input naming the
field, the auction's amounts and fees, the HTTP price source and the devnet deployment file."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from quote.issuer import EXPIRED_KEPT_S
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2, quote_pb2_grpc
from swap_devnet.evm import EvmDeployment
from swap_devnet.procs import ServiceProcess, free_port
from swap_runtime.quote_token import QuoteSigner, QuoteVerifier, new_key_pair, open_quote, private_key, public_key

from tests.fixtures.quote import BASE_TUSD, NEAR_TUSD, PUBLIC_KEY, PriceStub, QuoteFactory

pytestmark = pytest.mark.integration

BASE = common_pb2.CHAIN_BASE
NEAR = common_pb2.CHAIN_NEAR
# Defaults: BASE source leg 250k gas x 0.01 gwei at $3000 = $0.0075, NEAR destination leg 60 Tgas x 1e8 yocto
# at $3 = $0.018; together $0.0255, i.e. 25_500 TUSD base units.
BASE_TO_NEAR_NETWORK_FEE_TUSD = 25_500


def asset(chain: int, token: str) -> quote_pb2.Asset:
    return quote_pb2.Asset(chain=chain, token=token)  # type: ignore[arg-type]


def get_request(
    src: quote_pb2.Asset | None = None,
    dst: quote_pb2.Asset | None = None,
    amount: str = "10000000",
    slippage_bps: int = 0,
    urgency: float = 0.0,
) -> quote_pb2.GetQuoteRequest:
    return quote_pb2.GetQuoteRequest(
        src=src or asset(BASE, BASE_TUSD),
        dst=dst or asset(NEAR, NEAR_TUSD),
        src_amount=amount,
        slippage_bps=slippage_bps,
        urgency=urgency,
    )


def details(err: grpc.aio.AioRpcError) -> tuple[str | None, str | None]:
    """(BadRequest field, ErrorInfo reason) of a rich status."""
    status = rpc_status.from_call(err)
    assert status is not None
    field = reason = None
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(bad):
            field = str(bad.field_violations[0].field)
        elif detail.Unpack(info):
            reason = str(info.reason)
    return field, reason


@pytest.fixture(scope="module")
def short_lived(quote_factory: QuoteFactory) -> Iterator[ServiceProcess]:
    """A quote service whose quotes live 1 s, without amount limits."""
    with quote_factory({"QUOTE_VALIDITY_S": "1", "QUOTE_LIMITS": "{}"}) as proc:
        yield proc


@pytest.fixture
async def short_quote(short_lived: ServiceProcess) -> AsyncIterator[quote_pb2_grpc.QuoteServiceStub]:
    async with grpc.aio.insecure_channel(short_lived.address) as channel:
        yield quote_pb2_grpc.QuoteServiceStub(channel)


async def test_get_then_lookup(
    quote: quote_pb2_grpc.QuoteServiceStub, quote_proc: ServiceProcess, redis_client: aioredis.Redis
) -> None:
    before = int(time.time())
    q = (await quote.GetQuote(get_request())).quote
    # The quote_id is the quote signed with the service's key, under a 32-hex serial.
    assert open_quote(QuoteVerifier([public_key(PUBLIC_KEY)]), q.quote_id) == q
    serial = quote_pb2.Quote.FromString(QuoteVerifier([public_key(PUBLIC_KEY)]).open(q.quote_id)).quote_id
    assert len(serial) == 32 and int(serial, 16) >= 0
    assert before <= q.issued_at <= int(time.time())
    assert q.valid_until == q.issued_at + 30
    assert q.src == asset(BASE, BASE_TUSD) and q.dst == asset(NEAR, NEAR_TUSD)
    assert q.src_amount == "10000000"
    assert q.slippage_bps == 50
    assert q.timelocks == quote_pb2.TimelockPlan(
        src=common_pb2.Timelocks(
            withdrawal_after_s=2,
            public_withdrawal_after_s=240,
            cancellation_after_s=360,
            public_cancellation_after_s=420,
        ),
        dst=common_pb2.Timelocks(
            withdrawal_after_s=1,
            public_withdrawal_after_s=120,
            cancellation_after_s=240,
            public_cancellation_after_s=300,
        ),
        reveal_margin_s=60,
    )
    assert q.refund_guaranteed_by == q.issued_at + 420 + 60
    assert (q.src_safety_deposit, q.dst_safety_deposit) == (str(10**15), str(10**22))

    found = (await quote.LookupQuote(quote_pb2.LookupQuoteRequest(quote_id=q.quote_id))).quote
    assert found == q
    assert (await quote.LookupQuote(quote_pb2.LookupQuoteRequest(quote_id=serial))).quote == q

    # Written behind the reply, under its serial.
    key = f"{quote_proc.env['QUOTE_REDIS_PREFIX']}quote:{serial}"
    for _ in range(100):
        if await redis_client.exists(key):
            break
        await asyncio.sleep(0.02)
    assert await redis_client.get(key) == q.quote_id.encode()
    ttl_ms = await redis_client.pttl(key)
    # Its validity, then an hour in which a lookup is told it expired.
    assert 27_000 + EXPIRED_KEPT_S * 1000 < ttl_ms <= 30_000 + EXPIRED_KEPT_S * 1000


async def test_auction_amounts_are_ordered_and_net_of_fees(quote: quote_pb2_grpc.QuoteServiceStub) -> None:
    amount = 100_000_000  # 100 TUSD, priced 1:1
    q = (await quote.GetQuote(get_request(amount=str(amount)))).quote
    a = q.auction
    assert q.market_rate == str(10**18)
    assert q.protocol_fee == "100000"  # 10 bps
    assert q.network_fee == str(BASE_TO_NEAR_NETWORK_FEE_TUSD)
    fees = 100_000 + BASE_TO_NEAR_NETWORK_FEE_TUSD
    assert int(a.start_amount) == 101_000_000 - fees  # +100 bps
    assert int(a.end_amount) == 99_500_000 - fees  # -50 bps
    assert int(a.current_amount) == int(a.start_amount)
    assert (a.start_time, a.duration_s) == (q.issued_at, 60)
    assert int(q.min_received) == (99_500_000 - fees) * 9_950 // 10_000

    for src, dst, value, urgency in [
        (asset(BASE, BASE_TUSD), asset(NEAR, "native"), "25000000", 1.0),
        (asset(NEAR, "native"), asset(BASE, BASE_TUSD), str(7 * 10**24), 4.0),
        (asset(NEAR, "native"), asset(BASE, "native"), str(10**23), 0.5),
        (asset(NEAR, NEAR_TUSD), asset(BASE, "native"), "3000000000", 2.5),
    ]:
        q = (await quote.GetQuote(get_request(src, dst, value, slippage_bps=300, urgency=urgency))).quote
        a = q.auction
        assert int(a.start_amount) >= int(a.current_amount) >= int(a.end_amount) >= int(q.min_received) > 0
        assert a.duration_s == int(60 / urgency)
        assert int(q.protocol_fee) > 0 and int(q.network_fee) > 0
        assert q.slippage_bps == 300


async def test_urgency_starts_lower_and_ends_sooner(quote: quote_pb2_grpc.QuoteServiceStub) -> None:
    calm = (await quote.GetQuote(get_request(urgency=1.0))).quote.auction
    urgent = (await quote.GetQuote(get_request(urgency=2.0))).quote.auction
    assert int(urgent.start_amount) < int(calm.start_amount)
    assert urgent.end_amount == calm.end_amount
    assert urgent.duration_s == calm.duration_s // 2


async def test_lookup_of_an_unknown_quote(quote: quote_pb2_grpc.QuoteServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await quote.LookupQuote(quote_pb2.LookupQuoteRequest(quote_id="0" * 32))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == "no such quote"
    assert details(err.value)[1] == "QUOTE_NOT_FOUND"


async def test_lookup_of_a_quote_signed_elsewhere_or_altered(quote: quote_pb2_grpc.QuoteServiceStub) -> None:
    q = (await quote.GetQuote(get_request())).quote
    other_seed, _ = new_key_pair()
    signed = QuoteVerifier([public_key(PUBLIC_KEY)]).open(q.quote_id)
    forged = QuoteSigner(private_key(other_seed)).seal(signed)
    raw = bytearray(base64.urlsafe_b64decode(q.quote_id + "=" * (-len(q.quote_id) % 4)))
    raw[-3] ^= 1  # a term
    altered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    for quote_id in (forged, altered):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await quote.LookupQuote(quote_pb2.LookupQuoteRequest(quote_id=quote_id))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert details(err.value)[1] == "QUOTE_NOT_FOUND"


async def test_quotes_are_served_while_redis_is_down(quote_factory: QuoteFactory) -> None:
    """Redis only keeps the record: GetQuote and a lookup by quote_id need none of it; a failed write is
    counted, and a lookup by serial says the store is unavailable."""
    metrics_port = free_port()
    env = {"QUOTE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "QUOTE_METRICS_PORT": str(metrics_port)}
    with quote_factory(env) as proc:
        async with grpc.aio.insecure_channel(proc.address) as channel:
            stub = quote_pb2_grpc.QuoteServiceStub(channel)
            q = (await stub.GetQuote(get_request())).quote
            assert (await stub.LookupQuote(quote_pb2.LookupQuoteRequest(quote_id=q.quote_id))).quote == q
            serial = quote_pb2.Quote.FromString(QuoteVerifier([public_key(PUBLIC_KEY)]).open(q.quote_id)).quote_id
            failed = 0.0
            for _ in range(100):
                failed = _metric(metrics_port, 'swap_quote_store_failed_total{why="write_failed"}')
                if failed >= 1:
                    break
                await asyncio.sleep(0.05)
            assert failed >= 1
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.LookupQuote(quote_pb2.LookupQuoteRequest(quote_id=serial))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert details(err.value)[1] == "QUOTE_STORE_UNAVAILABLE"


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    return 0.0


async def test_quote_expires(short_quote: quote_pb2_grpc.QuoteServiceStub) -> None:
    q = (await short_quote.GetQuote(get_request())).quote
    assert q.valid_until == q.issued_at + 1
    assert (await short_quote.LookupQuote(quote_pb2.LookupQuoteRequest(quote_id=q.quote_id))).quote == q
    await asyncio.sleep(max(0.0, q.valid_until - time.time()) + 0.1)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await short_quote.LookupQuote(quote_pb2.LookupQuoteRequest(quote_id=q.quote_id))
    # Told apart from a quote that never existed.
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(err.value)[1] == "QUOTE_EXPIRED"


async def test_amount_too_small(short_quote: quote_pb2_grpc.QuoteServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await short_quote.GetQuote(get_request(amount="25000"))  # 0.025 TUSD against $0.0255 of gas
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(err.value)[1] == "AMOUNT_TOO_SMALL"
    q = (await short_quote.GetQuote(get_request(amount="30000"))).quote
    assert 0 < int(q.min_received) < 30_000 - BASE_TO_NEAR_NETWORK_FEE_TUSD


BAD_REQUESTS: list[tuple[str, Any, str]] = [
    ("no src", quote_pb2.GetQuoteRequest(dst=asset(NEAR, "native"), src_amount="1000000"), "src"),
    ("no dst", quote_pb2.GetQuoteRequest(src=asset(BASE, BASE_TUSD), src_amount="1000000"), "dst"),
    ("src chain unset", get_request(src=asset(common_pb2.CHAIN_UNSPECIFIED, BASE_TUSD)), "src.chain"),
    ("dst chain unknown", get_request(dst=asset(7, NEAR_TUSD)), "dst.chain"),
    ("unknown src token", get_request(src=asset(BASE, "0x000000000000000000000000000000000000dEaD")), "src.token"),
    ("src token on the other chain", get_request(src=asset(NEAR, BASE_TUSD), dst=asset(BASE, "native")), "src.token"),
    ("empty src token", get_request(src=asset(BASE, "")), "src.token"),
    ("unknown dst token", get_request(dst=asset(NEAR, "usdc.near")), "dst.token"),
    ("native ETH as source", get_request(src=asset(BASE, "native"), amount=str(10**16)), "src.token"),
    ("same chain", get_request(dst=asset(BASE, "native")), "dst.chain"),
    ("no amount", get_request(amount=""), "src_amount"),
    ("zero amount", get_request(amount="0"), "src_amount"),
    ("negative amount", get_request(amount="-5"), "src_amount"),
    ("exponent amount", get_request(amount="1e6"), "src_amount"),
    ("fraction amount", get_request(amount="1.5"), "src_amount"),
    ("below the minimum", get_request(amount="99999"), "src_amount"),
    ("above the maximum", get_request(amount=str(10**12 + 1)), "src_amount"),
    ("slippage over 5000", get_request(slippage_bps=5001), "slippage_bps"),
    ("urgency under 0.5", get_request(urgency=0.4), "urgency"),
    ("urgency over 4", get_request(urgency=4.5), "urgency"),
    ("negative urgency", get_request(urgency=-1.0), "urgency"),
]


@pytest.mark.parametrize(
    ("request_", "field"), [(r, f) for _, r, f in BAD_REQUESTS], ids=[n for n, _, _ in BAD_REQUESTS]
)
async def test_bad_input_names_the_field(
    quote: quote_pb2_grpc.QuoteServiceStub, request_: quote_pb2.GetQuoteRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await quote.GetQuote(request_)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(err.value) == (field, "INVALID_ARGUMENT")
    assert (err.value.details() or "").startswith(f"{field}: ")


async def test_list_assets_says_which_side_each_token_can_be_on(quote: quote_pb2_grpc.QuoteServiceStub) -> None:
    reply = await quote.ListAssets(quote_pb2.ListAssetsRequest())
    listed = [(a.asset.chain, a.asset.token, a.symbol, a.decimals, a.source, a.destination) for a in reply.assets]
    assert listed == [
        (BASE, BASE_TUSD, "TUSD", 6, True, True),
        (BASE, "native", "ETH", 18, False, True),
        (NEAR, "native", "NEAR", 24, True, True),
        (NEAR, NEAR_TUSD, "TUSD", 6, True, True),
    ]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await quote.GetQuote(get_request(src=asset(BASE, "native"), amount=str(10**16)))
    assert details(err.value) == ("src.token", "INVALID_ARGUMENT")
    assert err.value.details() == (
        "src.token: native ETH cannot be a swap's source on base: source locks hold ERC-20 tokens"
    )


@pytest.mark.parametrize("quote_id", ["", "not-hex", "ABCDEF" * 6, "0" * 31])
async def test_bad_quote_id(quote: quote_pb2_grpc.QuoteServiceStub, quote_id: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await quote.LookupQuote(quote_pb2.LookupQuoteRequest(quote_id=quote_id))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(err.value)[0] == "quote_id"


async def test_http_price_source(quote_factory: QuoteFactory, price_stub: PriceStub) -> None:
    price_stub.prices["NEAR"] = "2"
    env = {"QUOTE_PRICE_SOURCE": "http", "QUOTE_PRICE_URL": price_stub.url, "QUOTE_PRICE_CACHE_S": "0"}
    proc = quote_factory(env)
    with proc:
        async with grpc.aio.insecure_channel(proc.address) as channel:
            stub = quote_pb2_grpc.QuoteServiceStub(channel)
            request = get_request(dst=asset(NEAR, "native"))  # 10 TUSD
            q = (await stub.GetQuote(request)).quote
            # One fetch per symbol: NEAR is both the destination and NEAR's native token.
            assert sorted(price_stub.requests) == ["ETH", "NEAR", "TUSD"]
            assert q.market_rate == str(10**36 // 2)  # 10^18 TUSD units at $1 / $2 per NEAR, in yocto
            assert int(q.auction.end_amount) < 5 * 10**24 * 9_950 // 10_000

            price_stub.prices["NEAR"] = "4"
            q = (await stub.GetQuote(request)).quote
            assert q.market_rate == str(10**36 // 4)

            price_stub.fail_next = 100
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetQuote(request)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert details(err.value)[1] == "PRICE_SOURCE_UNAVAILABLE"
    # SIGTERM is the graceful shutdown path: the process drains and exits cleanly.
    assert proc.returncode == 0


async def test_the_test_token_settings_add_the_devnet_tokens(quote_factory: QuoteFactory, evm: EvmDeployment) -> None:
    token = evm.token
    natives = [
        {"chain": "base", "token": "native", "symbol": "ETH", "decimals": 18},
        {"chain": "near", "token": "native", "symbol": "NEAR", "decimals": 24},
    ]
    env = {
        "QUOTE_TOKENS": json.dumps(natives),
        "QUOTE_BASE_TOKEN_ADDRESS": token,
        "QUOTE_NEAR_TOKEN_ACCOUNT": "tusd.devnet",
    }
    with quote_factory(env) as proc:
        async with grpc.aio.insecure_channel(proc.address) as channel:
            stub = quote_pb2_grpc.QuoteServiceStub(channel)
            q = (await stub.GetQuote(get_request(src=asset(BASE, token.lower()), dst=asset(NEAR, "tusd.devnet")))).quote
            assert q.src.token == token
            assert q.market_rate == str(10**18)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetQuote(get_request())  # the suite's fake TUSD address is not registered here
            assert details(err.value)[0] == "src.token"
