"""quote settings, from QUOTE_* environment variables (see docs/quote.md). Lists and tables are JSON."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, SecretStr, model_validator
from swap.common.v1 import common_pb2
from swap_runtime.errors import InvalidArgument
from swap_runtime.quote_token import QuoteSigner, private_key
from swap_runtime.settings import ServiceSettings
from swap_runtime.validation import check_timelocks

from quote.model import NATIVE, Chain, TimelockPlan, Timelocks, Token
from quote.pricing import MAX_SLIPPAGE_BPS, MAX_URGENCY, MIN_URGENCY, AuctionPolicy, FeePolicy, LegGas
from quote.quoter import AmountLimit, SwapTerms
from quote.tokens import TokenRegistry

TGAS = 10**12


class TokenSetting(BaseModel):
    chain: Chain
    token: str = Field(min_length=1, description='ERC-20 address / NEP-141 account id, or "native".')
    symbol: str = Field(min_length=1, description="Symbol the price source knows the token by.")
    decimals: int = Field(ge=0, le=77)
    source: bool = Field(True, description="Whether the maker can pay it (a swap's source).")
    destination: bool = Field(True, description="Whether the receiver can get it (a swap's destination).")

    def to_token(self) -> Token:
        return Token(self.chain, self.token, self.symbol, self.decimals, self.source, self.destination)


class LimitSetting(BaseModel):
    min: Decimal | None = Field(None, ge=0)
    max: Decimal | None = Field(None, gt=0)


DEFAULT_TOKENS = [
    # BASE source locks hold ERC-20 tokens only (chain-base refuses a native source): ETH is a destination only.
    TokenSetting(chain=Chain.BASE, token=NATIVE, symbol="ETH", decimals=18, source=False),
    TokenSetting(chain=Chain.NEAR, token=NATIVE, symbol="NEAR", decimals=24),
]
DEFAULT_PRICES = {"TUSD": Decimal(1), "ETH": Decimal(3000), "NEAR": Decimal(3)}
DEFAULT_LIMITS = {
    "TUSD": LimitSetting(min=Decimal("0.1"), max=Decimal(1_000_000)),
    "ETH": LimitSetting(min=Decimal("0.0001"), max=Decimal(1_000)),
    "NEAR": LimitSetting(min=Decimal("0.01"), max=Decimal(1_000_000)),
}


class QuoteSettings(ServiceSettings, env_prefix="QUOTE_"):
    tls_clients: str = Field(
        "session,gateway,envoy,operator",
        description="Certificate names allowed to call (comma-separated).",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Where issued quotes are kept (written behind the request path)."
    )
    redis_prefix: str = Field("swap:", description='Key prefix; quotes live under "<prefix>quote:<serial>".')
    signing_key: SecretStr | None = Field(
        None,
        description="Hex of the 32-byte Ed25519 private key (seed) that signs every quote_id; its public key goes "
        "in SESSION_QUOTE_PUBLIC_KEYS. python -m swap_runtime.quote_token prints a new pair.",
    )
    signing_key_file: Path | None = Field(None, description="File holding the signing key, instead of the env.")
    store_max_pending: int = Field(
        10_000, ge=1, description="Issued quotes waiting to be written to Redis; past it they are not stored."
    )
    store_batch: int = Field(500, ge=1, description="Issued quotes written to Redis per round trip, at most.")

    tokens: list[TokenSetting] = Field(
        default_factory=lambda: list(DEFAULT_TOKENS),
        description="Token registry (JSON list of {chain, token, symbol, decimals, source?, destination?}); must "
        "hold both natives. source / destination (default true): the sides of a swap the token can be on.",
    )
    base_token_address: str = Field("", description="ERC-20 address of the BASE test token, added to the tokens.")
    near_token_account: str = Field("", description="NEP-141 account of the NEAR test token, added to the tokens.")
    test_token_symbol: str = Field("TUSD", description="Symbol of the devnet test tokens on both chains.")
    test_token_decimals: int = Field(6, ge=0, le=77, description="Decimals of the devnet test tokens.")

    price_source: Literal["static", "http"] = Field("static", description="Where USD prices come from.")
    prices: dict[str, Decimal] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES), description="Static USD prices by symbol (JSON object)."
    )
    price_url: str = Field("", description="Base URL of the HTTP price API (GET {url}/price?symbol=X).")
    price_timeout_s: float = Field(2.0, gt=0, description="Seconds per HTTP price request.")
    price_attempts: int = Field(3, ge=1, description="Tries per price on connection faults, timeouts and 5xx.")
    price_cache_s: float = Field(5.0, ge=0, description="Seconds an HTTP price is reused; 0 = never.")

    validity_s: int = Field(30, ge=1, description="Seconds a quote can be bound to a session.")
    auction_premium_bps: int = Field(100, ge=0, le=5_000, description="Auction start above market, at urgency 1.")
    auction_discount_bps: int = Field(50, ge=0, lt=10_000, description="Auction end below market.")
    auction_duration_s: int = Field(60, ge=1, description="Auction length at urgency 1.")
    default_urgency: float = Field(1.0, ge=float(MIN_URGENCY), le=float(MAX_URGENCY), description="Urgency for 0.")
    default_slippage_bps: int = Field(50, ge=0, le=MAX_SLIPPAGE_BPS, description="Slippage for 0.")
    protocol_fee_bps: int = Field(10, ge=0, lt=10_000, description="Protocol fee, bps of the market amount.")

    base_gas_price: int = Field(10_000_000, ge=0, description="Wei per gas on BASE.")
    base_src_leg_gas: int = Field(250_000, ge=0, description="Gas of a source leg on BASE (lock + withdraw).")
    base_dst_leg_gas: int = Field(200_000, ge=0, description="Gas of a destination leg on BASE (lock + withdraw).")
    near_gas_price: int = Field(100_000_000, ge=0, description="yoctoNEAR per gas on NEAR.")
    near_src_leg_gas: int = Field(60 * TGAS, ge=0, description="Gas of a source leg on NEAR (lock + withdraw).")
    near_dst_leg_gas: int = Field(60 * TGAS, ge=0, description="Gas of a destination leg on NEAR (lock + withdraw).")

    limits: dict[str, LimitSetting] = Field(
        default_factory=lambda: dict(DEFAULT_LIMITS),
        description='Source amount bounds by symbol in whole tokens (JSON: {"TUSD": {"min": "1", "max": "10"}}).',
    )

    src_withdrawal_after_s: int = Field(2, ge=0, description="Source lock: resolver may withdraw after (s).")
    src_public_withdrawal_after_s: int = Field(240, ge=0, description="Source lock: anyone may withdraw after (s).")
    src_cancellation_after_s: int = Field(360, ge=1, description="Source lock: resolver may cancel after (s).")
    src_public_cancellation_after_s: int = Field(420, ge=1, description="Source lock: anyone may cancel after (s).")
    dst_withdrawal_after_s: int = Field(1, ge=0, description="Destination lock: resolver may withdraw after (s).")
    dst_public_withdrawal_after_s: int = Field(
        120, ge=0, description="Destination lock: anyone may withdraw after (s)."
    )
    dst_cancellation_after_s: int = Field(240, ge=1, description="Destination lock: resolver may cancel after (s).")
    dst_public_cancellation_after_s: int = Field(
        300, ge=1, description="Destination lock: anyone may cancel after (s)."
    )
    reveal_margin_s: int = Field(60, ge=0, description="Secret revealed at least this long before dst cancellation.")
    lock_allowance_s: int = Field(60, ge=0, description="Seconds the source lock may take to land after quoting.")

    base_safety_deposit: int = Field(10**15, ge=0, description="Safety deposit on BASE locks, wei.")
    near_safety_deposit: int = Field(10**22, ge=0, description="Safety deposit on NEAR locks, yoctoNEAR.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.signing_key is None and self.signing_key_file is None:
            raise ValueError("QUOTE_SIGNING_KEY or QUOTE_SIGNING_KEY_FILE is required (hex of a 32-byte Ed25519 seed)")
        if self.signing_key is not None:
            try:
                private_key(self.signing_key.get_secret_value())
            except ValueError as err:
                raise ValueError(f"QUOTE_SIGNING_KEY: {err}") from None
        self._add_devnet_tokens()
        registry = self.registry()
        if self.price_source == "static":
            missing = sorted(registry.symbols() - self.prices.keys())
            if missing:
                raise ValueError(f"QUOTE_PRICES has no price for {', '.join(missing)}")
            if any(not p.is_finite() or p <= 0 for p in self.prices.values()):
                raise ValueError("QUOTE_PRICES must be positive numbers")
        elif not self.price_url:
            raise ValueError("QUOTE_PRICE_URL is required with QUOTE_PRICE_SOURCE=http")
        self._check_timelocks()
        return self

    def _add_devnet_tokens(self) -> None:
        if self.base_token_address:
            self._add_test_token(Chain.BASE, self.base_token_address)
        if self.near_token_account:
            self._add_test_token(Chain.NEAR, self.near_token_account)

    def _add_test_token(self, chain: Chain, token: str) -> None:
        entry = TokenSetting(chain=chain, token=token, symbol=self.test_token_symbol, decimals=self.test_token_decimals)
        if entry not in self.tokens:
            self.tokens.append(entry)

    def _check_timelocks(self) -> None:
        plan = self.timelock_plan()
        for side, t in (("src", plan.src), ("dst", plan.dst)):
            try:
                check_timelocks(side, common_pb2.Timelocks(**vars(t)))
            except InvalidArgument as err:
                raise ValueError(f"timelocks: {err.message}") from None
        if plan.dst.cancellation_after_s + plan.reveal_margin_s >= plan.src.cancellation_after_s:
            # A secret revealed on the destination as late as its withdrawal window allows must still leave the
            # resolver time to withdraw on the source before that lock can be cancelled.
            raise ValueError(
                "timelocks: dst.cancellation_after_s + reveal_margin_s must be earlier than src.cancellation_after_s"
            )

    def signer(self) -> QuoteSigner:
        """Signs with the key from QUOTE_SIGNING_KEY, else from QUOTE_SIGNING_KEY_FILE (read at start)."""
        if self.signing_key is not None:
            return QuoteSigner(private_key(self.signing_key.get_secret_value()))
        assert self.signing_key_file is not None
        try:
            return QuoteSigner(private_key(self.signing_key_file.read_text()))
        except (OSError, ValueError) as err:
            raise ValueError(f"QUOTE_SIGNING_KEY_FILE={self.signing_key_file}: {err}") from None

    def registry(self) -> TokenRegistry:
        return TokenRegistry(t.to_token() for t in self.tokens)

    def timelock_plan(self) -> TimelockPlan:
        return TimelockPlan(
            src=Timelocks(
                self.src_withdrawal_after_s,
                self.src_public_withdrawal_after_s,
                self.src_cancellation_after_s,
                self.src_public_cancellation_after_s,
            ),
            dst=Timelocks(
                self.dst_withdrawal_after_s,
                self.dst_public_withdrawal_after_s,
                self.dst_cancellation_after_s,
                self.dst_public_cancellation_after_s,
            ),
            reveal_margin_s=self.reveal_margin_s,
        )

    def auction_policy(self) -> AuctionPolicy:
        return AuctionPolicy(self.auction_premium_bps, self.auction_discount_bps, self.auction_duration_s)

    def fee_policy(self) -> FeePolicy:
        return FeePolicy(
            protocol_fee_bps=self.protocol_fee_bps,
            gas={
                Chain.BASE: LegGas(self.base_src_leg_gas, self.base_dst_leg_gas, self.base_gas_price),
                Chain.NEAR: LegGas(self.near_src_leg_gas, self.near_dst_leg_gas, self.near_gas_price),
            },
        )

    def swap_terms(self) -> SwapTerms:
        return SwapTerms(
            validity_s=self.validity_s,
            timelocks=self.timelock_plan(),
            lock_allowance_s=self.lock_allowance_s,
            safety_deposits={Chain.BASE: self.base_safety_deposit, Chain.NEAR: self.near_safety_deposit},
        )

    def amount_limits(self) -> dict[str, AmountLimit]:
        return {symbol: AmountLimit(limit.min, limit.max) for symbol, limit in self.limits.items()}
