"""A complete swap through the public API, with your own keys, as docs/integrate.md walks through it.

    python examples/swap.py --gateway http://127.0.0.1:10000 --api-key dev-key base-near --amount 25 --faucet

It speaks plain HTTP to the gateway (httpx), signs on BASE with eth-account / web3.py and calls NEAR with
py-near. Secret mode `maker`: this script draws the secret, checks the destination lock on the destination
chain itself and only then releases the secret, so it trusts neither the gateway nor the resolver.

Keys come from the environment (EVM_PRIVATE_KEY; NEAR_ACCOUNT_ID and NEAR_PRIVATE_KEY, `ed25519:...`); with
--faucet, missing ones are made fresh and funded by the local devnet's faucet (python -m swap_devnet.faucet).
Exit status 0 when the swap completed and the receiver's balance rose by the session's dst_amount.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import base58
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from eth_account import Account
from eth_account.messages import encode_typed_data
from py_near.account import Account as NearAccount
from web3 import Web3

ERC20_ABI = json.loads(
    '[{"name":"allowance","type":"function","stateMutability":"view","inputs":[{"name":"owner","type":"address"},'
    '{"name":"spender","type":"address"}],"outputs":[{"name":"","type":"uint256"}]},'
    '{"name":"approve","type":"function","stateMutability":"nonpayable","inputs":[{"name":"spender","type":"address"},'
    '{"name":"amount","type":"uint256"}],"outputs":[{"name":"","type":"bool"}]},'
    '{"name":"balanceOf","type":"function","stateMutability":"view","inputs":[{"name":"owner","type":"address"}],'
    '"outputs":[{"name":"","type":"uint256"}]}]'
)
# EscrowDst.getEscrow(bytes32) returns the Escrow struct: thirteen 32-byte words.
GET_ESCROW = Web3.keccak(text="getEscrow(bytes32)")[:4].hex()
ENDED = {"completed", "cancelled", "refunded", "failed", "timeout"}


def say(text: str) -> None:
    print(text, flush=True)


# --- The gateway ------------------------------------------------------------------------------------------


class Gateway:
    def __init__(self, url: str, api_key: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"X-API-Key": api_key}, timeout=30)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        reply = self.http.request(method, path, json=body)
        if reply.status_code >= 400:
            error = reply.json().get("error", {})
            raise SystemExit(f"{method} {path}: {reply.status_code} {error.get('reason')}: {error.get('message')}")
        return reply.json()

    def wait_for(self, session_id: str, states: set[str], timeout_s: float = 300) -> dict[str, Any]:
        """Polls the session until it reaches one of `states` or ends (the WebSocket /ws pushes the same)."""
        deadline = time.monotonic() + timeout_s
        seen = ""
        while time.monotonic() < deadline:
            session: dict[str, Any] = self.call("GET", f"/api/v1/sessions/{session_id}")
            if session["state"] != seen:
                seen = session["state"]
                say(f"  state: {seen}")
            if seen in states or seen in ENDED:
                return session
            time.sleep(0.5)
        raise SystemExit(f"session {session_id} did not reach {sorted(states)} within {timeout_s} s")


# --- Keys and the devnet faucet ---------------------------------------------------------------------------


def new_near_key() -> tuple[str, str]:
    """A fresh ed25519 key pair as NEAR writes them: (public `ed25519:<base58>`, private `ed25519:<seed+public>`)."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "ed25519:" + base58.b58encode(public).decode(), "ed25519:" + base58.b58encode(seed + public).decode()


def faucet(work_dir: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "swap_devnet.faucet", "--work-dir", str(work_dir), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    report: dict[str, Any] = json.loads(out)
    return report


def keys(args: argparse.Namespace) -> tuple[str, str, str]:
    """(EVM private key, NEAR account id, NEAR private key), funded by the faucet when asked to."""
    evm_key = os.environ.get("EVM_PRIVATE_KEY", "")
    near_account = os.environ.get("NEAR_ACCOUNT_ID", "")
    near_key = os.environ.get("NEAR_PRIVATE_KEY", "")
    if not args.faucet:
        if not (evm_key and near_account and near_key):
            raise SystemExit("set EVM_PRIVATE_KEY, NEAR_ACCOUNT_ID and NEAR_PRIVATE_KEY, or pass --faucet (devnet)")
        return evm_key, near_account, near_key
    funding: list[str] = []
    if not evm_key:
        evm_key = Account.create().key.hex()
    funding += ["--base", Account.from_key(evm_key).address]
    if not near_account:
        public, near_key = new_near_key()
        near_account = f"ex{secrets.token_hex(6)}.test.near"
        funding += ["--near", near_account, "--near-public-key", public]
    else:
        funding += ["--near", near_account]
    funded = faucet(args.work_dir, *funding)
    say(f"faucet: BASE {funded['base']['address']}, NEAR {funded['near']['account_id']}")
    return evm_key, near_account, near_key


# --- Reading the destination lock from its own chain ------------------------------------------------------


def rpc(url: str, method: str, params: Any) -> Any:
    body = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=10).json()
    if "error" in body:
        raise SystemExit(f"{url} {method}: {body['error']}")
    return body["result"]


def base_lock(chain: dict[str, Any], lock_id: str) -> dict[str, Any] | None:
    """EscrowDst's lock, as a block `confirmations - 1` below the head holds it (final on this chain)."""
    head = int(rpc(chain["rpc_url"], "eth_blockNumber", []), 16)
    block = hex(max(head - int(chain["confirmations"]) + 1, 0))
    call = {"to": chain["escrow_dst"], "data": "0x" + GET_ESCROW.removeprefix("0x") + lock_id.removeprefix("0x")}
    raw = bytes.fromhex(rpc(chain["rpc_url"], "eth_call", [call, block]).removeprefix("0x"))
    words = [int.from_bytes(raw[i : i + 32], "big") for i in range(0, len(raw), 32)]
    if len(words) < 13 or words[12] != 1:  # state 1 = active
        return None
    return {
        "beneficiary": Web3.to_checksum_address(f"0x{words[1]:040x}"),
        "token": Web3.to_checksum_address(f"0x{words[3]:040x}"),
        "amount": words[4],
        "hashlock": f"{words[6]:064x}",
        "cancellation_at": words[11] + words[9],
    }


def near_lock(chain: dict[str, Any], lock_id: str) -> dict[str, Any] | None:
    """The HTLC's lock at the final block."""
    args = json.dumps({"lock_id": lock_id}).encode()
    result = rpc(
        chain["rpc_url"],
        "query",
        {
            "request_type": "call_function",
            "finality": "final",
            "account_id": chain["htlc"],
            "method_name": "get_lock",
            "args_base64": base64.b64encode(args).decode(),
        },
    )
    lock = json.loads(bytes(result["result"]) or b"null")
    if not isinstance(lock, dict) or lock.get("state") != "active":
        return None
    return {
        "beneficiary": lock["beneficiary"],
        "token": lock["token"],
        "amount": int(lock["amount"]),
        "hashlock": lock["hashlock"],
        "cancellation_at": (int(lock["locked_at"]) + int(lock["timelocks"]["cancellation"])) // 10**9,
    }


def check_destination(chains: dict[str, Any], session: dict[str, Any], hashlock: str) -> None:
    """Release the secret only when the destination chain itself shows the lock the maker asked for."""
    chain = session["dst"]["chain"]
    read = base_lock if chain == "base" else near_lock
    lock = read(chains[chain], session["dst_lock_id"])
    if lock is None:
        raise SystemExit("the destination lock is not active and final: the secret is kept, the swap refunds")
    same = (lambda a, b: a.lower() == b.lower()) if chain == "base" else (lambda a, b: a == b)
    problems = [
        what
        for what, ok in (
            ("hashlock", lock["hashlock"] == hashlock),
            ("receiver", same(lock["beneficiary"], session["receiver"])),
            ("token", same(lock["token"], session["dst"]["token"])),
            ("amount", lock["amount"] >= int(session["quote"]["min_received"])),
            ("time left", lock["cancellation_at"] - time.time() > 20),
        )
        if not ok
    ]
    if problems:
        raise SystemExit(f"the destination lock is wrong ({', '.join(problems)}): the secret is kept")
    say(f"  destination lock checked on {chain}: {lock['amount']} for {lock['beneficiary']}")


# --- The maker's step -------------------------------------------------------------------------------------


def dst_terms_hash(session: dict[str, Any], hashlock: str) -> str:
    """What the EIP-712 order binds of the destination leg (docs/integrate.md, "dstTermsHash")."""
    dst, minimum = session["dst"], session["quote"]["min_received"]
    text = f"{dst['chain']}|{dst['token']}|{minimum}|{session['receiver']}|{hashlock}"
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


def sign_base_order(session: dict[str, Any], chains: dict[str, Any], evm_key: str, hashlock: str) -> str:
    """Approve EscrowSrc when the allowance is short, check the order says what was asked, sign it."""
    action = session["maker_action"]["sign_order"]
    order = action["typed_data"]["message"]
    expected = {
        "maker": session["maker"],
        "amount": session["src_amount"],
        "hashlock": "0x" + hashlock,
        "dstTermsHash": dst_terms_hash(session, hashlock),
    }
    for field, value in expected.items():
        if str(order[field]).lower() != str(value).lower():
            raise SystemExit(f"the order's {field} is {order[field]}, expected {value}: not signing")
    w3 = Web3(Web3.HTTPProvider(chains["base"]["rpc_url"]))
    maker = Account.from_key(evm_key)
    token = w3.eth.contract(address=Web3.to_checksum_address(action["token"]), abi=ERC20_ABI)
    if token.functions.allowance(maker.address, action["spender"]).call() < int(action["allowance"]):
        tx = token.functions.approve(action["spender"], int(action["allowance"])).build_transaction(
            {"from": maker.address, "nonce": w3.eth.get_transaction_count(maker.address, "pending")}
        )
        tx_hash = w3.eth.send_raw_transaction(maker.sign_transaction(tx).raw_transaction)
        if w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)["status"] != 1:
            raise SystemExit("the approval reverted")
        say(f"  approved {action['allowance']} for {action['spender']}")
    signed = Account.sign_message(encode_typed_data(full_message=action["typed_data"]), evm_key)
    return "0x" + bytes(signed.signature).hex()


async def make_near_lock(session: dict[str, Any], rpc_url: str, account_id: str, key: str, hashlock: str) -> None:
    """The maker's NEAR calls as the session says: the deposit_native top-up first when there is one (a NEP-141
    lock's storage fee is NEAR prepaid on the HTLC), then ft_transfer_call on the token (or lock_native on the
    HTLC)."""
    action = session["maker_action"]
    call = action["near_call"]
    args = call["args"]
    terms = json.loads(args["msg"]) if "msg" in args else args
    if terms["hashlock"] != hashlock or args.get("amount", session["src_amount"]) != session["src_amount"]:
        raise SystemExit("the NEAR call does not lock what was asked: not calling")
    prepay = action.get("near_prepay")
    if prepay is not None and (prepay["method"] != "deposit_native" or prepay["contract"] != terms_contract(call)):
        raise SystemExit("the NEAR top-up is not a deposit on the HTLC: not calling")
    maker = NearAccount(account_id, key, rpc_url)
    await maker.startup()
    try:
        for each in [prepay, call] if prepay else [call]:
            result = await maker.function_call(
                each["contract"], each["method"], each["args"], each["gas"], int(each["deposit"])
            )
            if "Failure" in (result.status or {}):
                raise SystemExit(f"the NEAR call {each['method']} failed: {result.status['Failure']}")
            say(f"  {each['method']} on {each['contract']}: {result.transaction.hash}")
    finally:
        await maker.shutdown()


def terms_contract(call: dict[str, Any]) -> str:
    """The HTLC the lock call goes to: the call's contract for lock_native, the receiver of ft_transfer_call."""
    return str(call["args"].get("receiver_id", call["contract"]))


# --- Balances ----------------------------------------------------------------------------------------------


def balance(chains: dict[str, Any], asset: dict[str, str], holder: str) -> int:
    if asset["chain"] == "base":
        w3 = Web3(Web3.HTTPProvider(chains["base"]["rpc_url"]))
        token = w3.eth.contract(address=Web3.to_checksum_address(asset["token"]), abi=ERC20_ABI)
        return int(token.functions.balanceOf(Web3.to_checksum_address(holder)).call())
    args = json.dumps({"account_id": holder}).encode()
    result = rpc(
        chains["near"]["rpc_url"],
        "query",
        {
            "request_type": "call_function",
            "finality": "optimistic",
            "account_id": asset["token"],
            "method_name": "ft_balance_of",
            "args_base64": base64.b64encode(args).decode(),
        },
    )
    return int(json.loads(bytes(result["result"])))


# --- The swap ---------------------------------------------------------------------------------------------


def swap(args: argparse.Namespace) -> int:
    gw = Gateway(args.gateway, args.api_key)
    chains: dict[str, Any] = httpx.get(f"{args.gateway}/chains.json", timeout=10).json()
    assets = gw.call("GET", "/api/v1/assets")["assets"]
    src_chain, dst_chain = args.direction.split("-")
    src, dst = (
        next(a for a in assets if a["chain"] == c and a["symbol"] == args.symbol) for c in (src_chain, dst_chain)
    )
    amount = str(int(Decimal(args.amount).scaleb(src["decimals"])))
    evm_key, near_account, near_key = keys(args)
    evm_address = Account.from_key(evm_key).address
    maker, receiver = (evm_address, near_account) if src_chain == "base" else (near_account, evm_address)

    quote = gw.call("POST", "/api/v1/quotes", {"src": _asset(src), "dst": _asset(dst), "src_amount": amount})
    say(f"quote {quote['quote_id']}: {amount} -> at least {quote['min_received']} (valid until {quote['valid_until']})")

    secret = secrets.token_bytes(32)  # keep it where a crash cannot lose it; never reuse it
    hashlock = hashlib.sha256(secret).hexdigest()
    before = balance(chains, dst, receiver)
    session = gw.call(
        "POST",
        "/api/v1/sessions",
        {
            "src": _asset(src),
            "dst": _asset(dst),
            "src_amount": amount,
            "maker": maker,
            "receiver": receiver,
            "quote_id": quote["quote_id"],
            "request_id": str(uuid.uuid4()),
            "secret_mode": "maker",
            "hashlock": hashlock,
        },
    )
    sid = session["session_id"]
    say(f"session {sid}: {session['state']}")
    if session["hashlock"] != hashlock:
        raise SystemExit("the session does not carry our hashlock")

    if src_chain == "base":
        signature = sign_base_order(session, chains, evm_key, hashlock)
        gw.call("POST", f"/api/v1/sessions/{sid}/execute", {"signature": signature, "request_id": str(uuid.uuid4())})
    else:
        asyncio.run(make_near_lock(session, chains["near"]["rpc_url"], near_account, near_key, hashlock))
        gw.call("POST", f"/api/v1/sessions/{sid}/execute", {"request_id": str(uuid.uuid4())})

    session = gw.wait_for(sid, {"awaiting_secret"})
    if session["state"] != "awaiting_secret":
        raise SystemExit(f"the swap ended {session['state']}: {session.get('error')}")
    check_destination(chains, session, hashlock)
    gw.call("POST", f"/api/v1/sessions/{sid}/secret", {"secret": secret.hex()})

    session = gw.wait_for(sid, {"completed"})
    after = balance(chains, dst, receiver)
    got, promised = after - before, session["dst_amount"]
    say(f"{session['state']}: the receiver {receiver} got {got} (session dst_amount {promised})")
    return 0 if session["state"] == "completed" and got == int(promised) else 1


def _asset(info: dict[str, Any]) -> dict[str, str]:
    return {"chain": info["chain"], "token": info["token"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", default=os.environ.get("SWAP_GATEWAY", "http://127.0.0.1:8080"))
    parser.add_argument("--api-key", default=os.environ.get("SWAP_API_KEY", ""))
    parser.add_argument("direction", choices=["base-near", "near-base"])
    parser.add_argument("--amount", default="25", help="source amount in token units")
    parser.add_argument("--symbol", default="TUSD", help="the token on both chains")
    parser.add_argument("--faucet", action="store_true", help="make and fund missing keys (local devnet only)")
    parser.add_argument("--work-dir", type=Path, default=Path(".localnet"), help="the devnet's files (--faucet)")
    return swap(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
