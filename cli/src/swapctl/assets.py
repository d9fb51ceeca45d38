"""The gateway's token list (GET /api/v1/assets): what SRC and DST may name, which side of a swap each token
can be on, and the decimals amounts are typed and shown with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from swapctl.units import NATIVE, InputError

Side = Literal["src", "dst"]
_ROLE = {"src": "what the maker pays (a swap's source)", "dst": "what the receiver gets (a swap's destination)"}


@dataclass(frozen=True)
class AssetInfo:
    chain: str
    token: str  # ERC-20 address / NEP-141 account id, or "native"
    symbol: str
    decimals: int
    source: bool
    destination: bool

    @property
    def asset(self) -> dict[str, str]:
        return {"chain": self.chain, "token": self.token}

    def can_be(self, side: Side) -> bool:
        return self.source if side == "src" else self.destination

    def label(self) -> str:
        """`base:TUSD (0x5FbD…0aa3)`, `near:NEAR` for a native: what a user can type, and what it stands for."""
        if self.token == NATIVE:
            return f"{self.chain}:{self.symbol}"
        return f"{self.chain}:{self.symbol} ({_short(self.token)})"


def _short(token: str) -> str:
    return f"{token[:6]}…{token[-4:]}" if token.startswith("0x") and len(token) > 14 else token


def _key(chain: str, token: str) -> tuple[str, str]:
    # EVM addresses are case-insensitive; NEAR account ids are lower case.
    return (chain, token.lower())


class AssetBook:
    def __init__(self, assets: list[AssetInfo]) -> None:
        self.assets = assets
        self._by_token = {_key(a.chain, a.token): a for a in assets}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> AssetBook:
        found: list[AssetInfo] = []
        for item in body.get("assets") or []:
            if not isinstance(item, dict):
                continue
            try:
                found.append(
                    AssetInfo(
                        chain=str(item["chain"]),
                        token=str(item["token"]),
                        symbol=str(item.get("symbol") or "?"),
                        decimals=int(item["decimals"]),
                        source=bool(item.get("source")),
                        destination=bool(item.get("destination")),
                    )
                )
            except (KeyError, TypeError, ValueError):
                continue
        return cls(found)

    def find(self, asset: object) -> AssetInfo | None:
        """The listed token of a quote's or session's asset ({chain, token})."""
        if not isinstance(asset, dict):
            return None
        return self._by_token.get(_key(str(asset.get("chain", "")), str(asset.get("token", ""))))

    def decimals(self, asset: object) -> int | None:
        """Display decimals; None (amounts shown in base units) for a token the list does not hold."""
        found = self.find(asset)
        return found.decimals if found else None

    def resolve(self, asset: dict[str, str], side: Side, typed: str) -> AssetInfo:
        """An asset as parsed from CHAIN[:TOKEN] (`typed`): the token a symbol (TUSD, ETH, NEAR), an address /
        account id, or `native`; it must be able to be on `side`."""
        chain, token = asset["chain"], asset["token"]
        found = self._match(chain, token, typed)
        if not found.can_be(side):
            if found.chain == "base" and found.token == NATIVE and side == "src":
                reason = "BASE source locks hold ERC-20 tokens only"
            else:
                reason = f"the gateway quotes it only as a {'destination' if side == 'src' else 'source'}"
            raise InputError(
                f"{typed}: {found.symbol} on {found.chain} cannot be {_ROLE[side]}: {reason}; {self.choices(side)}"
            )
        return found

    def _match(self, chain: str, token: str, text: str) -> AssetInfo:
        exact = self._by_token.get(_key(chain, token))
        if exact is not None:
            return exact
        named = [a for a in self.assets if a.chain == chain and a.symbol.lower() == token.lower()]
        if len(named) == 1:
            return named[0]
        if named:
            tokens = ", ".join(f"{chain}:{a.token}" for a in named)
            raise InputError(f"{text}: several tokens on {chain} are called {named[0].symbol}; name one: {tokens}")
        raise InputError(f"{text} is not a token the gateway quotes on {chain}; {self.choices(None)}")

    def choices(self, side: Side | None) -> str:
        """What can be typed, for an error message."""
        if side is None:
            listed = [a.label() for a in self.assets]
            what = "quoted"
        else:
            listed = [a.label() for a in self.assets if a.can_be(side)]
            what = "can be swapped from" if side == "src" else "can be swapped to"
        return f"{what}: {', '.join(listed) or 'nothing (the gateway lists no tokens)'} (swapctl assets)"
