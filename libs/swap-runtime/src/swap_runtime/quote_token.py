"""Signed quotes: the quote service seals a quote's terms with its Ed25519 key (libsodium, through PyNaCl) into
the quote_id it hands out, and whoever trusts that key (the session service) opens the quote_id again without
asking anyone.

A token is base64url without padding of

    version (1 byte, 1) | key id (8 bytes) | signature (64 bytes) | terms (the rest)

where the key id is the first 8 bytes of SHA-256 of the raw 32-byte public key, the terms are the bytes the
issuer chose to sign (the quote service: a serialized swap.quote.v1.Quote) and the signature covers
DOMAIN | version | key id | terms. Only the canonical spelling opens: any other character string, even one
that decodes to the same bytes, is refused, so that one token has exactly one spelling.

`python -m swap_runtime.quote_token` prints a new key pair as the two settings that carry it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import sys
from collections.abc import Iterable

from google.protobuf.message import DecodeError
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from swap.quote.v1 import quote_pb2

from swap_runtime.errors import FailedPrecondition, InvalidArgument, NotFound

VERSION = 1
DOMAIN = b"swap.quote.v1/signed-quote\x00"
KEY_ID_BYTES = 8
SIGNATURE_BYTES = 64
_HEADER = 1 + KEY_ID_BYTES
# Far above any quote (a serialized Quote is about 300 bytes): what is longer is refused before decoding.
MAX_TOKEN_CHARS = 4096
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_HEX_KEY = re.compile(r"(?:0x)?([0-9a-fA-F]{64})")


class TokenError(Exception):
    """A token that does not open: `malformed` when it is not a token at all, else its signature failed or
    its key is not trusted."""

    def __init__(self, message: str, *, malformed: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.malformed = malformed


def key_id(key: VerifyKey) -> bytes:
    return hashlib.sha256(bytes(key)).digest()[:KEY_ID_BYTES]


def public_hex(key: VerifyKey) -> str:
    return bytes(key).hex()


def _hex32(what: str, text: str) -> bytes:
    match = _HEX_KEY.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{what} must be 64 hex digits (32 bytes)")
    return bytes.fromhex(match.group(1))


def private_key(text: str) -> SigningKey:
    """An Ed25519 private key from the hex of its 32-byte seed."""
    return SigningKey(_hex32("an Ed25519 private key", text))


def public_key(text: str) -> VerifyKey:
    """An Ed25519 public key from the hex of its 32 raw bytes."""
    return VerifyKey(_hex32("an Ed25519 public key", text))


def new_key_pair() -> tuple[str, str]:
    """(private seed hex, public key hex) of a fresh key."""
    key = SigningKey.generate()
    return bytes(key).hex(), public_hex(key.verify_key)


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(token: str) -> bytes:
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenError(f"longer than any quote id ({MAX_TOKEN_CHARS} characters)", malformed=True)
    if not _BASE64URL.fullmatch(token):
        raise TokenError("not a signed quote (base64url expected)", malformed=True)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("not a signed quote (base64url expected)", malformed=True) from None
    # Unused low bits of the last character would let several spellings decode to the same bytes.
    if _encode(raw) != token:
        raise TokenError("not a signed quote (not canonical base64url)", malformed=True)
    return raw


class QuoteSigner:
    def __init__(self, key: SigningKey) -> None:
        self._key = key
        self.public_key = key.verify_key
        self.key_id = key_id(self.public_key)
        self._header = bytes([VERSION]) + self.key_id

    def seal(self, terms: bytes) -> str:
        signature = self._key.sign(DOMAIN + self._header + terms).signature
        return _encode(self._header + signature + terms)


class QuoteVerifier:
    """Opens tokens signed by any of its trusted keys (more than one while a key is being rotated)."""

    def __init__(self, keys: Iterable[VerifyKey]) -> None:
        self._keys = {key_id(k): k for k in keys}
        if not self._keys:
            raise ValueError("a verifier needs at least one trusted public key")

    def key_ids(self) -> list[str]:
        return [k.hex() for k in self._keys]

    def open(self, token: str) -> bytes:
        """The signed terms; raises TokenError when the token is malformed, from an untrusted key or altered."""
        raw = _decode(token)
        if len(raw) <= _HEADER + SIGNATURE_BYTES:
            raise TokenError("not a signed quote (too short)", malformed=True)
        if raw[0] != VERSION:
            raise TokenError(f"not a signed quote (unknown version {raw[0]})", malformed=True)
        kid = raw[1:_HEADER]
        key = self._keys.get(kid)
        if key is None:
            raise TokenError(f"signed with key {kid.hex()}, which is not trusted")
        signature, terms = raw[_HEADER : _HEADER + SIGNATURE_BYTES], raw[_HEADER + SIGNATURE_BYTES :]
        try:
            key.verify(DOMAIN + raw[:_HEADER] + terms, signature)
        except BadSignatureError:
            raise TokenError("the signature does not verify: the quote was altered") from None
        return terms


def open_quote(verifier: QuoteVerifier, token: str) -> quote_pb2.Quote:
    """The signed quote a quote_id carries, with the quote_id it came under (the token itself).

    A quote_id that is not a token at all is INVALID_ARGUMENT (field quote_id); one that does not open with a
    trusted key, or whose bytes were altered, was never issued by a trusted quote service: NOT_FOUND,
    QUOTE_NOT_FOUND, naming the field. Whoever holds it has to quote again either way."""
    try:
        terms = verifier.open(token)
        quote = quote_pb2.Quote.FromString(terms)
    except TokenError as err:
        if err.malformed:
            raise InvalidArgument("quote_id", err.message) from None
        raise NotFound(
            f"quote_id: no such quote: {err.message}", reason="QUOTE_NOT_FOUND", metadata={"field": "quote_id"}
        ) from None
    except DecodeError:
        # Signed by a trusted key yet not a quote: never issued as one.
        raise NotFound(
            "quote_id: no such quote: the signed terms are not a quote",
            reason="QUOTE_NOT_FOUND",
            metadata={"field": "quote_id"},
        ) from None
    # Signed under its serial; known by the token.
    quote.quote_id = token
    return quote


def check_valid(quote: quote_pb2.Quote, now: float) -> None:
    """A quote binds a session until its valid_until second (by the caller's clock, not a store's expiry)."""
    if now >= quote.valid_until:
        raise FailedPrecondition(
            f"quote_id: the quote expired at {quote.valid_until}; get a new one",
            reason="QUOTE_EXPIRED",
            metadata={"field": "quote_id"},
        )


def main() -> None:
    seed, public = new_key_pair()
    sys.stdout.write(f"QUOTE_SIGNING_KEY={seed}\nSESSION_QUOTE_PUBLIC_KEYS={public}\n")


if __name__ == "__main__":
    main()
