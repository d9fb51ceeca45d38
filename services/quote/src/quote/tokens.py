"""The tokens the service prices, keyed by (chain, token)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from quote.model import NATIVE, Chain, Token


def _key(chain: Chain, token: str) -> tuple[Chain, str]:
    # EVM addresses are case-insensitive (EIP-55 only adds a checksum); NEAR account ids are lowercase.
    return (chain, token.lower() if chain is Chain.BASE else token)


def _traits(token: Token) -> tuple[str, int, bool, bool]:
    return (token.symbol, token.decimals, token.source, token.destination)


class TokenRegistry:
    def __init__(self, tokens: Iterable[Token]) -> None:
        self._tokens: dict[tuple[Chain, str], Token] = {}
        for token in tokens:
            key = _key(token.chain, token.token)
            known = self._tokens.get(key)
            if known is None:
                self._tokens[key] = token
            elif _traits(known) != _traits(token):
                raise ValueError(f"token {token.token} on {token.chain} is registered twice, differently")
        for chain in Chain:
            if (chain, NATIVE) not in self._tokens:
                raise ValueError(f"the registry needs the native token of {chain} (network fees are paid in it)")

    def find(self, chain: Chain, token: str) -> Token | None:
        return self._tokens.get(_key(chain, token))

    def native(self, chain: Chain) -> Token:
        return self._tokens[(chain, NATIVE)]

    def symbols(self) -> set[str]:
        return {t.symbol for t in self._tokens.values()}

    def __iter__(self) -> Iterator[Token]:
        return iter(self._tokens.values())
