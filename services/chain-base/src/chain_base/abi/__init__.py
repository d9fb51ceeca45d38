"""ABIs of the escrow contracts, exported from contracts/build by `make contracts` (do not edit)."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any


@cache
def load(name: str) -> list[dict[str, Any]]:
    abi: list[dict[str, Any]] = json.loads(files(__package__).joinpath(f"{name}.json").read_text())
    return abi
