"""Generated files stay in step with their sources: the proto stubs, the ABIs chain-base ships and
deploy/env.example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "command",
    [
        ["scripts/gen_protos.sh", "--check"],
        [sys.executable, "scripts/export_abis.py", "--check"],
        [sys.executable, "scripts/gen_env_example.py", "--check"],
    ],
    ids=["protos", "abis", "env-example"],
)
def test_generated_file_is_current(command: list[str]) -> None:
    if "export_abis" in command[-2] and not (ROOT / "contracts" / "build").exists():
        pytest.skip("contracts not compiled (make contracts)")
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
