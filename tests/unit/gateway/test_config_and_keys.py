"""Settings from GATEWAY_* variables, and API keys kept only as SHA-256 digests."""

from __future__ import annotations

import hashlib

import pytest
from gateway.auth import Identity, KeyRing, derived_tenant
from gateway.config import GatewaySettings
from pydantic import SecretStr, ValidationError


def test_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    digest = hashlib.sha256(b"k2").hexdigest()
    monkeypatch.setenv("GATEWAY_API_KEYS", "k1, k3")
    monkeypatch.setenv("GATEWAY_API_KEY_HASHES", f" {digest.upper()} ")
    monkeypatch.setenv("GATEWAY_CORS_ORIGINS", "http://a.example,https://b.example")
    monkeypatch.setenv("GATEWAY_RATE_LIMIT", "10/second;1000/hour")
    settings = GatewaySettings()
    assert [k.get_secret_value() for k in settings.api_keys] == ["k1", "k3"]
    assert settings.api_key_hashes == [digest]
    assert settings.cors_origins == ["http://a.example", "https://b.example"]
    assert "k1" not in repr(settings)
    assert settings.max_body_bytes == 65_536 and settings.ws_ping_s == 20.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GATEWAY_API_KEY_HASHES", "abc"),
        ("GATEWAY_RATE_LIMIT", "lots"),
        ("GATEWAY_PORT", "70000"),
        ("GATEWAY_MAX_BODY_BYTES", "0"),
    ],
)
def test_bad_values_fail_at_start(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        GatewaySettings()


def test_every_setting_is_described() -> None:
    for name, field in GatewaySettings.model_fields.items():
        assert field.description, name


def test_key_ring_identifies_known_keys_only() -> None:
    ring = KeyRing([hashlib.sha256(b"hashed").hexdigest()], [SecretStr("plain")])
    assert len(ring) == 2
    # A key without a tenant name stands for a stable tenant derived from its digest.
    assert ring.identify("plain") == Identity(derived_tenant(hashlib.sha256(b"plain").hexdigest()))
    assert ring.identify("hashed") == Identity(f"key-{hashlib.sha256(b'hashed').hexdigest()[:16]}")
    for wrong in (None, "", "Plain", "plain ", "\ud800"):
        assert ring.identify(wrong) is None
    assert KeyRing([]).identify("anything") is None


def test_keys_name_their_tenant_and_operators_are_marked(monkeypatch: pytest.MonkeyPatch) -> None:
    digest = hashlib.sha256(b"kb").hexdigest()
    monkeypatch.setenv("GATEWAY_API_KEYS", "alice:ka,plain-key")
    monkeypatch.setenv("GATEWAY_API_KEY_HASHES", f"bob:{digest.upper()},ops:{hashlib.sha256(b'ko').hexdigest()}")
    monkeypatch.setenv("GATEWAY_OPERATOR_TENANTS", "ops")
    settings = GatewaySettings()
    assert settings.api_key_hashes[0] == f"bob:{digest}"
    ring = KeyRing(settings.api_key_hashes, settings.api_keys, settings.operator_tenants)
    assert ring.identify("ka") == Identity("alice")
    assert ring.identify("alice:ka") is None
    assert ring.identify("kb") == Identity("bob")
    ops = ring.identify("ko")
    assert ops == Identity("ops", operator=True)
    assert ops.metadata() == (("x-tenant", "ops"), ("x-tenant-role", "operator"))
    assert Identity("bob").metadata() == (("x-tenant", "bob"), ("x-tenant-role", "tenant"))
    plain = ring.identify("plain-key")
    assert plain is not None and plain.tenant.startswith("key-") and not plain.operator
    assert ring.tenants == {"alice": False, "bob": False, "ops": True, plain.tenant: False}


@pytest.mark.parametrize(
    ("name", "value"),
    [("GATEWAY_OPERATOR_TENANTS", "bad name"), ("GATEWAY_API_KEY_HASHES", "bob:abc"), ("GATEWAY_ANON_RATE_LIMIT", "x")],
)
def test_bad_tenant_settings_fail_at_start(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        GatewaySettings()
