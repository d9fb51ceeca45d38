"""The accounts the swap stack expects on the devnet, and the JSON file that describes them.

Under the root account (`test.near`): `token` runs the NEP-141 test token (TUSD, 6 decimals like the EVM
TestToken), `htlc` the swap HTLC (accepting that token), both the wasm built from contracts/near, and
`maker`, `resolver` and `receiver` are users registered with the token; the maker and the resolver hold
minted tokens. Every account has one full-access ed25519 key derived from the seed, so a devnet restarted
with the same seed has the same keys.
All of it goes through ordinary signed transactions.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from swap_devnet.artifacts import near_wasm
from swap_devnet.near.chain import NEAR, Chain, InvalidTransaction
from swap_devnet.near.codec import (
    Action,
    AddKey,
    CreateAccount,
    DeployContract,
    FunctionCall,
    PublicKey,
    Transaction,
    Transfer,
)
from swap_devnet.near.fees import TGAS
from swap_devnet.near.keys import KeyPair

DEFAULT_SEED = "swap-devnet"
DEFAULT_FUNDING = 1_000 * NEAR
TOKEN_DECIMALS = 6
FT_SYMBOL = "TUSD"
FT_NAME = "Test USD"
DEFAULT_MINT = 1_000_000 * 10**TOKEN_DECIMALS
ROLES = ("token", "htlc", "maker", "resolver", "receiver")
# The test token's storage_balance_bounds().min: what registering an account costs.
STORAGE_BALANCE_MIN = 1_250_000_000_000_000_000_000


class BootstrapError(RuntimeError):
    pass


@dataclass(frozen=True)
class NearAccount:
    account_id: str
    public_key: str  # ed25519:<base58>
    private_key: str  # ed25519:<base58 of seed + public key>, py-near's and near-cli's format

    @classmethod
    def from_key(cls, account_id: str, key: KeyPair) -> NearAccount:
        return cls(account_id, key.public_key_text, key.secret_key_text)

    @property
    def key(self) -> KeyPair:
        return KeyPair.from_secret(self.private_key)


@dataclass(frozen=True)
class NearDeployment:
    rpc_url: str
    chain_id: str
    root: NearAccount
    token: NearAccount
    htlc: NearAccount
    maker: NearAccount
    resolver: NearAccount
    receiver: NearAccount
    token_symbol: str
    token_decimals: int
    bootstrap_height: int

    @property
    def token_id(self) -> str:
        return self.token.account_id

    @property
    def htlc_id(self) -> str:
        return self.htlc.account_id

    def chain_near_settings(self, rpc_url: str | None = None) -> dict[str, str]:
        """chain-near's settings for this deployment (its RPC at `rpc_url` when given, e.g. a proxy)."""
        return {
            "CHAIN_NEAR_RPC_URL": rpc_url or self.rpc_url,
            "CHAIN_NEAR_NETWORK_ID": self.chain_id,
            "CHAIN_NEAR_HTLC_ACCOUNT": self.htlc.account_id,
            "CHAIN_NEAR_START_BLOCK": str(self.bootstrap_height),
            "CHAIN_NEAR_RESOLVER_ACCOUNT": self.resolver.account_id,
            "CHAIN_NEAR_RESOLVER_KEY": self.resolver.private_key,
            "CHAIN_NEAR_TOKENS": json.dumps([self.token.account_id]),
        }

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> NearDeployment:
        data = json.loads(text)
        accounts = {name: NearAccount(**data[name]) for name in ("root", *ROLES)}
        return cls(
            rpc_url=data["rpc_url"],
            chain_id=data["chain_id"],
            token_symbol=data["token_symbol"],
            token_decimals=int(data["token_decimals"]),
            bootstrap_height=int(data["bootstrap_height"]),
            **accounts,
        )

    def write(self, path: Path | str) -> None:
        """Write atomically, so a reader polling for the file never sees it half-written."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(self.to_json() + "\n")
        partial.replace(target)

    @classmethod
    def read(cls, path: Path | str) -> NearDeployment:
        return cls.from_json(Path(path).read_text())


def role_key(seed: str, account_id: str) -> KeyPair:
    return KeyPair.from_phrase(f"{seed}:{account_id}")


class LocalSigner:
    """Signs and submits transactions straight to an in-process chain (no HTTP)."""

    def __init__(self, chain: Chain, account_id: str, key: KeyPair) -> None:
        self.chain = chain
        self.account_id = account_id
        self.key = key
        self._nonce = 0

    def _next_nonce(self) -> int:
        public_key = PublicKey.ed25519(self.key.public_key)
        record = self.chain.state_at(self.chain.head).access_key(self.account_id, public_key)
        if record is None:
            raise BootstrapError(f"{self.account_id} has no access key {public_key.text}")
        self._nonce = max(self._nonce, record.nonce) + 1
        return self._nonce

    async def send(self, receiver_id: str, actions: Sequence[Action], within_s: float = 30.0) -> dict[str, Any]:
        """Submit and wait for execution; raises BootstrapError when the transaction fails."""
        tx = Transaction(
            signer_id=self.account_id,
            public_key=PublicKey.ed25519(self.key.public_key),
            nonce=self._next_nonce(),
            receiver_id=receiver_id,
            block_hash=self.chain.head.hash_bytes,
            actions=tuple(actions),
        )
        try:
            record = self.chain.submit(tx.sign(self.key).encode())
        except InvalidTransaction as exc:
            raise BootstrapError(f"{self.account_id} -> {receiver_id} rejected: {exc.error}") from None
        if not await self.chain.wait(record, "EXECUTED_OPTIMISTIC", within_s):
            raise BootstrapError(f"{self.account_id} -> {receiver_id}: not executed within {within_s}s")
        if record.rejection is not None:
            raise BootstrapError(f"{self.account_id} -> {receiver_id} rejected: {record.rejection}")
        failures = [
            outcome.status["Failure"]
            for receipt_id in self.chain.receipt_order(record)
            if "Failure" in (outcome := self.chain.outcomes[receipt_id]).status
        ]
        if failures:
            raise BootstrapError(f"{self.account_id} -> {receiver_id} failed: {failures[0]}")
        return {"hash": record.hash, "status": self.chain.final_status(record)}


def _call(method: str, args: dict[str, Any], deposit: int = 0, gas: int = 100 * TGAS) -> FunctionCall:
    return FunctionCall(method, json.dumps(args).encode(), gas, deposit)


async def bootstrap(
    chain: Chain,
    rpc_url: str,
    *,
    seed: str = DEFAULT_SEED,
    funding: int = DEFAULT_FUNDING,
    mint: int = DEFAULT_MINT,
) -> NearDeployment:
    """Create, fund and wire the swap accounts on a running chain; returns their description."""
    root_id = chain.config.root_account_id
    root = LocalSigner(chain, root_id, chain.config.root_key)
    ids = {role: f"{role}.{root_id}" for role in ROLES}
    keys = {role: role_key(seed, ids[role]) for role in ROLES}
    signers = {role: LocalSigner(chain, ids[role], keys[role]) for role in ROLES}

    # Nonces are taken before any await, so the root's transactions share one block in nonce order.
    await asyncio.gather(
        *(
            root.send(
                ids[role],
                [CreateAccount(), AddKey(PublicKey.ed25519(keys[role].public_key), 0, None), Transfer(funding)],
            )
            for role in ROLES
        )
    )
    metadata = {
        "spec": "ft-1.0.0",
        "name": FT_NAME,
        "symbol": FT_SYMBOL,
        "icon": None,
        "reference": None,
        "reference_hash": None,
        "decimals": TOKEN_DECIMALS,
    }
    await asyncio.gather(
        signers["token"].send(
            ids["token"],
            [
                DeployContract(near_wasm("swap_token")),
                _call("new", {"owner_id": ids["token"], "total_supply": "0", "metadata": metadata}),
            ],
        ),
        signers["htlc"].send(
            ids["htlc"],
            [
                DeployContract(near_wasm("swap_htlc")),
                _call("new", {"owner_id": ids["htlc"], "token_allowlist": [ids["token"]]}),
            ],
        ),
    )
    await asyncio.gather(
        *(
            root.send(ids["token"], [_call("storage_deposit", {"account_id": ids[role]}, STORAGE_BALANCE_MIN)])
            for role in ("htlc", "maker", "resolver", "receiver")
        )
    )
    await asyncio.gather(
        *(
            signers["token"].send(ids["token"], [_call("mint", {"account_id": ids[role], "amount": str(mint)})])
            for role in ("maker", "resolver")
        )
    )
    accounts = {role: NearAccount.from_key(ids[role], keys[role]) for role in ROLES}
    return NearDeployment(
        rpc_url=rpc_url,
        chain_id=chain.config.chain_id,
        root=NearAccount.from_key(root_id, chain.config.root_key),
        token_symbol=FT_SYMBOL,
        token_decimals=TOKEN_DECIMALS,
        bootstrap_height=chain.head.height,
        **accounts,
    )
