"""The chaos run's Prometheus: Debian's prometheus binary scraping /metrics endpoints and evaluating the
deployed alert rules; an alert that fired is listed with its labels, one that did not is not."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from swap_devnet import prometheus
from swap_devnet.procs import free_port
from swap_devnet.prometheus import Prometheus

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not prometheus.available(), reason="no prometheus")]


@pytest.mark.timeout(60)
def test_a_halt_fires_swap_saga_halted_and_nothing_else(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    halts = Counter("swap_saga_halts", "halts", ["alert"], registry=registry)
    halts.labels(alert="PAY_RECEIVER")  # the series exists at 0 before it rises
    Gauge("swap_sessions_active", "open sessions", registry=registry).set(3)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        with Prometheus(tmp_path, {"session": f"127.0.0.1:{port}"}, interval_s=0.5) as prom:
            deadline = time.monotonic() + 20
            while not prom.up().get("session"):
                assert time.monotonic() < deadline, "never scraped"
                time.sleep(0.2)
            assert prom.fired() == []
            halts.labels(alert="PAY_RECEIVER").inc()
            while not prom.fired():
                assert time.monotonic() < deadline, "SwapSagaHalted never fired"
                time.sleep(0.2)
            fired = prom.fired()
    finally:
        server.shutdown()
        thread.join(5)
    assert [(a["alertname"], a["alert"], a["severity"]) for a in fired] == [
        ("SwapSagaHalted", "PAY_RECEIVER", "critical")
    ]
