"""The whole local stack on loopback: anvil with the escrows, the NEAR devnet, Redis (the local one
or our own), and the four gRPC services as real processes on free ports. `make run` and the
end-to-end tests start it the same way; stop() ends everything it started, in reverse order."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import grpc
from swap_runtime.quote_token import new_key_pair

from swap_devnet.child import StartStop
from swap_devnet.envoy import Envoy
from swap_devnet.evm import TOKEN_DECIMALS, Anvil, EvmDeployment, deploy
from swap_devnet.faults import TcpProxy
from swap_devnet.near.bootstrap import NearDeployment
from swap_devnet.near.process import NearDevnetProcess
from swap_devnet.pki import Issued, issue_all
from swap_devnet.procs import GatewayProcess, ServiceProcess, free_port
from swap_devnet.redis_server import LOCAL_REDIS_URL, RedisServer, answers

log = logging.getLogger(__name__)


# The local chains include a transaction within a block or two (anvil mines every 0.5 s, the devnet at
# once), so the dev stack promises short inclusion bounds and uses a short timelock plan that fits them
# (docs/safety.md works through its budget). Production defaults are longer on both counts.
_FAST_BASE = {"CHAIN_BASE_TX_RESEND_AFTER_S": "3", "CHAIN_BASE_INCLUSION_BOUND_S": "8"}
NEAR_INCLUSION_BOUND_S = 8
_FAST_NEAR = {"CHAIN_NEAR_INCLUSION_BOUND_S": str(NEAR_INCLUSION_BOUND_S)}
# The resolver's TUSD floor on each chain (swap_resolver_liquidity_floor; an operator sets the largest swap the
# quote service allows): 10 000 TUSD, well under the 1 000 000 the devnet mints the resolver, so a devnet that
# has run a few swaps does not page anyone.
_DEV_TUSD_FLOOR = 10_000 * 10**TOKEN_DECIMALS
_DEV_PLAN = {
    "QUOTE_SRC_WITHDRAWAL_AFTER_S": "2",
    "QUOTE_SRC_PUBLIC_WITHDRAWAL_AFTER_S": "60",
    "QUOTE_SRC_CANCELLATION_AFTER_S": "120",
    "QUOTE_SRC_PUBLIC_CANCELLATION_AFTER_S": "180",
    "QUOTE_DST_WITHDRAWAL_AFTER_S": "1",
    "QUOTE_DST_PUBLIC_WITHDRAWAL_AFTER_S": "40",
    "QUOTE_DST_CANCELLATION_AFTER_S": "80",
    "QUOTE_DST_PUBLIC_CANCELLATION_AFTER_S": "100",
    "QUOTE_REVEAL_MARGIN_S": "10",
}


@dataclass
class StackOptions:
    work_dir: Path
    # Interval mining, so confirmations accrue without traffic (0 = automine only).
    anvil_block_time: float = 0.5
    base_confirmations: int = 2
    poll_interval_s: float = 0.2
    redis_url: str | None = None  # None: the local Redis if it answers, else one of our own
    key_prefix: str = field(default_factory=lambda: f"swap:{uuid.uuid4().hex[:8]}:")
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)  # per service name
    # Put a TcpProxy between the chain services and each chain's RPC, for fault-injection tests.
    proxy_chains: bool = False
    # The edge: the gateway (dev mode, this API key) and Envoy in front of it and of the gRPC services.
    edge: bool = False
    api_key: str = "dev-key"
    # Mutual TLS between the services, with a CA and certificates made at start (work_dir/pki); off is the
    # plaintext development flag, for benchmarks that put plain proxies between the services.
    tls: bool = True
    # Session-service replicas sharing Redis (leases decide which drives a swap): "session", "session-2", ...
    session_replicas: int = 1
    # Put a TcpProxy between the session replicas and each chain service ("chain-base", "chain-near" in
    # `proxies`), to delay or drop their gRPC streams.
    proxy_services: bool = False


class LocalStack(StartStop):
    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self._exit = contextlib.ExitStack()
        self.evm: EvmDeployment | None = None
        self.near: NearDeployment | None = None
        self.near_devnet: NearDevnetProcess | None = None
        self.anvil: Anvil | None = None
        self.redis_url = ""
        self.services: dict[str, ServiceProcess] = {}
        self.metrics_ports: dict[str, int] = {}
        self.proxies: dict[str, TcpProxy] = {}
        self.gateway: GatewayProcess | None = None
        self.envoy: Envoy | None = None
        self.pki: dict[str, Issued] = {}
        # The quote service's signing key, made at start: the session services trust its public key.
        self.quote_public_key = ""

    def identity_dir(self, identity: str) -> Path | None:
        """The TLS directory of `identity` (a service, "gateway", "envoy" or "operator"); None in plaintext."""
        return self.pki[identity].directory if self.pki else None

    def channel(self, name: str, identity: str = "operator") -> grpc.aio.Channel:
        """A grpc.aio channel to service `name`, as `identity`. The chain services answer only "session"."""
        return self.services[name].channel(self.identity_dir(identity))

    def start(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        o = self.options
        o.work_dir.mkdir(parents=True, exist_ok=True)
        if o.tls:
            self.pki = issue_all(o.work_dir / "pki")
        self.anvil = self._exit.enter_context(Anvil(block_time=o.anvil_block_time or None, log_dir=o.work_dir))
        self.evm = deploy(self.anvil.rpc_url)
        evm_file = o.work_dir / "evm.json"
        self.evm.write(evm_file)
        near_file = o.work_dir / "near.json"
        self.near_devnet = self._exit.enter_context(NearDevnetProcess(out=near_file, log_dir=o.work_dir))
        self.near = NearDeployment.read(near_file)
        base_rpc, near_rpc = self.evm.rpc_url, self.near.rpc_url
        if o.proxy_chains:
            base_rpc, near_rpc = self._proxy("base", base_rpc), self._proxy("near", near_rpc)
        if o.redis_url:
            self.redis_url = o.redis_url
        elif answers(LOCAL_REDIS_URL):
            self.redis_url = LOCAL_REDIS_URL
        else:
            self.redis_url = self._exit.enter_context(RedisServer()).url
        poll = str(o.poll_interval_s)
        specs: list[tuple[str, str, dict[str, str]]] = [
            (
                "chain-base",
                "chain_base.main",
                {
                    **self.evm.chain_base_settings(base_rpc),
                    "CHAIN_BASE_CONFIRMATIONS": str(o.base_confirmations),
                    "CHAIN_BASE_POLL_INTERVAL_S": poll,
                    "CHAIN_BASE_MIN_LIQUIDITY": json.dumps({self.evm.token: _DEV_TUSD_FLOOR}),
                    "CHAIN_BASE_REDIS_URL": self.redis_url,
                    "CHAIN_BASE_REDIS_PREFIX": o.key_prefix,
                    **_FAST_BASE,
                },
            ),
            (
                "chain-near",
                "chain_near.main",
                {
                    **self.near.chain_near_settings(near_rpc),
                    "CHAIN_NEAR_POLL_INTERVAL_S": poll,
                    "CHAIN_NEAR_MIN_LIQUIDITY": json.dumps({self.near.token_id: _DEV_TUSD_FLOOR}),
                    "CHAIN_NEAR_REDIS_URL": self.redis_url,
                    "CHAIN_NEAR_REDIS_PREFIX": o.key_prefix,
                    **_FAST_NEAR,
                },
            ),
            (
                "quote",
                "quote.main",
                {
                    "QUOTE_SIGNING_KEY_FILE": str(self._quote_signing_key()),
                    "QUOTE_BASE_TOKEN_ADDRESS": self.evm.token,
                    "QUOTE_NEAR_TOKEN_ACCOUNT": self.near.token_id,
                    "QUOTE_REDIS_URL": self.redis_url,
                    "QUOTE_REDIS_PREFIX": o.key_prefix,
                    **_DEV_PLAN,
                },
            ),
        ]
        for name, module, env in specs:
            self._service(name, module, env)
        chain_addrs = {name: self.services[name].address for name in ("chain-base", "chain-near")}
        if o.proxy_services:
            for name, address in chain_addrs.items():
                proxy = self._exit.enter_context(TcpProxy(int(address.rsplit(":", 1)[1])))
                self.proxies[name] = proxy
                chain_addrs[name] = f"127.0.0.1:{proxy.port}"
        for replica in range(o.session_replicas):
            self._service(
                "session" if replica == 0 else f"session-{replica + 1}",
                "session.main",
                {
                    "SESSION_REDIS_URL": self.redis_url,
                    "SESSION_KEY_PREFIX": o.key_prefix,
                    "SESSION_DEV_MODE": "true",
                    "SESSION_CHAIN_BASE_ADDR": chain_addrs["chain-base"],
                    "SESSION_CHAIN_NEAR_ADDR": chain_addrs["chain-near"],
                    "SESSION_QUOTE_ADDR": self.services["quote"].address,
                    "SESSION_QUOTE_PUBLIC_KEYS": self.quote_public_key,
                    "SESSION_RETRY_DELAY_S": poll,
                },
                identity="session",
            )
        self.chains_file.write_text(json.dumps(self.maker_chains(), indent=2) + "\n")
        self._write_maker_keys()
        if o.edge:
            self._start_edge()
        (o.work_dir / "stack.json").write_text(json.dumps(self.describe(), indent=2) + "\n")

    def _start_edge(self) -> None:
        o = self.options
        env = {
            "GATEWAY_SESSION_ADDR": self.services["session"].address,
            "GATEWAY_QUOTE_ADDR": self.services["quote"].address,
            "GATEWAY_CHAIN_BASE_ADDR": self.services["chain-base"].address,
            "GATEWAY_CHAIN_NEAR_ADDR": self.services["chain-near"].address,
            "GATEWAY_REDIS_URL": self.redis_url,
            "GATEWAY_KEY_PREFIX": f"{o.key_prefix}gateway:",
            "GATEWAY_API_KEYS": o.api_key,
            "GATEWAY_PAGE_CHAINS_FILE": str(self.chains_file),
            **o.extra_env.get("gateway", {}),
        }
        envoy_tls = self.identity_dir("envoy")
        if envoy_tls is None:
            raise ValueError("the edge needs mutual TLS to the services: StackOptions(tls=True)")
        self.gateway = self._exit.enter_context(
            GatewayProcess("gateway", env, o.work_dir, tls_dir=self.identity_dir("gateway"))
        )
        ports = {name: int(proc.address.rsplit(":", 1)[1]) for name, proc in self.services.items()}
        self.envoy = self._exit.enter_context(
            Envoy(o.work_dir, {"gateway": self.gateway.port, **ports}, tls_dir=envoy_tls)
        )
        self.envoy.wait_healthy("session", "quote")
        # swapctl's defaults for this stack (swapctl reads .localnet/swapctl.json of the checkout it runs in).
        (o.work_dir / "swapctl.json").write_text(json.dumps(self.swapctl_config(self.envoy.url), indent=2) + "\n")

    def _proxy(self, chain: str, rpc_url: str) -> str:
        """The URL of a proxy in front of a chain's RPC (`proxies[chain]`)."""
        port = urlsplit(rpc_url).port
        assert port is not None, rpc_url
        proxy = self._exit.enter_context(TcpProxy(port))
        self.proxies[chain] = proxy
        return proxy.url()

    def _quote_signing_key(self) -> Path:
        """A fresh Ed25519 key for the quote service, in a file only this user reads."""
        seed, self.quote_public_key = new_key_pair()
        path = self.options.work_dir / "quote-signing.key"
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(seed + "\n")
        return path

    def _service(self, name: str, module: str, env: dict[str, str], identity: str | None = None) -> ServiceProcess:
        tls_dir = self.identity_dir(identity or name)
        proc = ServiceProcess(name, module, env, self.options.work_dir, tls_dir=tls_dir)
        env[f"{proc.prefix}PORT"] = str(proc.port)
        self.metrics_ports[name] = free_port()
        env[f"{proc.prefix}METRICS_PORT"] = str(self.metrics_ports[name])
        # Replicas take their service's settings ("session" for "session-2"), then their own.
        env.update(self.options.extra_env.get(identity or name, {}))
        if identity:
            env.update(self.options.extra_env.get(name, {}))
        self._exit.enter_context(proc)
        self.services[name] = proc
        return proc

    @property
    def chains_file(self) -> Path:
        """What a maker's client reads the destination chains with (swapctl --chains, docs/cli.md)."""
        return self.options.work_dir / "chains.json"

    @property
    def maker_keys_file(self) -> Path:
        """The devnet maker's keys (swapctl --sign, docs/cli.md "Keys file"), readable by this user only."""
        return self.options.work_dir / "maker-keys.json"

    def _write_maker_keys(self) -> None:
        assert self.evm is not None and self.near is not None
        keys = {
            "base": {"private_key": self.evm.maker.private_key},
            "near": {"account_id": self.near.maker.account_id, "private_key": self.near.maker.private_key},
        }
        path = self.maker_keys_file
        path.unlink(missing_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(json.dumps(keys, indent=2) + "\n")

    def swapctl_config(self, url: str, api_key: str | None = None) -> dict[str, object]:
        """swapctl's config for this stack (docs/cli.md): the gateway at `url`, the key, the chains file, and
        the devnet's maker (with its keys file) and receiver on each chain, so that
        `swapctl swap base:TUSD near:TUSD 25 --sign` works as typed."""
        assert self.evm is not None and self.near is not None
        return {
            "url": url,
            "api_key": api_key or self.options.api_key,
            "chains": str(self.chains_file),
            "keys": str(self.maker_keys_file),
            "maker": {"base": self.evm.maker.address, "near": self.near.maker.account_id},
            "receiver": {"base": self.evm.receiver.address, "near": self.near.receiver.account_id},
        }

    def maker_chains(self) -> dict[str, dict[str, object]]:
        assert self.evm is not None and self.near is not None
        return {
            "base": {
                "rpc_url": self.evm.rpc_url,
                "escrow_dst": self.evm.escrow_dst,
                "confirmations": self.options.base_confirmations,
                # What the web page asks a wallet to add when it does not know the chain (EIP-3085).
                "chain_id": self.evm.chain_id,
                "name": "BASE (local anvil)",
            },
            "near": {"rpc_url": self.near.rpc_url, "htlc": self.near.htlc.account_id},
        }

    def describe(self) -> dict[str, object]:
        return {
            "base_rpc": self.anvil.rpc_url if self.anvil else None,
            "near_rpc": self.near.rpc_url if self.near else None,
            "redis": self.redis_url,
            "key_prefix": self.options.key_prefix,
            "services": {name: proc.address for name, proc in self.services.items()},
            "metrics": {name: f"http://127.0.0.1:{port}/metrics" for name, port in self.metrics_ports.items()},
            "gateway": self.gateway.url if self.gateway else None,
            "edge": self.envoy.url if self.envoy else None,
            "logs": str(self.options.work_dir),
            "tls": str(self.options.work_dir / "pki") if self.pki else None,
        }

    def exited(self) -> list[str]:
        """The processes of the stack that are no longer running (a crash, or a kill from outside)."""
        dead = [name for name, proc in self.services.items() if proc.returncode is not None]
        if self.gateway is not None and self.gateway.returncode is not None:
            dead.append("gateway")
        if self.envoy is not None and not self.envoy.running:
            dead.append("envoy")
        if self.anvil is not None and not self.anvil.running:
            dead.append("anvil")
        if self.near_devnet is not None and not self.near_devnet.running:
            dead.append("near-devnet")
        return dead

    def stop(self) -> None:
        self._exit.close()
