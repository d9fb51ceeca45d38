"""<PREFIX>_SETTINGS_FILE: a service's settings from a dotenv file (what the deploy commands write), the
environment winning, a name the service does not know refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from chain_base.config import ChainBaseSettings
from pydantic import ValidationError

ESCROW_SRC = "0x" + "11" * 20
ESCROW_DST = "0x" + "22" * 20


@pytest.fixture
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CHAIN_BASE_RPC_URL", "CHAIN_BASE_CHAIN_ID", "CHAIN_BASE_ESCROW_SRC", "CHAIN_BASE_RESOLVER_KEY"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "chain-base.env"
    path.write_text(
        "CHAIN_BASE_RPC_URL=http://127.0.0.1:8545\n"
        "CHAIN_BASE_CHAIN_ID=84532\n"
        f"CHAIN_BASE_ESCROW_SRC={ESCROW_SRC}\n"
        f"CHAIN_BASE_ESCROW_DST={ESCROW_DST}\n"
        f"CHAIN_BASE_RESOLVER_KEY=0x{'33' * 32}\n"
    )
    monkeypatch.setenv("CHAIN_BASE_SETTINGS_FILE", str(path))
    return path


def test_settings_come_from_the_file_and_the_environment_wins(
    settings_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ChainBaseSettings()
    assert (settings.chain_id, settings.escrow_src, settings.escrow_dst) == (84532, ESCROW_SRC, ESCROW_DST)
    assert settings.resolver_private_key() == "0x" + "33" * 32
    monkeypatch.setenv("CHAIN_BASE_CHAIN_ID", "8453")
    assert ChainBaseSettings().chain_id == 8453


def test_a_name_the_service_does_not_know_is_refused(settings_file: Path) -> None:
    settings_file.write_text(settings_file.read_text() + "CHAIN_BASE_ESCROW=0x1\n")
    with pytest.raises(ValidationError, match="chain_base_escrow"):
        ChainBaseSettings()


def test_a_missing_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAIN_BASE_SETTINGS_FILE", str(tmp_path / "nowhere.env"))
    with pytest.raises(ValueError, match=r"CHAIN_BASE_SETTINGS_FILE=.*nowhere\.env: no such file"):
        ChainBaseSettings()
