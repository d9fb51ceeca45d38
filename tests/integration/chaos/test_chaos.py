"""Chaos under load in `make test`: a short seeded run (docs/faults.md), then every seed that ever failed.
Each run starts a stack of its own, keeps swaps in flight both ways while the nemesis breaks things, and
passes only when the checker finds every unit of every balance explained and nothing left locked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
SHORT_RUN = {"seed": 11, "minutes": 2, "in_flight": 20}
REGRESSIONS: list[dict[str, Any]] = json.loads((HERE / "seeds.json").read_text())


def chaos(tmp_path: Path, seed: int, minutes: float, in_flight: int) -> dict[str, Any]:
    report = tmp_path / "report.json"
    command = [
        sys.executable, "-m", "swap_devnet.chaos", "--seed", str(seed), "--minutes", str(minutes),
        "--in-flight", str(in_flight), "--work-dir", str(tmp_path / "work"), "--report", str(report),
    ]  # fmt: skip
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=minutes * 60 + 900)
    assert report.exists(), done.stderr[-3000:]
    result: dict[str, Any] = json.loads(report.read_text())
    assert done.returncode == (0 if result["passed"] else 1)
    return result


def test_a_short_seeded_run_loses_nothing(tmp_path: Path) -> None:
    result = chaos(tmp_path, **SHORT_RUN)
    assert result["violations"] == [], json.dumps(result["violations"], indent=2)
    swaps = result["swaps"]
    assert swaps["started"] >= 20 and swaps["sessions"] >= 20
    # Every kind of swap ran and ended; the nemesis injected faults of several kinds.
    assert set(swaps["by_kind"]) >= {"complete", "abandon"}
    assert "completed" in swaps["by_end_state"]
    assert len(result["faults"]["by_kind"]) >= 4, result["faults"]


@pytest.mark.parametrize("run", REGRESSIONS, ids=[f"seed-{r['seed']}" for r in REGRESSIONS])
def test_a_seed_that_once_failed_passes(tmp_path: Path, run: dict[str, Any]) -> None:
    result = chaos(tmp_path, run["seed"], run["minutes"], run["in_flight"])
    assert result["violations"] == [], f"{run.get('found')}: {json.dumps(result['violations'], indent=2)}"
