"""What the swap tests share: balances on both chains, driving a session, following it to an end."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_typed_data
from py_near.account import Account as NearAccount
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2
from swap.session.v1 import session_pb2, session_pb2_grpc
from swap_devnet.stack import LocalStack
from swapctl.maker import MakerSigner, load_keys
from swapctl.verify import load_chains
from web3 import Web3

St = session_pb2.SessionState
TERMINAL = {
    St.SESSION_STATE_COMPLETED,
    St.SESSION_STATE_REFUNDED,
    St.SESSION_STATE_CANCELLED,
    St.SESSION_STATE_FAILED,
    St.SESSION_STATE_TIMEOUT,
}
AMOUNT = 10_000_000  # 10 TUSD


class Balances:
    """TUSD on both chains for the roles of a swap."""

    def __init__(self, stack: LocalStack) -> None:
        assert stack.evm is not None and stack.near is not None and stack.near_devnet is not None
        self.stack = stack
        self.evm = stack.evm
        self.near = stack.near
        self.w3 = Web3(Web3.HTTPProvider(self.evm.rpc_url))
        self.token = self.evm.token_contract(self.w3)

    def base(self, who: str) -> int:
        return int(self.token.functions.balanceOf(who).call())

    def near_tusd(self, who: str) -> int:
        assert self.stack.near_devnet is not None
        return self.stack.near_devnet.token_balance(who)

    def snapshot(self) -> dict[str, int]:
        return {
            "base_maker": self.base(self.evm.maker.address),
            "base_resolver": self.base(self.evm.resolver.address),
            "near_resolver": self.near_tusd(self.near.resolver.account_id),
            "near_receiver": self.near_tusd(self.near.receiver.account_id),
        }


async def watch_until(
    sessions: session_pb2_grpc.SessionServiceStub, session_id: str, states: set[Any], timeout: float = 60
) -> tuple[session_pb2.Session, list[Any]]:
    seen: list[Any] = []

    async def follow() -> session_pb2.Session:
        async for update in sessions.WatchSession(session_pb2.WatchSessionRequest(session_id=session_id)):
            if not seen or seen[-1] != update.session.state:
                seen.append(update.session.state)
            if update.session.state in states:
                found: session_pb2.Session = update.session
                return found
        raise AssertionError(f"stream ended in {seen}")

    return await asyncio.wait_for(follow(), timeout), seen


def sign(session: session_pb2.Session, key: str) -> bytes:
    typed = json.loads(session.maker_action.sign_order.typed_data_json)
    return bytes(Account.sign_message(encode_typed_data(full_message=typed), key).signature)


async def create_base_to_near(sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack) -> Any:
    assert stack.evm is not None and stack.near is not None
    reply = await sessions.CreateSession(
        session_pb2.CreateSessionRequest(
            src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=stack.evm.token),
            dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=stack.near.token.account_id),
            src_amount=str(AMOUNT),
            maker=stack.evm.maker.address,
            receiver=stack.near.receiver.account_id,
        )
    )
    return reply.session


async def execute_base(sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack, session: Any) -> None:
    assert stack.evm is not None
    await sessions.ExecuteSession(
        session_pb2.ExecuteSessionRequest(
            session_id=session.session_id, signature=sign(session, stack.evm.maker.private_key)
        )
    )


async def make_near_maker_calls(stack: LocalStack, action: session_pb2.MakerAction) -> list[Any]:
    """The devnet maker makes the session's NEAR calls with py-near, as a wallet would: the prepaid top-up
    first when there is one, then the lock. Returns the outcomes."""
    assert stack.near is not None
    maker = stack.near.maker
    account = NearAccount(maker.account_id, maker.private_key, stack.near.rpc_url)
    await account.startup()
    calls = [action.near_prepay, action.near_call] if action.HasField("near_prepay") else [action.near_call]
    outcomes = []
    try:
        for call in calls:
            result = await account.function_call(
                call.contract, call.method, json.loads(call.args_json), call.gas, int(call.deposit)
            )
            assert "Failure" not in (result.status or {}), (call.method, result.status)
            outcomes.append(result)
    finally:
        await account.shutdown()
    return outcomes


async def maker_step(api: httpx.AsyncClient, stack: LocalStack, session: dict[str, Any]) -> httpx.Response:
    """The maker's step of a REST session, made as swapctl --sign makes it with the devnet maker's keys (checked
    against the session first): the order signed and executed (BASE source), or executed and the NEAR calls
    made from the maker's account (NEAR source). Returns the gateway's answer to execute."""
    signer = MakerSigner(load_keys(stack.maker_keys_file), load_chains(stack.chains_file))
    path = f"/api/v1/sessions/{session['session_id']}/execute"
    action = session.get("maker_action") or {}
    if "sign_order" in action:
        return await api.post(path, json={"signature": signer.sign_order(session)})
    calls = signer.check_near_calls(session)
    executed = await api.post(path, json={})
    if executed.status_code == 200:
        await signer.near_calls(calls)
    return executed
