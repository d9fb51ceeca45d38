"""Swap secrets: drawn from the OS CSPRNG, stored only encrypted (AES-256-GCM, the session id as
associated data so a ciphertext cannot be moved to another session), decrypted only to reveal."""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12


def new_secret() -> tuple[bytes, bytes]:
    """(secret, hashlock = SHA-256(secret))."""
    secret = os.urandom(32)
    return secret, hashlib.sha256(secret).digest()


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the secret key must be 32 bytes (AES-256)")
        self._aead = AESGCM(key)

    def seal(self, session_id: str, secret: bytes) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret, session_id.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, session_id: str, token: str) -> bytes:
        raw = base64.b64decode(token)
        return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], session_id.encode())
