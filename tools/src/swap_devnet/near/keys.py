"""ed25519 keys in NEAR's text forms: `ed25519:<base58 public key>` and `ed25519:<base58 of seed + public>`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import base58
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

ED25519_PREFIX = "ed25519:"
ED25519_KEY_TYPE = 0


def b58encode(data: bytes) -> str:
    return base58.b58encode(data).decode("ascii")


def b58decode(text: str) -> bytes:
    return base58.b58decode(text.encode("ascii"))


def crypto_hash(data: bytes) -> bytes:
    """NEAR's CryptoHash: SHA-256."""
    return hashlib.sha256(data).digest()


def encode_public_key(public_key: bytes) -> str:
    return ED25519_PREFIX + b58encode(public_key)


def decode_public_key(text: str) -> bytes:
    """Accepts `ed25519:<base58>` and bare base58 (py-near sends the latter in view_access_key)."""
    raw = b58decode(text.removeprefix(ED25519_PREFIX))
    if len(raw) != 32:
        raise ValueError(f"an ed25519 public key has 32 bytes, got {len(raw)}")
    return raw


def encode_signature(signature: bytes) -> str:
    return ED25519_PREFIX + b58encode(signature)


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        VerifyKey(public_key).verify(message, signature)
    except (BadSignatureError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class KeyPair:
    seed: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        return cls(bytes(SigningKey.generate()))

    @classmethod
    def from_phrase(cls, phrase: str) -> KeyPair:
        """A deterministic key, so that a devnet restarted with the same seed keeps the same keys."""
        return cls(crypto_hash(phrase.encode()))

    @classmethod
    def from_secret(cls, secret: str) -> KeyPair:
        raw = b58decode(secret.removeprefix(ED25519_PREFIX))
        if len(raw) not in (32, 64):
            raise ValueError("an ed25519 secret key has 32 (seed) or 64 (seed + public key) bytes")
        return cls(raw[:32])

    @property
    def public_key(self) -> bytes:
        return bytes(SigningKey(self.seed).verify_key)

    @property
    def public_key_text(self) -> str:
        return encode_public_key(self.public_key)

    @property
    def secret_key_text(self) -> str:
        """The 64-byte form near-cli and py-near store: seed followed by the public key."""
        return ED25519_PREFIX + b58encode(self.seed + self.public_key)

    def sign(self, message: bytes) -> bytes:
        return SigningKey(self.seed).sign(message).signature
