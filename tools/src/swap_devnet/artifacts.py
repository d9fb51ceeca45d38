"""Locating the repository's build outputs: compiled contract artifacts and the node tooling binaries."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ANVIL_ENV = "ANVIL_BIN"


class ArtifactError(RuntimeError):
    """A build output the caller needs is missing or unreadable."""


@dataclass(frozen=True)
class ContractArtifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str


def repo_root(start: Path | None = None) -> Path:
    """The closest folder at or above `start` (default: this file) holding the node tooling's package.json."""
    here = (start or Path(__file__)).resolve()
    for folder in (here, *here.parents):
        if (folder / "package.json").is_file():
            return folder
    raise ArtifactError(f"no package.json at or above {here}; pass the repository root explicitly")


def build_dir(root: Path | None = None) -> Path:
    return (root or repo_root()) / "contracts" / "build"


def load_artifact(name: str, root: Path | None = None) -> ContractArtifact:
    path = build_dir(root) / f"{name}.json"
    if not path.is_file():
        raise ArtifactError(f"contract artifact {path} not found: run `make contracts` first")
    try:
        data = json.loads(path.read_text())
        abi, bytecode = data["abi"], data["bytecode"]
    except (ValueError, KeyError) as exc:
        raise ArtifactError(f"contract artifact {path} is malformed ({exc}): run `make contracts` again") from exc
    if not isinstance(abi, list) or not isinstance(bytecode, str) or not bytecode.startswith("0x"):
        raise ArtifactError(f"contract artifact {path} is malformed: run `make contracts` again")
    return ContractArtifact(name=name, abi=abi, bytecode=bytecode)


def near_wasm(name: str, root: Path | None = None) -> bytes:
    """A NEAR contract built from contracts/near (`swap_htlc` or `swap_token`)."""
    path = build_dir(root) / "near" / f"{name}.wasm"
    if not path.is_file():
        raise ArtifactError(f"NEAR contract {path} not found: run `make contracts` first")
    return path.read_bytes()


def anvil_binary(root: Path | None = None) -> Path:
    """The native anvil binary installed by npm (`$ANVIL_BIN` overrides it).

    The platform package's binary is preferred over node_modules/.bin/anvil, which is a node wrapper: stopping
    the wrapper would not reliably stop the chain it spawned.
    """
    override = os.environ.get(ANVIL_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise ArtifactError(f"${ANVIL_ENV} points to {path}, which does not exist")
        return path
    modules = (root or repo_root()) / "node_modules"
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    candidates = [
        modules / "@foundry-rs" / f"anvil-{platform.system().lower()}-{machine}" / "bin" / "anvil",
        *sorted((modules / "@foundry-rs").glob("anvil-*/bin/anvil")),
        modules / ".bin" / "anvil",
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise ArtifactError(f"anvil not found under {modules}: run `make setup` (npm ci) first")
