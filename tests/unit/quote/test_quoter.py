"""Issuing and looking up quotes with the clock in the test's hand: pair and amount checks, the swap terms a
quote carries, and expiry by time."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from quote.model import NATIVE, Asset, Chain, TimelockPlan, Timelocks, Token
from quote.price_source import StaticPriceSource
from quote.pricing import AuctionPolicy, FeePolicy, LegGas, Pricer
from quote.quoter import AmountLimit, Quoter, QuoteRequest, SwapTerms
from quote.tokens import TokenRegistry
from swap_runtime.errors import FailedPrecondition, InvalidArgument

BASE_TUSD = "0xAbCdEf0000000000000000000000000000000001"
TOKENS = [
    Token(Chain.BASE, BASE_TUSD, "TUSD", 6),
    Token(Chain.BASE, NATIVE, "ETH", 18, source=False),
    Token(Chain.NEAR, NATIVE, "NEAR", 24),
    Token(Chain.NEAR, "tusd.test.near", "TUSD", 6),
    Token(Chain.NEAR, "sink.test.near", "TUSD", 6, destination=False),
]
PLAN = TimelockPlan(Timelocks(2, 60, 120, 180), Timelocks(1, 40, 80, 100), 10)
TERMS = SwapTerms(
    validity_s=30, timelocks=PLAN, lock_allowance_s=60, safety_deposits={Chain.BASE: 10**15, Chain.NEAR: 10**22}
)
T0 = 1_700_000_000.25


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def pricer() -> Pricer:
    return Pricer(
        AuctionPolicy(100, 50, 60),
        FeePolicy(10, {Chain.BASE: LegGas(250_000, 200_000, 10**7), Chain.NEAR: LegGas(6 * 10**13, 6 * 10**13, 10**8)}),
        default_slippage_bps=50,
        default_urgency=1.0,
    )


PRICES = StaticPriceSource({"TUSD": Decimal(1), "ETH": Decimal(3000), "NEAR": Decimal(3)})


@pytest.fixture
def quoter(clock: Clock) -> Quoter:
    limits = {"TUSD": AmountLimit(Decimal("0.5"), Decimal(1000)), "NEAR": AmountLimit(None, Decimal("0.5"))}
    return Quoter(TokenRegistry(TOKENS), PRICES, pricer(), TERMS, limits=limits, clock=clock)


def request(
    src: tuple[Chain, str] = (Chain.BASE, BASE_TUSD),
    dst: tuple[Chain, str] = (Chain.NEAR, NATIVE),
    amount: int = 10_000_000,
    slippage_bps: int = 0,
    urgency: float = 0.0,
) -> QuoteRequest:
    return QuoteRequest(Asset(*src), Asset(*dst), amount, slippage_bps, urgency)


async def test_quote_carries_the_swap_terms(quoter: Quoter) -> None:
    q = await quoter.quote(request())
    assert len(q.quote_id) == 32 and int(q.quote_id, 16) >= 0
    assert q.issued_at == 1_700_000_000
    assert q.valid_until == 1_700_000_030
    assert q.auction.start_time == q.issued_at
    assert q.timelocks == PLAN
    assert q.refund_guaranteed_by == 1_700_000_000 + 180 + 60
    assert (q.src_safety_deposit, q.dst_safety_deposit) == (10**15, 10**22)
    assert q.slippage_bps == 50
    assert q.src == Asset(Chain.BASE, BASE_TUSD)


async def test_quote_ids_differ(quoter: Quoter) -> None:
    ids = {(await quoter.quote(request())).quote_id for _ in range(20)}
    assert len(ids) == 20


async def test_evm_addresses_match_in_any_case(quoter: Quoter) -> None:
    q = await quoter.quote(request(src=(Chain.BASE, BASE_TUSD.lower())))
    assert q.src.token == BASE_TUSD


@pytest.mark.parametrize(
    ("req", "field"),
    [
        (request(src=(Chain.BASE, "0x0000000000000000000000000000000000000bad")), "src.token"),
        (request(src=(Chain.BASE, "")), "src.token"),
        (request(src=(Chain.NEAR, BASE_TUSD), dst=(Chain.BASE, NATIVE)), "src.token"),
        (request(dst=(Chain.NEAR, "wrap.near")), "dst.token"),
        (request(dst=(Chain.BASE, NATIVE)), "dst.chain"),
        (request(amount=499_999), "src_amount"),
        (request(amount=1_000_000_001), "src_amount"),
        (request(src=(Chain.NEAR, NATIVE), dst=(Chain.BASE, BASE_TUSD), amount=6 * 10**23), "src_amount"),
        (request(slippage_bps=5_001), "slippage_bps"),
        (request(urgency=0.25), "urgency"),
        (request(urgency=5), "urgency"),
    ],
)
async def test_bad_requests_name_the_field(quoter: Quoter, req: QuoteRequest, field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        await quoter.quote(req)
    assert err.value.field == field


async def test_limits_name_the_bound(quoter: Quoter) -> None:
    with pytest.raises(InvalidArgument, match=r"minimum of 500000 \(0.5 TUSD\)"):
        await quoter.quote(request(amount=1))
    with pytest.raises(InvalidArgument, match=r"maximum of 1000000000 \(1000 TUSD\)"):
        await quoter.quote(request(amount=10**12))


async def test_limits_are_inclusive(quoter: Quoter) -> None:
    await quoter.quote(request(amount=500_000))
    await quoter.quote(request(amount=1_000_000_000))


async def test_amount_too_small(quoter: Quoter) -> None:
    # 0.01 NEAR ($0.03) against the network fee of BASE's destination leg ($0.006) and NEAR's source leg
    # ($0.018) leaves $0.006, but 1 yoctoNEAR leaves nothing.
    with pytest.raises(FailedPrecondition) as err:
        await quoter.quote(request(src=(Chain.NEAR, NATIVE), dst=(Chain.BASE, BASE_TUSD), amount=1))
    assert err.value.reason == "AMOUNT_TOO_SMALL"
    q = await quoter.quote(request(src=(Chain.NEAR, NATIVE), dst=(Chain.BASE, BASE_TUSD), amount=10**22))
    assert q.network_fee == 24_000
    assert q.min_received > 0


async def test_a_token_is_refused_on_a_side_it_cannot_be_on(quoter: Quoter) -> None:
    with pytest.raises(InvalidArgument) as err:
        await quoter.quote(request(src=(Chain.BASE, NATIVE), dst=(Chain.NEAR, NATIVE), amount=10**16))
    assert err.value.field == "src.token"
    assert err.value.description == "native ETH cannot be a swap's source on base: source locks hold ERC-20 tokens"
    with pytest.raises(InvalidArgument) as err:
        await quoter.quote(request(dst=(Chain.NEAR, "sink.test.near")))
    assert err.value.field == "dst.token"
    assert "cannot be a swap's destination on near" in err.value.description
    # Each on the side it can be on.
    await quoter.quote(request(src=(Chain.NEAR, NATIVE), dst=(Chain.BASE, NATIVE), amount=10**23))
    await quoter.quote(request(src=(Chain.NEAR, "sink.test.near"), dst=(Chain.BASE, NATIVE)))


def test_assets_are_the_registry_in_order(quoter: Quoter) -> None:
    assert quoter.assets() == TOKENS


def test_registry_needs_both_natives() -> None:
    with pytest.raises(ValueError, match="native token of near"):
        TokenRegistry([t for t in TOKENS if t.symbol != "NEAR"])


def test_registry_refuses_conflicting_entries() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        TokenRegistry([*TOKENS, Token(Chain.BASE, BASE_TUSD.lower(), "USDC", 6)])
    with pytest.raises(ValueError, match="registered twice"):
        TokenRegistry([*TOKENS, Token(Chain.BASE, BASE_TUSD.lower(), "TUSD", 6, source=False)])
    assert len(list(TokenRegistry([*TOKENS, Token(Chain.BASE, BASE_TUSD.lower(), "TUSD", 6)]))) == 5
