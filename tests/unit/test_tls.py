"""Transport settings: TLS from a certificate directory, plaintext only when asked for, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from session.config import SessionSettings
from swap_devnet.pki import issue_all
from swap_runtime.quote_token import new_key_pair
from swap_runtime.tls import Tls, TransportConfigError, parse_identities, transport

_, QUOTE_KEY = new_key_pair()


def test_a_service_with_neither_certificates_nor_the_dev_flag_refuses_to_start() -> None:
    with pytest.raises(TransportConfigError, match=r"SESSION_TLS_DIR is required.*SESSION_PLAINTEXT=true"):
        SessionSettings(dev_mode=True, quote_public_keys=[QUOTE_KEY]).transport()


def test_plaintext_only_when_asked_for() -> None:
    assert SessionSettings(dev_mode=True, plaintext=True, quote_public_keys=[QUOTE_KEY]).transport() is None


def test_a_certificate_directory_is_read_whole(tmp_path: Path) -> None:
    issued = issue_all(tmp_path, identities=("session",))["session"]
    tls = transport("SESSION_", issued.directory, plaintext=True)
    assert isinstance(tls, Tls)
    assert tls.cert.startswith(b"-----BEGIN CERTIFICATE-----")
    assert tls.ca == (tmp_path / "ca" / "ca.crt").read_bytes()
    issued.key.unlink()
    with pytest.raises(TransportConfigError, match=r"tls\.key"):
        transport("SESSION_", issued.directory, plaintext=False)


def test_private_keys_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    issued = issue_all(tmp_path)
    for item in issued.values():
        assert item.key.stat().st_mode & 0o777 == 0o600, item.identity
    assert (tmp_path / "ca" / "ca.key").stat().st_mode & 0o777 == 0o600


def test_allowed_callers() -> None:
    assert parse_identities(" session, operator ,") == {"session", "operator"}
    assert parse_identities("") == frozenset()
