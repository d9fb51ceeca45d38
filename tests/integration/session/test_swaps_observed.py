"""Health, metrics and alert rules, read from the running stack after the swaps of test_swaps.py
(this file sorts after it, and the stack lives for the whole package)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from swap.session.v1 import session_pb2, session_pb2_grpc
from swap_devnet.stack import LocalStack

from tests.integration.swaps import TERMINAL, create_base_to_near, execute_base, watch_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")


def scrape(stack: LocalStack, service: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.metrics_ports[service]}/metrics", timeout=5) as reply:
        return str(reply.read().decode())


def sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_every_service_reports_serving(stack: LocalStack) -> None:
    for name, proc in stack.services.items():
        async with proc.channel() as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, name


async def test_metrics_describe_the_swaps_that_ran(
    sessions: session_pb2_grpc.SessionServiceStub, stack: LocalStack
) -> None:
    # The session service may have been restarted by earlier tests: one swap here, counted from scratch.
    created = await create_base_to_near(sessions, stack)
    await execute_base(sessions, stack, created)
    done, _ = await watch_until(sessions, created.session_id, TERMINAL)
    assert done.state == session_pb2.SESSION_STATE_COMPLETED
    # The saga counts an ended session just after persisting it, and watchers may hear of the write first:
    # like a Prometheus scrape, read the counters a moment later if they lag.
    for _ in range(50):
        session = scrape(stack, "session")
        if sample(session, "swap_sessions_ended_total", state="completed") >= 1:
            break
        await asyncio.sleep(0.1)
    assert sample(session, "swap_sessions_initiated_total") >= 1
    assert sample(session, "swap_sessions_ended_total", state="completed") >= 1
    assert sample(session, "swap_session_step_seconds_count", state="revealing_secret") >= 1
    assert (
        sample(
            session, "swap_grpc_server_handling_seconds_count", method="/swap.session.v1.SessionService/CreateSession"
        )
        >= 1
    )
    base = scrape(stack, "chain-base")
    assert sample(base, "swap_chain_rpc_seconds_count", chain="base") > 0
    assert sample(base, "swap_resolver_balance", chain="base", token="native") > 0
    near = scrape(stack, "chain-near")
    assert sample(near, "swap_resolver_balance", chain="near", token="native") > 0
    assert sample(scrape(stack, "quote"), "swap_grpc_server_handling_seconds_count") >= 1


def test_one_trace_follows_a_swap_through_every_service(stack: LocalStack) -> None:
    """The swap of the metrics test: its Create request's trace holds the quote, both chain services'
    calls and the saga's steps, though the saga ran in the background."""
    spans: dict[str, list[dict[str, object]]] = {}
    for name in ("session", "quote", "chain-base", "chain-near"):
        path = Path(stack.options.work_dir) / f"{name}.spans.jsonl"
        spans[name] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def trace_of(span: dict[str, object]) -> str:
        context = span["context"]
        assert isinstance(context, dict)
        return str(context["trace_id"])

    creates = [s for s in spans["session"] if s["name"] == "/swap.session.v1.SessionService/CreateSession"]
    assert creates
    trace_id = trace_of(creates[-1])
    names = {name: {str(s["name"]) for s in found if trace_of(s) == trace_id} for name, found in spans.items()}
    assert "/swap.quote.v1.QuoteService/GetQuote" in names["quote"]
    assert "/swap.chain.v1.ChainService/PrepareMakerLock" in names["chain-base"]
    assert "/swap.chain.v1.ChainService/CreateLock" in names["chain-base"]
    assert "/swap.chain.v1.ChainService/CreateLock" in names["chain-near"]
    assert "/swap.chain.v1.ChainService/Withdraw" in names["chain-near"]
    assert "/swap.chain.v1.ChainService/Withdraw" in names["chain-base"]
    assert "saga revealing_secret" in names["session"]


@needs_promtool
def test_scraped_metrics_pass_promtool(stack: LocalStack, tmp_path: Path) -> None:
    assert PROMTOOL is not None
    for name in stack.services:
        result = subprocess.run(
            [PROMTOOL, "check", "metrics"], input=scrape(stack, name), capture_output=True, text=True, check=False
        )
        # promtool exits 1 for lint findings too; only errors of the exposition format are failures here.
        assert "error while linting" not in result.stderr.lower(), (name, result.stderr)
        assert result.returncode in (0, 3) or "lint" in (result.stdout + result.stderr).lower(), (name, result)


@needs_promtool
def test_alert_rules_are_valid_and_fire_when_meant_to() -> None:
    assert PROMTOOL is not None
    rules = ROOT / "deploy" / "prometheus"
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", "alerts.yml"], cwd=rules, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts_test.yml"], cwd=rules, capture_output=True, text=True, check=False
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
