"""deploy/grafana/swap-dashboard.json: a Grafana dashboard whose every query names only metrics the services
export (taken from the metric objects themselves, so a rename shows here) and parses as PromQL."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gateway.metrics
import pytest
import session.metrics
import swap_runtime.metrics
import yaml
from prometheus_client.metrics import MetricWrapperBase

from tests.integration.deploy.common import DEPLOY

pytestmark = pytest.mark.integration

DASHBOARD = DEPLOY / "grafana" / "swap-dashboard.json"
PROMTOOL = shutil.which("promtool")

# What each metric type exposes besides its own name (prometheus_client's exposition).
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}
_FUNCTIONS = {"sum", "max", "min", "avg", "count", "rate", "increase", "irate", "histogram_quantile", "topk"}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool"}
# Grafana's range variables; any duration stands in for them when the query is parsed on its own.
_GRAFANA_RANGES = re.compile(r"\$__(rate_interval|range|interval)\b")


def exported_names() -> set[str]:
    families: list[tuple[str, str]] = []
    for module in (swap_runtime.metrics, session.metrics):
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                families += [(family.name, family.type) for family in value.describe()]
    families += [(family.name, family.type) for family in gateway.metrics.Metrics().registry.collect()]
    return {name + suffix for name, kind in families for suffix in _SUFFIXES[kind]}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in panels(dashboard)
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def identifiers(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, functions) of one query: label matchers, strings and durations taken out first."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    bare = re.sub(r"\{[^}]*\}", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    functions = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\(", bare))
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare))
    return words - functions - _KEYWORDS, functions - _KEYWORDS


def balanced(expr: str) -> bool:
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_a_prometheus_datasource_variable_used_by_every_panel(dashboard: dict[str, Any]) -> None:
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    ref = {"type": "prometheus", "uid": f"${{{variable['name']}}}"}
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == ref, panel["title"]
        assert panel["targets"] and all(t["datasource"] == ref for t in panel["targets"]), panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), panel["title"]


def test_the_dashboard_covers_what_operators_watch(dashboard: dict[str, Any]) -> None:
    used = " ".join(expr for _, expr in queries(dashboard))
    for metric in (
        "swap_sessions_initiated_total",
        "swap_sessions_ended_total",
        "swap_sessions_active",
        "swap_session_duration_seconds_bucket",
        "swap_session_step_seconds_bucket",
        "swap_grpc_server_handling_seconds_bucket",
        "gateway_http_request_duration_seconds_bucket",
        "swap_chain_rpc_seconds_bucket",
        "swap_chain_rpc_errors_total",
        "swap_chain_reorgs_total",
        "swap_resolver_balance",
        "swap_resolver_liquidity_floor",
    ):
        assert metric in used, metric
    assert "histogram_quantile(0.5," in used and "histogram_quantile(0.95," in used


def test_queries_name_only_exported_metrics_and_known_functions(dashboard: dict[str, Any]) -> None:
    exported = exported_names()
    assert "swap_sessions_ended_total" in exported and "gateway_http_requests_total" in exported
    for title, expr in queries(dashboard):
        assert balanced(expr), (title, expr)
        metrics, functions = identifiers(expr)
        assert metrics, (title, expr)
        assert metrics <= exported, (title, sorted(metrics - exported))
        assert functions <= _FUNCTIONS, (title, sorted(functions - _FUNCTIONS))


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")
def test_promtool_parses_every_query(dashboard: dict[str, Any], tmp_path: Path) -> None:
    """promtool has no query checker of its own; as recording rules, every query goes through its parser."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": _GRAFANA_RANGES.sub("5m", expr)}
        for i, (_, expr) in enumerate(queries(dashboard))
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert PROMTOOL is not None
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], check=False, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
