"""The checker: after the nemesis stops and chain time has passed every window, what both chains and the
session store say must add up.

Invariants (each violation names the sessions or accounts involved):
- `not_ended`: every session is completed, refunded, cancelled, failed or timeout.
- `token_balance`: for every account on both chains (makers, receivers, the resolver) the token balance is
  its starting balance plus exactly what the ended sessions moved: a completed swap moves `src_amount` from
  the maker to the resolver and `dst_amount` from the resolver to the receiver; any other end moves nothing.
- `native_balance`: native balances change by exactly the gas and deposits of the account's own transactions
  (BASE: every transaction's fee from its receipt; NEAR: the tokens burnt by the transaction and its
  receipts, deposits kept by the contract called, and the HTLC's tombstone fee of each ended lock), found
  by scanning every block of the run.
- `lock_left_active` / `lock_state`: every lock a session announced has ended, withdrawn for a completed
  swap and cancelled otherwise: a refunded swap's secret never reached a chain.
- `sent_twice`: no lock, withdrawal or cancellation of one lock was sent in two transactions.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
from swap.session.v1 import session_pb2, session_pb2_grpc
from web3 import Web3
from web3.exceptions import BlockNotFound
from web3.types import RPCEndpoint

from swap_devnet.chaos.workload import ENDED
from swap_devnet.evm import increase_time
from swap_devnet.near.process import view_params, view_result
from swap_devnet.stack import LocalStack

log = logging.getLogger(__name__)
St = session_pb2.SessionState
CHAINS = {1: "base", 2: "near"}
# EscrowBase selectors of the calls that change a lock, keyed by the lock id they carry first.
_BASE_STEPS = {
    Web3.keccak(text="withdraw(bytes32,bytes32)")[:4].hex(): "withdraw",
    Web3.keccak(text="publicWithdraw(bytes32,bytes32)")[:4].hex(): "withdraw",
    Web3.keccak(text="cancel(bytes32)")[:4].hex(): "cancel",
    Web3.keccak(text="publicCancel(bytes32)")[:4].hex(): "cancel",
}
_GET_ESCROW = Web3.keccak(text="getEscrow(bytes32)")[:4].hex()
_BASE_LOCK_STATES = {0: "absent", 1: "active", 2: "withdrawn", 3: "cancelled"}


@dataclass
class Violation:
    kind: str
    detail: str
    sessions: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "detail": self.detail}
        if self.sessions:
            out["sessions"] = self.sessions
        return out


def state_name(state: int) -> str:
    return str(session_pb2.SessionState.Name(state)).removeprefix("SESSION_STATE_").lower()  # type: ignore[arg-type]


async def all_sessions(stack: LocalStack) -> list[session_pb2.Session]:
    """Every session in the store (an internal caller sees all tenants'), newest first."""
    async with stack.channel("session") as channel:
        stub = session_pb2_grpc.SessionServiceStub(channel)
        found: list[session_pb2.Session] = []
        token = ""
        while True:
            reply = await stub.ListSessions(
                session_pb2.ListSessionsRequest(page_size=100, page_token=token), timeout=30
            )
            found += list(reply.sessions)
            token = reply.next_page_token
            if not token:
                return found


async def drain(stack: LocalStack, timeout_s: float, step_s: int = 120) -> list[session_pb2.Session]:
    """Moves both chains' clocks ahead, `step_s` at a time, until every session has ended (or `timeout_s`)."""
    assert stack.evm is not None and stack.near_devnet is not None
    w3 = Web3(Web3.HTTPProvider(stack.evm.rpc_url))
    deadline = time.monotonic() + timeout_s
    while True:
        sessions = await all_sessions(stack)
        open_ = [s for s in sessions if s.state not in ENDED]
        if not open_ or time.monotonic() > deadline:
            return sessions
        log.info("drain: %d sessions open (%s)", len(open_), dict(Counter(state_name(s.state) for s in open_)))
        await asyncio.to_thread(increase_time, w3, step_s)
        await asyncio.to_thread(stack.near_devnet.fast_forward, delta_seconds=step_s)
        await asyncio.sleep(2)


class Chains:
    """Reads of both chains for the checker: balances, locks, and every transaction of the run."""

    def __init__(self, stack: LocalStack) -> None:
        assert stack.evm is not None and stack.near is not None and stack.anvil is not None
        self.stack = stack
        self.evm = stack.evm
        self.near = stack.near
        # The chains themselves, not the proxies the nemesis cuts.
        self.base_url = stack.anvil.rpc_url
        self.near_url = stack.near.rpc_url
        self.w3 = Web3(Web3.HTTPProvider(self.base_url))
        self.token = self.evm.token_contract(self.w3)
        self.http = httpx.Client(timeout=30)
        self.missing_blocks: list[int] = []  # BASE blocks of the run the node no longer serves: fees unchecked

    def near_rpc(self, method: str, params: Any) -> Any:
        body = self.http.post(
            self.near_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        ).json()
        if "error" in body:
            raise RuntimeError(f"NEAR {method}: {body['error']}")
        return body["result"]

    def near_view(self, contract: str, method: str, args: dict[str, Any]) -> Any:
        return view_result(contract, method, self.near_rpc("query", view_params(contract, method, args)))

    def heads(self) -> dict[str, int]:
        return {
            "base": self.w3.eth.block_number,
            "near": int(self.near_rpc("block", {"finality": "optimistic"})["header"]["height"]),
        }

    def balances(self, accounts: dict[str, list[str]]) -> dict[str, dict[str, dict[str, int]]]:
        out: dict[str, dict[str, dict[str, int]]] = {"base": {}, "near": {}}
        for address in accounts["base"]:
            checksum = Web3.to_checksum_address(address)
            out["base"][address] = {
                "token": int(self.token.functions.balanceOf(checksum).call()),
                "native": int(self.w3.eth.get_balance(checksum)),
            }
        for account in accounts["near"]:
            view = self.near_rpc(
                "query", {"request_type": "view_account", "finality": "optimistic", "account_id": account}
            )
            prepaid = self.near_view(self.near.htlc_id, "native_balance_of", {"account_id": account})
            out["near"][account] = {
                "token": int(self.near_view(self.near.token_id, "ft_balance_of", {"account_id": account}) or 0),
                # Native held on the HTLC (prepaid safety deposits) is still the account's.
                "native": int(view["amount"]) + int(prepaid or 0),
            }
        return out

    def base_lock_state(self, lock_id: str, contract: str) -> str:
        call = {
            "to": contract,
            "data": "0x" + _GET_ESCROW.removeprefix("0x") + lock_id.removeprefix("0x").rjust(64, "0"),
        }
        raw = bytes(self.w3.eth.call(call))  # type: ignore[arg-type]
        if len(raw) < 13 * 32:
            return "absent"
        return _BASE_LOCK_STATES.get(int.from_bytes(raw[12 * 32 : 13 * 32], "big"), "unknown")

    def near_lock_state(self, lock_id: str) -> str:
        lock = self.near_view(self.near.htlc_id, "get_lock", {"lock_id": lock_id})
        if not isinstance(lock, dict):
            return "absent"
        return {"refunded": "cancelled"}.get(str(lock["state"]), str(lock["state"]))

    def base_transactions(self, first: int, last: int) -> list[dict[str, Any]]:
        """Every transaction mined in blocks first..last of the canonical chain, with its receipt."""
        out: list[dict[str, Any]] = []
        for number in range(first, last + 1):
            try:
                block = self.w3.eth.get_block(number, full_transactions=True)
            except BlockNotFound:
                self.missing_blocks.append(number)
                continue
            receipts = self.w3.provider.make_request(RPCEndpoint("eth_getBlockReceipts"), [hex(number)])["result"]
            by_hash = {r["transactionHash"]: r for r in receipts}
            for tx in block["transactions"]:
                assert not isinstance(tx, bytes)
                receipt = by_hash[tx["hash"].to_0x_hex()]
                out.append(
                    {
                        "hash": tx["hash"].to_0x_hex(),
                        "from": str(tx["from"]),
                        "to": str(tx.get("to") or ""),
                        "input": tx["input"].to_0x_hex(),
                        "value": int(tx["value"]),
                        "fee": int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16),
                        "status": int(receipt["status"], 16),
                    }
                )
        return out

    def near_transactions(self, first: int, last: int, signers: set[str]) -> list[dict[str, Any]]:
        """The transactions of `signers` in blocks first..last, with their whole outcome."""
        out: list[dict[str, Any]] = []
        for height in range(first, last + 1):
            try:
                chunk = self.near_rpc("chunk", {"block_id": height, "shard_id": 0})
            except RuntimeError:
                continue  # a height without a block (fast-forwarded)
            for tx in chunk["transactions"]:
                if tx["signer_id"] in signers:
                    status = self.near_rpc(
                        "EXPERIMENTAL_tx_status", {"tx_hash": tx["hash"], "sender_account_id": tx["signer_id"]}
                    )
                    out.append({"tx": tx, "status": status})
        return out


def expected_token_moves(sessions: list[session_pb2.Session], resolvers: dict[str, str]) -> dict[str, dict[str, int]]:
    moves: dict[str, dict[str, int]] = {"base": defaultdict(int), "near": defaultdict(int)}
    for s in sessions:
        if s.state != St.SESSION_STATE_COMPLETED:
            continue
        src, dst = CHAINS[s.src.chain], CHAINS[s.dst.chain]
        moves[src][_key(src, s.maker)] -= int(s.src_amount)
        moves[src][_key(src, resolvers[src])] += int(s.src_amount)
        moves[dst][_key(dst, resolvers[dst])] -= int(s.dst_amount)
        moves[dst][_key(dst, s.receiver)] += int(s.dst_amount)
    return moves


def _key(chain: str, account: str) -> str:
    return account.lower() if chain == "base" else account


def check(
    sessions: list[session_pb2.Session],
    before: dict[str, dict[str, dict[str, int]]],
    after: dict[str, dict[str, dict[str, int]]],
    base_txs: list[dict[str, Any]],
    near_txs: list[dict[str, Any]],
    lock_states: dict[str, dict[str, str]],
    resolvers: dict[str, str],
) -> list[Violation]:
    found: list[Violation] = []
    open_ = [s.session_id for s in sessions if s.state not in ENDED]
    if open_:
        found.append(Violation("not_ended", f"{len(open_)} sessions did not end", open_[:50]))

    moves = expected_token_moves(sessions, resolvers)
    for chain in ("base", "near"):
        for account, was in before[chain].items():
            now = after[chain][account]
            want = was["token"] + moves[chain].get(_key(chain, account), 0)
            if now["token"] != want:
                involved = [
                    s.session_id for s in sessions if account in (s.maker, s.receiver) or account == resolvers[chain]
                ]
                found.append(
                    Violation(
                        "token_balance",
                        f"{chain} {account}: {now['token']} where the sessions explain {want} "
                        f"(unexplained {now['token'] - want})",
                        involved[:50],
                    )
                )

    # Safety deposits ride on lock transactions as value and come back to whoever ends the lock (the resolver,
    # here): with every lock ended, only the fees are left.
    fees: dict[str, int] = defaultdict(int)
    for tx in base_txs:
        fees[tx["from"].lower()] += tx["fee"]
    for account, was in before["base"].items():
        want = was["native"] - fees.get(account.lower(), 0)
        native = after["base"][account]["native"]
        if native != want:
            found.append(
                Violation(
                    "native_balance",
                    f"base {account}: {native} wei where its transactions explain {want} (unexplained {native - want})",
                )
            )

    near_costs = near_native_costs(near_txs)
    for account, kept in near_storage_kept(sessions, lock_states, resolvers).items():
        near_costs[account] = near_costs.get(account, 0) + kept
    for account, was in before["near"].items():
        want = was["native"] - near_costs.get(account, 0)
        native = after["near"][account]["native"]
        if native != want:
            found.append(
                Violation(
                    "native_balance",
                    f"near {account}: {native} yocto where its transactions explain {want} "
                    f"(unexplained {native - want})",
                )
            )

    for s in sessions:
        locks = lock_states.get(s.session_id, {})
        for which, state in locks.items():
            if state == "active":
                found.append(
                    Violation("lock_left_active", f"{which} lock still active after the drain", [s.session_id])
                )
            elif s.state == St.SESSION_STATE_COMPLETED and state not in ("withdrawn", "absent"):
                found.append(Violation("lock_state", f"completed, but its {which} lock is {state}", [s.session_id]))
            elif s.state != St.SESSION_STATE_COMPLETED and state == "withdrawn":
                found.append(
                    Violation(
                        "lock_state",
                        f"{state_name(s.state)}, but its {which} lock was withdrawn: the secret reached a chain",
                        [s.session_id],
                    )
                )

    by_lock = {
        lock.removeprefix("0x").lower(): s.session_id
        for s in sessions
        for lock in (s.src_lock_id, s.dst_lock_id)
        if lock
    }
    for violation in sent_twice(base_txs, near_txs, resolvers):
        lock = violation.detail.split(" of lock ")[1].split()[0]
        violation.sessions = [by_lock[lock]] if lock in by_lock else []
        found.append(violation)
    return found


# What the NEAR HTLC keeps of a lock's storage fee once it has ended, for its tombstone (swap-htlc's
# TOMBSTONE_FEE); the rest of the fee goes back to the depositor.
NEAR_TOMBSTONE_FEE = 12 * 10**20


def near_storage_kept(
    sessions: list[session_pb2.Session], lock_states: dict[str, dict[str, str]], resolvers: dict[str, str]
) -> dict[str, int]:
    """The NEAR the HTLC keeps from each depositor for its ended locks' tombstones: the maker's of a NEAR
    source lock, the resolver's of a NEAR destination lock."""
    kept: dict[str, int] = defaultdict(int)
    for s in sessions:
        locks = lock_states.get(s.session_id, {})
        for which, chain, depositor in (
            ("source", s.src.chain, s.maker),
            ("destination", s.dst.chain, resolvers["near"]),
        ):
            if CHAINS.get(chain) == "near" and locks.get(which) in ("withdrawn", "cancelled"):
                kept[depositor] += NEAR_TOMBSTONE_FEE
    return kept


def near_native_costs(near_txs: list[dict[str, Any]]) -> dict[str, int]:
    """What each signer's transactions cost it: tokens burnt by the transaction and all its receipts, plus the
    deposits the called contract kept (those of a receipt that did not fail)."""
    costs: dict[str, int] = defaultdict(int)
    for item in near_txs:
        tx, status = item["tx"], item["status"]
        signer = tx["signer_id"]
        burnt = int(status["transaction_outcome"]["outcome"]["tokens_burnt"])
        burnt += sum(int(r["outcome"]["tokens_burnt"]) for r in status["receipts_outcome"])
        # deposit_native moves NEAR into the signer's prepaid balance on the HTLC, which the balances count.
        deposits = sum(
            int(a["FunctionCall"]["deposit"])
            for a in tx["actions"]
            if isinstance(a, dict) and "FunctionCall" in a and a["FunctionCall"]["method_name"] != "deposit_native"
        )
        deposits += sum(int(a["Transfer"]["deposit"]) for a in tx["actions"] if isinstance(a, dict) and "Transfer" in a)
        first = status["receipts_outcome"][0]["outcome"]["status"] if status["receipts_outcome"] else {}
        kept = deposits if "Failure" not in first else 0
        costs[signer] += burnt + kept
    return costs


def sent_twice(
    base_txs: list[dict[str, Any]], near_txs: list[dict[str, Any]], resolvers: dict[str, str]
) -> list[Violation]:
    """A lock changed by two transactions of the resolver for one step (lock, withdraw, cancel)."""
    steps: Counter[tuple[str, str, str]] = Counter()
    for tx in base_txs:
        if tx["from"].lower() != resolvers["base"].lower() or len(tx["input"]) < 10 + 64:
            continue
        step = _BASE_STEPS.get(tx["input"][2:10])
        if step:
            steps[("base", step, tx["input"][10:74])] += 1
    for item in near_txs:
        tx = item["tx"]
        if tx["signer_id"] != resolvers["near"]:
            continue
        for action in tx["actions"]:
            call = action.get("FunctionCall") if isinstance(action, dict) else None
            if call and call["method_name"] in ("withdraw", "refund"):
                args = json.loads(base64.b64decode(call["args"]))
                steps[("near", call["method_name"], str(args.get("lock_id")))] += 1
    return [
        Violation("sent_twice", f"{chain} {step} of lock {lock} sent in {n} transactions")
        for (chain, step, lock), n in steps.items()
        if n > 1
    ]
