"""The maker's own check of the destination lock, read straight from the destination chain's RPC.

In secret mode "maker" the secret is released only when the destination lock, as the chain itself reports
it, pays what the maker asked for: the hashlock of the maker's secret, the receiver and token the maker
named, at least the quote's minimum, the quoted timelocks, final, and with time left to withdraw. Nothing
here trusts the orchestrator: the RPC endpoints and contract addresses come from the maker's own chains
file (docs/cli.md, "Chains file"):

    {"base": {"rpc_url": "http://127.0.0.1:8545", "escrow_dst": "0x...", "confirmations": 2},
     "near": {"rpc_url": "http://127.0.0.1:3030", "htlc": "htlc.test.near"}}
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from swapctl.errors import CliError, ExitCode

Json = dict[str, Any]

# EscrowBase.getEscrow(bytes32): keccak256("getEscrow(bytes32)")[:4]; the reply is the Escrow struct,
# thirteen 32-byte words (all its fields are static).
GET_ESCROW = "0xf023b811"
_BASE_STATES = {0: "absent", 1: "active", 2: "withdrawn", 3: "cancelled"}
_NEAR_STATES = {"active": "active", "withdrawn": "withdrawn", "refunded": "cancelled"}
_NS = 1_000_000_000
ZERO_ADDRESS = "0x" + "0" * 40
DEFAULT_MIN_TIME_LEFT_S = 20


@dataclass(frozen=True)
class ChainAccess:
    rpc_url: str
    contract: str  # EscrowDst address (BASE) / HTLC account (NEAR)
    confirmations: int = 1
    chain_id: int | None = None  # BASE: the chain the maker's order must be for (optional)


def load_chains(path: Path) -> dict[str, ChainAccess]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CliError(f"cannot read the chains file {path}: {e}", ExitCode.USAGE) from e
    chains: dict[str, ChainAccess] = {}
    try:
        if "base" in data:
            base = data["base"]
            chains["base"] = ChainAccess(
                str(base["rpc_url"]),
                str(base["escrow_dst"]),
                int(base.get("confirmations", 2)),
                int(base["chain_id"]) if base.get("chain_id") is not None else None,
            )
        if "near" in data:
            near = data["near"]
            chains["near"] = ChainAccess(str(near["rpc_url"]), str(near["htlc"]))
    except (KeyError, TypeError, ValueError) as e:
        raise CliError(f"the chains file {path} lacks {e}: see docs/cli.md, 'Chains file'", ExitCode.USAGE) from e
    return chains


@dataclass(frozen=True)
class DestinationLock:
    """What the destination chain says of one lock."""

    state: str  # absent / active / withdrawn / cancelled
    hashlock: str = ""
    token: str = ""
    amount: int = 0
    beneficiary: str = ""
    timelocks: tuple[int, int, int, int] = (0, 0, 0, 0)  # seconds after the lock
    withdrawal_at: int = 0
    cancellation_at: int = 0
    final: bool = False
    chain_now: int = 0


class ChainReader:
    """JSON-RPC reads of one destination lock."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def _rpc(self, url: str, method: str, params: Any) -> Any:
        try:
            reply = await self._client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
            body = reply.json()
        except (httpx.HTTPError, ValueError) as e:
            raise CliError(
                f"the destination chain's RPC {url} did not answer {method}: {e}", ExitCode.UNREACHABLE
            ) from e
        if "error" in body:
            raise CliError(f"the destination chain's RPC {url} refused {method}: {body['error']}", ExitCode.SERVER)
        return body.get("result")

    async def read(self, chain: str, access: ChainAccess, lock_id: str) -> DestinationLock:
        if chain == "base":
            return await self._read_base(access, lock_id)
        return await self._read_near(access, lock_id)

    async def _read_base(self, access: ChainAccess, lock_id: str) -> DestinationLock:
        head_block = await self._rpc(access.rpc_url, "eth_getBlockByNumber", ["latest", False])
        head, now = int(head_block["number"], 16), int(head_block["timestamp"], 16)
        call = {"to": access.contract, "data": GET_ESCROW + lock_id.removeprefix("0x").rjust(64, "0")}
        latest = _escrow(await self._rpc(access.rpc_url, "eth_call", [call, hex(head)]))
        # Final: the same lock is already there `confirmations - 1` blocks below the head.
        deep = hex(max(head - access.confirmations + 1, 0))
        settled = _escrow(await self._rpc(access.rpc_url, "eth_call", [call, deep]))
        if latest is None:
            return DestinationLock(state="absent", chain_now=now)
        words, state = latest
        locked_at = words[11]
        timelocks = (words[7], words[8], words[9], words[10])
        return DestinationLock(
            state=state,
            hashlock=f"{words[6]:064x}",
            token=_address(words[3]),
            amount=words[4],
            beneficiary=_address(words[1]),
            timelocks=timelocks,
            withdrawal_at=locked_at + timelocks[0],
            cancellation_at=locked_at + timelocks[2],
            final=settled is not None and settled[0][:12] == words[:12],
            chain_now=now,
        )

    async def _read_near(self, access: ChainAccess, lock_id: str) -> DestinationLock:
        block = await self._rpc(access.rpc_url, "block", {"finality": "final"})
        now = int(block["header"]["timestamp"]) // _NS
        lock = await self._near_lock(access, lock_id, "final")
        final = lock is not None
        if lock is None:
            lock = await self._near_lock(access, lock_id, "optimistic")
        if lock is None:
            return DestinationLock(state="absent", chain_now=now)
        tl = lock["timelocks"]
        offsets = (
            int(tl["withdrawal"]),
            int(tl["public_withdrawal"]),
            int(tl["cancellation"]),
            int(tl["public_cancellation"]),
        )
        locked_at = int(lock["locked_at"])
        return DestinationLock(
            state=_NEAR_STATES.get(str(lock["state"]), str(lock["state"])),
            hashlock=str(lock["hashlock"]).lower(),
            token=str(lock["token"]),
            amount=int(lock["amount"]),
            beneficiary=str(lock["beneficiary"]),
            timelocks=(offsets[0] // _NS, offsets[1] // _NS, offsets[2] // _NS, offsets[3] // _NS),
            withdrawal_at=(locked_at + offsets[0]) // _NS,
            cancellation_at=(locked_at + offsets[2]) // _NS,
            final=final,
            chain_now=now,
        )

    async def _near_lock(self, access: ChainAccess, lock_id: str, finality: str) -> Json | None:
        args = base64.b64encode(json.dumps({"lock_id": lock_id}).encode()).decode()
        result = await self._rpc(
            access.rpc_url,
            "query",
            {
                "request_type": "call_function",
                "finality": finality,
                "account_id": access.contract,
                "method_name": "get_lock",
                "args_base64": args,
            },
        )
        value = json.loads(bytes(result["result"]).decode()) if result and result.get("result") else None
        return value if isinstance(value, dict) else None


def _escrow(raw: str | None) -> tuple[list[int], str] | None:
    data = bytes.fromhex((raw or "0x").removeprefix("0x"))
    if len(data) < 13 * 32:
        return None
    words = [int.from_bytes(data[i * 32 : (i + 1) * 32], "big") for i in range(13)]
    state = _BASE_STATES.get(words[12], "unknown")
    return None if state == "absent" else (words, state)


def _address(word: int) -> str:
    return f"0x{word:040x}"


def _same_token(chain: str, seen: str, wanted: str) -> bool:
    if chain == "base":
        want = ZERO_ADDRESS if wanted == "native" else wanted
        return seen.lower() == want.lower()
    return seen == wanted


def problems(
    lock: DestinationLock, session: Json, held: Any, min_time_left_s: int = DEFAULT_MIN_TIME_LEFT_S
) -> list[str]:
    """Every way the destination lock falls short of what the maker asked for; empty when the secret may go."""
    chain = str(held.dst_chain)
    if lock.state != "active":
        return [f"the destination lock is {lock.state}, not active"]
    found: list[str] = []
    if lock.hashlock.lower() != str(held.hashlock).lower():
        found.append("its hashlock is not the hash of your secret")
    receiver_ok = (
        lock.beneficiary.lower() == str(held.receiver).lower() if chain == "base" else lock.beneficiary == held.receiver
    )
    if not receiver_ok:
        found.append(f"it pays {lock.beneficiary}, not your receiver {held.receiver}")
    if not _same_token(chain, lock.token, str(held.dst_token)):
        found.append(f"it locks token {lock.token}, not {held.dst_token}")
    quote = session.get("quote") or {}
    minimum = int(quote.get("min_received") or 0)
    if lock.amount < minimum or minimum <= 0:
        found.append(f"it locks {lock.amount}, less than the quoted minimum {minimum}")
    plan = (quote.get("timelocks") or {}).get("dst") or {}
    agreed = tuple(
        int(plan.get(key, -1))
        for key in (
            "withdrawal_after_s",
            "public_withdrawal_after_s",
            "cancellation_after_s",
            "public_cancellation_after_s",
        )
    )
    if lock.timelocks != agreed:
        found.append(f"its timelocks {lock.timelocks} are not the quoted {agreed}")
    if not lock.final:
        found.append("it is not final yet")
    left = lock.cancellation_at - lock.chain_now
    if left < min_time_left_s:
        found.append(f"only {left} s are left before it can be cancelled (at least {min_time_left_s} s needed)")
    return found
