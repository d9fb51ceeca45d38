"""The session JSON of docs/api.md from the services' protobuf: rendered straight to dicts, and exactly what the
reply models of gateway.schemas (the OpenAPI document) describe and would have sent."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway import schemas, views
from pydantic import BaseModel
from swap.chain.v1 import chain_pb2
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2
from swap.session.v1 import session_pb2

TYPED = {"domain": {"name": "EscrowSrc", "chainId": 31337}, "primaryType": "Order", "types": {}, "message": {"a": "1"}}


def session(**changes: object) -> session_pb2.Session:
    s = session_pb2.Session(
        session_id="ab" * 16,
        state=session_pb2.SESSION_STATE_SOURCE_LOCKED,
        src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token="0x" + "11" * 20),
        dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token="token.test.near"),
        src_amount="10000000",
        maker="0x" + "22" * 20,
        receiver="receiver.test.near",
        hashlock="cd" * 32,
        quote=quote_pb2.Quote(
            quote_id="q" * 32,
            src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token="native"),
            dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token="native"),
            auction=quote_pb2.Auction(start_amount="10", end_amount="9", start_time=5, duration_s=60),
            timelocks=quote_pb2.TimelockPlan(
                src=common_pb2.Timelocks(withdrawal_after_s=2, cancellation_after_s=120), reveal_margin_s=10
            ),
        ),
        src_lock_id="0x" + "33" * 32,
        created_at=100,
        updated_at=110,
        version=4,
    )
    s.steps.append(session_pb2.Step(state=session_pb2.SESSION_STATE_INITIALIZED, at=100, note="created"))
    s.steps.append(
        session_pb2.Step(
            state=session_pb2.SESSION_STATE_SOURCE_LOCKED, at=110, chain=common_pb2.CHAIN_BASE, tx_hash="0xaa", note=""
        )
    )
    for key, value in changes.items():
        getattr(s, key).CopyFrom(value)
    return s


def test_base_source_session() -> None:
    action = session_pb2.MakerAction(
        sign_order=chain_pb2.SignOrder(
            typed_data_json=json.dumps(TYPED), token="0x" + "11" * 20, spender="0x" + "44" * 20, allowance="10000000"
        )
    )
    out = views.session(session(maker_action=action))
    assert out["state"] == "source_locked"
    assert out["src"] == {"chain": "base", "token": "0x" + "11" * 20}
    assert out["maker_action"] == {
        "sign_order": {
            "typed_data": TYPED,
            "token": "0x" + "11" * 20,
            "spender": "0x" + "44" * 20,
            "allowance": "10000000",
        }
    }
    # Unset until known: null, not "".
    assert out["dst_amount"] is None and out["dst_lock_id"] is None and out["secret"] is None and out["error"] is None
    assert out["hashlock"] == "cd" * 32 and out["version"] == 4
    assert out["steps"] == [
        {"state": "initialized", "at": 100, "chain": None, "tx_hash": None, "note": "created"},
        {"state": "source_locked", "at": 110, "chain": "base", "tx_hash": "0xaa", "note": ""},
    ]
    quote = out["quote"]
    assert quote["auction"] == {
        "start_amount": "10",
        "end_amount": "9",
        "start_time": 5,
        "duration_s": 60,
        "current_amount": "",
    }
    assert quote["timelocks"]["src"]["cancellation_after_s"] == 120 and quote["timelocks"]["reveal_margin_s"] == 10


def test_near_source_session_and_terminal_fields() -> None:
    call = chain_pb2.NearCall(
        contract="token.test.near",
        method="ft_transfer_call",
        args_json=json.dumps({"receiver_id": "htlc.test.near", "amount": "5"}),
        deposit="1",
        gas=300 * 10**12,
    )
    prepay = chain_pb2.NearCall(contract="htlc.test.near", method="deposit_native", args_json="{}", deposit="7", gas=9)
    s = session(maker_action=session_pb2.MakerAction(near_call=call, near_prepay=prepay))
    s.state = session_pb2.SESSION_STATE_REFUNDED
    s.error.CopyFrom(session_pb2.SessionError(reason="NO_TIME_TO_REVEAL", message="too late"))
    s.secret = "ef" * 32
    out = views.session(s)
    assert out["state"] == "refunded"
    assert out["maker_action"] == {
        "near_call": {
            "contract": "token.test.near",
            "method": "ft_transfer_call",
            "args": {"receiver_id": "htlc.test.near", "amount": "5"},
            "deposit": "1",
            "gas": 300 * 10**12,
        },
        "near_prepay": {"contract": "htlc.test.near", "method": "deposit_native", "args": {}, "deposit": "7", "gas": 9},
    }
    without = views.session(session(maker_action=session_pb2.MakerAction(near_call=call)))
    assert without["maker_action"]["near_prepay"] is None
    assert out["error"] == {"reason": "NO_TIME_TO_REVEAL", "message": "too late"}
    assert out["secret"] == "ef" * 32


def test_no_maker_action_is_null_and_every_state_has_a_name() -> None:
    assert views.session(session())["maker_action"] is None
    names = {views.state_name(v) for v in session_pb2.SessionState.values() if v}
    assert names == {
        "initialized",
        "executing",
        "source_locking",
        "source_locked",
        "destination_locking",
        "both_locked",
        "awaiting_secret",
        "revealing_secret",
        "completed",
        "cancelling",
        "cancelled",
        "refunding",
        "refunded",
        "failed",
        "timeout",
    }


def _conforms(model: type[BaseModel], rendered: dict[str, Any]) -> None:
    """The dict validates against the reply model (which forbids unknown fields), has its fields in the
    model's order, and encodes to the same bytes as the model's own JSON (what FastAPI sent before)."""
    parsed = model.model_validate(rendered)
    assert parsed.model_dump(mode="json") == rendered
    assert list(rendered) == list(model.model_fields)
    assert views.JsonBody(rendered).body == parsed.model_dump_json().encode()


def test_every_rendered_reply_is_what_its_model_sends() -> None:
    call = chain_pb2.NearCall(contract="htlc.test.near", method="lock", args_json='{"a": "\u00e9"}', gas=1)
    sign = chain_pb2.SignOrder(typed_data_json=json.dumps(TYPED), token="t", spender="s", allowance="1")
    variants = [
        session(),
        session(maker_action=session_pb2.MakerAction(sign_order=sign)),
        session(maker_action=session_pb2.MakerAction(near_call=call)),
        session(maker_action=session_pb2.MakerAction(near_call=call, near_prepay=call)),
    ]
    full = session(maker_action=session_pb2.MakerAction(near_call=call))
    full.error.CopyFrom(session_pb2.SessionError(reason="R", message='caf\u00e9 \u2028 <tag> "q"'))
    full.secret, full.dst_amount, full.dst_lock_id = "ef" * 32, "5", "lock"
    full.secret_mode, full.secret_deadline = session_pb2.SECRET_MODE_MAKER, 77
    full.pending_intent, full.src_cancellation_at, full.dst_cancellation_at = "cancel", 1, 2
    variants.append(full)
    for s in variants:
        _conforms(schemas.Session, views.session(s))
        _conforms(schemas.Quote, views.quote(s.quote))
    _conforms(schemas.SessionList, views.session_list(variants, ""))
    _conforms(schemas.SessionList, views.session_list([], "next"))
    info = quote_pb2.AssetInfo(asset=variants[0].src, symbol="TUSD", decimals=6, source=True, destination=False)
    _conforms(schemas.AssetList, views.asset_list([info, info]))


def test_a_state_or_chain_outside_the_api_is_a_fault_not_a_reply() -> None:
    s = session()
    s.state = session_pb2.SESSION_STATE_UNSPECIFIED
    with pytest.raises(ValueError):
        views.session(s)
    s = session()
    s.src.chain = common_pb2.CHAIN_UNSPECIFIED
    with pytest.raises(ValueError):
        views.session(s)
