"""Chain service settings refuse an inclusion bound the service could not keep."""

from __future__ import annotations

from typing import Any

import pytest
from chain_base.config import ChainBaseSettings
from chain_near.config import ChainNearSettings
from pydantic import SecretStr, ValidationError

_BASE: dict[str, Any] = {
    "escrow_src": "0x" + "11" * 20,
    "escrow_dst": "0x" + "22" * 20,
    "resolver_key": SecretStr("0x" + "33" * 32),
}
_NEAR: dict[str, Any] = {
    "htlc_account": "htlc.test.near",
    "resolver_account": "resolver.test.near",
    "resolver_key": SecretStr("k"),
}


def test_base_inclusion_bound_must_exceed_the_resend_interval() -> None:
    assert ChainBaseSettings(**_BASE).inclusion_bound_s == 60
    assert ChainBaseSettings(**_BASE, inclusion_bound_s=31, tx_resend_after_s=30).inclusion_bound_s == 31
    with pytest.raises(ValidationError, match="INCLUSION_BOUND_S"):
        ChainBaseSettings(**_BASE, inclusion_bound_s=30, tx_resend_after_s=30)
    with pytest.raises(ValidationError):
        ChainBaseSettings(**_BASE, inclusion_bound_s=0)


def test_near_inclusion_bound_must_exceed_the_poll_interval() -> None:
    assert ChainNearSettings(**_NEAR).inclusion_bound_s == 20
    with pytest.raises(ValidationError, match="INCLUSION_BOUND_S"):
        ChainNearSettings(**_NEAR, inclusion_bound_s=2, poll_interval_s=2.0)
    with pytest.raises(ValidationError):
        ChainNearSettings(**_NEAR, inclusion_bound_s=0)
