"""Settings from GATEWAY_* variables, and API keys kept only as SHA-256 digests."""

from __future__ import annotations

import hashlib

import pytest
from gateway.auth import KeyRing
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
    assert settings.max_body_bytes == 65_536 and settings.ws_ping_s == 20.0 and not settings.dev_mode


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


def test_dev_mode_needs_a_deployment_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_DEV_MODE", "true")
    with pytest.raises(ValidationError, match="DEPLOYMENT_FILE"):
        GatewaySettings()
    monkeypatch.setenv("GATEWAY_NEAR_DEPLOYMENT_FILE", "/tmp/near.json")
    assert GatewaySettings().dev_mode


def test_every_setting_is_described() -> None:
    for name, field in GatewaySettings.model_fields.items():
        assert field.description, name


def test_key_ring_identifies_known_keys_only() -> None:
    ring = KeyRing([hashlib.sha256(b"hashed").hexdigest()], [SecretStr("plain")])
    assert len(ring) == 2
    assert ring.identify("plain") == hashlib.sha256(b"plain").hexdigest()
    assert ring.identify("hashed") == hashlib.sha256(b"hashed").hexdigest()
    for wrong in (None, "", "Plain", "plain ", "\ud800"):
        assert ring.identify(wrong) is None
    assert KeyRing([]).identify("anything") is None
