"""Protobuf of the services -> the JSON of docs/api.md (and JSON requests -> protobuf).

Replies are rendered straight from the protobuf message into plain dicts, in the field order of their models
in gateway.schemas, and encoded once by `JsonBody` (orjson): no pydantic model is built and validated again
for each reply. gateway.schemas still describes every reply (the OpenAPI document), and the unit tests check
that what these functions render is valid against those models and the same as their JSON."""

from __future__ import annotations

import json
from typing import Any, cast

import orjson
from starlette.responses import Response
from swap.chain.v1 import chain_pb2
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2
from swap.session.v1 import session_pb2

from gateway import schemas

CHAINS: dict[schemas.ChainName, common_pb2.Chain.ValueType] = {
    "base": common_pb2.CHAIN_BASE,
    "near": common_pb2.CHAIN_NEAR,
}
_CHAIN_NAMES: dict[common_pb2.Chain.ValueType, schemas.ChainName] = {v: k for k, v in CHAINS.items()}
_STATE_PREFIX = "SESSION_STATE_"
# The state names of docs/api.md by enum value; a value outside them is a fault (500), never sent on.
_STATE_NAMES: dict[session_pb2.SessionState.ValueType, schemas.StateName] = {}
for _value in session_pb2.SessionState.values():
    _name = session_pb2.SessionState.Name(_value).removeprefix(_STATE_PREFIX).lower()
    if _name in schemas.STATE_NAMES:
        _STATE_NAMES[_value] = cast(schemas.StateName, _name)

JsonObject = dict[str, Any]


class JsonBody(Response):
    """A JSON reply encoded with orjson (compact, UTF-8: the same bytes as Starlette's JSONResponse)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def chain_name(chain: common_pb2.Chain.ValueType) -> schemas.ChainName | None:
    return _CHAIN_NAMES.get(chain)


SECRET_MODES: dict[schemas.SecretModeName, session_pb2.SecretMode.ValueType] = {
    "service": session_pb2.SECRET_MODE_SERVICE,
    "maker": session_pb2.SECRET_MODE_MAKER,
}
_SECRET_MODE_NAMES = {value: name for name, value in SECRET_MODES.items()}


def state_name(state: session_pb2.SessionState.ValueType) -> schemas.StateName:
    try:
        return _STATE_NAMES[state]
    except KeyError:
        raise ValueError(f"session in an unknown state {state}") from None


def _or_none(value: str) -> str | None:
    return value or None


def _json_object(text: str) -> dict[str, Any]:
    if not text:
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def asset_pb(asset: schemas.AssetIn) -> quote_pb2.Asset:
    return quote_pb2.Asset(chain=CHAINS[asset.chain], token=asset.token)


def asset(a: quote_pb2.Asset) -> JsonObject:
    name = chain_name(a.chain)
    if name is None:
        raise ValueError(f"asset on an unknown chain {a.chain}")
    return {"chain": name, "token": a.token}


def asset_info(a: quote_pb2.AssetInfo) -> JsonObject:
    listed = asset(a.asset)
    return {
        "chain": listed["chain"],
        "token": listed["token"],
        "symbol": a.symbol,
        "decimals": a.decimals,
        "source": a.source,
        "destination": a.destination,
    }


def asset_list(assets: Any) -> JsonObject:
    return {"assets": [asset_info(a) for a in assets]}


def timelocks(t: common_pb2.Timelocks) -> JsonObject:
    return {
        "withdrawal_after_s": t.withdrawal_after_s,
        "public_withdrawal_after_s": t.public_withdrawal_after_s,
        "cancellation_after_s": t.cancellation_after_s,
        "public_cancellation_after_s": t.public_cancellation_after_s,
    }


def quote(q: quote_pb2.Quote) -> JsonObject:
    auction = q.auction
    return {
        "quote_id": q.quote_id,
        "src": asset(q.src),
        "dst": asset(q.dst),
        "src_amount": q.src_amount,
        "market_rate": q.market_rate,
        "auction": {
            "start_amount": auction.start_amount,
            "end_amount": auction.end_amount,
            "start_time": auction.start_time,
            "duration_s": auction.duration_s,
            "current_amount": auction.current_amount,
        },
        "protocol_fee": q.protocol_fee,
        "network_fee": q.network_fee,
        "slippage_bps": q.slippage_bps,
        "min_received": q.min_received,
        "issued_at": q.issued_at,
        "valid_until": q.valid_until,
        "refund_guaranteed_by": q.refund_guaranteed_by,
        "timelocks": {
            "src": timelocks(q.timelocks.src),
            "dst": timelocks(q.timelocks.dst),
            "reveal_margin_s": q.timelocks.reveal_margin_s,
        },
        "src_safety_deposit": q.src_safety_deposit,
        "dst_safety_deposit": q.dst_safety_deposit,
    }


def sign_order(s: chain_pb2.SignOrder) -> JsonObject:
    return {
        "typed_data": _json_object(s.typed_data_json),
        "token": s.token,
        "spender": s.spender,
        "allowance": s.allowance,
    }


def near_call(c: chain_pb2.NearCall) -> JsonObject:
    return {
        "contract": c.contract,
        "method": c.method,
        "args": _json_object(c.args_json),
        "deposit": c.deposit,
        "gas": c.gas,
    }


def maker_action(a: session_pb2.MakerAction) -> JsonObject | None:
    which = a.WhichOneof("action")
    if which == "sign_order":
        return {"sign_order": sign_order(a.sign_order)}
    if which == "near_call":
        prepay = near_call(a.near_prepay) if a.HasField("near_prepay") else None
        return {"near_call": near_call(a.near_call), "near_prepay": prepay}
    return None


def step(s: session_pb2.Step) -> JsonObject:
    return {
        "state": state_name(s.state),
        "at": s.at,
        "chain": chain_name(s.chain),
        "tx_hash": _or_none(s.tx_hash),
        "note": s.note,
    }


def session(s: session_pb2.Session) -> JsonObject:
    return {
        "session_id": s.session_id,
        "state": state_name(s.state),
        "src": asset(s.src),
        "dst": asset(s.dst),
        "src_amount": s.src_amount,
        "dst_amount": _or_none(s.dst_amount),
        "maker": s.maker,
        "receiver": s.receiver,
        "hashlock": s.hashlock,
        "quote": quote(s.quote),
        "maker_action": maker_action(s.maker_action) if s.HasField("maker_action") else None,
        "src_lock_id": _or_none(s.src_lock_id),
        "dst_lock_id": _or_none(s.dst_lock_id),
        "steps": [step(x) for x in s.steps],
        "error": {"reason": s.error.reason, "message": s.error.message} if s.HasField("error") else None,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "secret": _or_none(s.secret),
        "version": s.version,
        "secret_mode": _SECRET_MODE_NAMES.get(s.secret_mode, "service"),
        "pending_intent": s.pending_intent if s.pending_intent in ("execute", "cancel") else None,
        "secret_deadline": s.secret_deadline or None,
        "src_cancellation_at": s.src_cancellation_at or None,
        "dst_cancellation_at": s.dst_cancellation_at or None,
        "order_deadline": s.order_deadline,
    }


def session_list(sessions: Any, next_page_token: str) -> JsonObject:
    return {"sessions": [session(s) for s in sessions], "next_page_token": next_page_token or None}
