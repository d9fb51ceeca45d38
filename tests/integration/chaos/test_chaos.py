"""Chaos under load in `make test` (docs/faults.md): every seed of seeds.json, the seeds that once failed, each
with what it found. Each run starts a stack of its own, keeps swaps in flight both ways while the nemesis
breaks things, and passes only when the checker finds every unit of every balance explained and nothing
left locked. The runs of up to two minutes are the short run of make test (keep them to a few minutes in all);
longer ones, found deep into a soak, replay in make faults (`make chaos` replays any seed at any length)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
REGRESSIONS: list[dict[str, Any]] = json.loads((HERE / "seeds.json").read_text())


def chaos(tmp_path: Path, seed: int, minutes: float, in_flight: int) -> dict[str, Any]:
    report = tmp_path / "report.json"
    command = [
        sys.executable, "-m", "swap_devnet.chaos", "--seed", str(seed), "--minutes", str(minutes),
        "--in-flight", str(in_flight), "--work-dir", str(tmp_path / "work"), "--report", str(report),
    ]  # fmt: skip
    # Its own process group: whatever happens to the test, no process of the run's stack outlives it.
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = run.communicate(timeout=minutes * 60 + 600)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert report.exists(), stderr[-3000:]
    result: dict[str, Any] = json.loads(report.read_text())
    assert run.returncode == (0 if result["passed"] else 1)
    return result


# Runs of a few minutes replay in make test; longer ones (a failure found deep into a soak) in make faults.
SOAK_MINUTES = 2


def _replays() -> list[Any]:
    soak = (pytest.mark.slow, pytest.mark.faults)
    return [
        pytest.param(r, id=f"seed-{r['seed']}", marks=soak if r["minutes"] > SOAK_MINUTES else ()) for r in REGRESSIONS
    ]


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("run", _replays())
def test_a_seeded_run_loses_nothing(tmp_path: Path, run: dict[str, Any]) -> None:
    result = chaos(tmp_path, run["seed"], run["minutes"], run["in_flight"])
    assert result["violations"] == [], f"once found: {run['found']}\n{json.dumps(result['violations'], indent=2)}"
    swaps = result["swaps"]
    assert swaps["started"] >= run["in_flight"] and swaps["sessions"] >= run["in_flight"]
    # Swaps ran and ended; the nemesis injected faults of several kinds.
    assert "completed" in swaps["by_end_state"]
    assert len(result["faults"]["by_kind"]) >= 4, result["faults"]
    # A Prometheus scraped the stack and evaluated the deployed alert rules; what fired is listed, and a halt
    # the replicas logged is a fired SwapSagaHalted too.
    alerts = result["alerts"]
    assert isinstance(alerts["fired"], list), alerts
    if alerts["halts"]:
        assert "SwapSagaHalted" in {a.get("alertname") for a in alerts["fired"]}, alerts
