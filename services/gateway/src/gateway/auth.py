"""API keys: only SHA-256 digests are kept; a presented key is hashed and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from pydantic import SecretStr


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class KeyRing:
    def __init__(self, hashes: Iterable[str], plain: Iterable[SecretStr] = ()) -> None:
        digests = {h.lower() for h in hashes} | {digest(k.get_secret_value()) for k in plain}
        self._digests = [bytes.fromhex(d) for d in sorted(digests)]

    def __len__(self) -> int:
        return len(self._digests)

    def identify(self, key: str | None) -> str | None:
        """The digest (hex) of `key` when it is one of ours, which then stands for the caller; else None."""
        if not key:
            return None
        presented = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        found = False
        # Every digest is compared, so the time taken says nothing about which one matched.
        for known in self._digests:
            found |= hmac.compare_digest(presented, known)
        return presented.hex() if found else None
