"""Who a WatchSession stream counts against, and the slot bookkeeping (no Redis: a slot touches none)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from session.watchers import Watchers, client_id, peer_host
from swap_runtime.errors import ResourceExhausted


@pytest.mark.parametrize(
    ("peer", "host"),
    [
        ("ipv4:10.0.0.5:41234", "10.0.0.5"),
        ("ipv6:[::1]:41234", "::1"),
        ("ipv6:[2001:db8::7]:443", "2001:db8::7"),
        ("unix:/run/session.sock", "unix:/run/session.sock"),
    ],
)
def test_the_peer_is_its_host_whatever_the_port(peer: str, host: str) -> None:
    assert peer_host(peer) == host


def test_a_tenant_never_shares_a_key_with_a_host() -> None:
    assert client_id("acme", "ipv4:10.0.0.5:1") == "tenant:acme"
    assert client_id(None, "ipv4:10.0.0.5:1") == client_id("", "ipv4:10.0.0.5:2") == "peer:10.0.0.5"
    assert client_id("10.0.0.5", "ipv4:10.0.0.9:1") != client_id(None, "ipv4:10.0.0.5:1")


async def test_slots_are_counted_per_client_and_per_replica_and_always_given_back() -> None:
    client = aioredis.Redis()  # never connects: slots are bookkeeping in memory
    watchers = Watchers(client, "p:", max_streams=3, max_per_client=2)
    with watchers.slot("a"), watchers.slot("a"):
        with pytest.raises(ResourceExhausted) as err:
            watchers.slot("a").__enter__()
        assert err.value.metadata == {"cap": "client"}
        with watchers.slot("b"):
            with pytest.raises(ResourceExhausted) as err:
                watchers.slot("c").__enter__()
            assert err.value.metadata == {"cap": "replica"}
            assert watchers.open_streams == 3
    assert watchers.open_streams == 0 and watchers.open_for("a") == 0

    with pytest.raises(RuntimeError), watchers.slot("a"):
        raise RuntimeError("the stream failed")
    assert watchers.open_streams == 0
    await client.aclose()
