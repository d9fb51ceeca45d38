"""API keys: only SHA-256 digests are kept; a presented key is hashed and compared in constant time.

Each key belongs to a tenant (the owner of the sessions created with it); a key configured without a name
gets a stable one derived from its digest. Tenants listed as operators see every tenant's sessions."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass

from pydantic import SecretStr

# What a tenant name may be: it travels in gRPC metadata and Redis keys.
TENANT_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Metadata / headers the edge (the gateway, Envoy after ext_authz) sets for the services; never the client.
TENANT_HEADER = "x-tenant"
TENANT_ROLE_HEADER = "x-tenant-role"
ROLE_OPERATOR = "operator"
ROLE_TENANT = "tenant"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def derived_tenant(key_digest: str) -> str:
    """The name of a key configured without one: stable, and no hint of the key itself."""
    return f"key-{key_digest[:16]}"


@dataclass(frozen=True)
class Identity:
    """Who an accepted key stands for."""

    tenant: str
    operator: bool = False

    @property
    def role(self) -> str:
        return ROLE_OPERATOR if self.operator else ROLE_TENANT

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return ((TENANT_HEADER, self.tenant), (TENANT_ROLE_HEADER, self.role))


def split_entry(entry: str) -> tuple[str | None, str]:
    """`"tenant:value"` -> ("tenant", "value"); a plain `"value"` -> (None, "value")."""
    name, sep, value = entry.partition(":")
    if sep and TENANT_NAME.fullmatch(name) and value:
        return name, value
    return None, entry


class KeyRing:
    def __init__(
        self,
        hashes: Iterable[str],
        plain: Iterable[SecretStr] = (),
        operators: Iterable[str] = (),
    ) -> None:
        tenants: dict[str, str] = {}
        for entry in hashes:
            name, value = split_entry(entry)
            value = value.lower()
            tenants[value] = name or derived_tenant(value)
        for key in plain:
            name, value = split_entry(key.get_secret_value())
            d = digest(value)
            tenants[d] = name or derived_tenant(d)
        self._keys = [(bytes.fromhex(d), tenants[d]) for d in sorted(tenants)]
        self._operators = frozenset(operators)

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def tenants(self) -> Mapping[str, bool]:
        """Every tenant name and whether it is an operator."""
        return {tenant: tenant in self._operators for _, tenant in self._keys}

    def identify(self, key: str | None) -> Identity | None:
        """Who `key` stands for when it is one of ours, else None."""
        if not key:
            return None
        presented = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        found: str | None = None
        # Every digest is compared, so the time taken says nothing about which one matched.
        for known, tenant in self._keys:
            if hmac.compare_digest(presented, known):
                found = tenant
        if found is None:
            return None
        return Identity(found, found in self._operators)


# The identity of the request being served (set by the API guard): its calls to the services carry it.
current_identity: ContextVar[Identity | None] = ContextVar("current_identity", default=None)


def identity_metadata() -> tuple[tuple[str, str], ...]:
    found = current_identity.get()
    return found.metadata() if found is not None else ()
