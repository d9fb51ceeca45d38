"""Copies the compiled contracts' ABIs into the chain-base package, which ships them.

`--check` fails when the committed ABIs differ from a fresh compile (run `make contracts`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "contracts" / "build"
OUT = ROOT / "services" / "chain-base" / "src" / "chain_base" / "abi"
CONTRACTS = ("EscrowSrc", "EscrowDst", "TestToken")


def rendered(name: str) -> str:
    abi = json.loads((BUILD / f"{name}.json").read_text())["abi"]
    return json.dumps(abi, indent=1, sort_keys=True) + "\n"


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = []
    for name in CONTRACTS:
        target = OUT / f"{name}.json"
        text = rendered(name)
        if check:
            if not target.exists() or target.read_text() != text:
                stale.append(name)
        else:
            target.write_text(text)
    if stale:
        sys.stderr.write(f"stale ABIs in {OUT.relative_to(ROOT)}: {', '.join(stale)}; run 'make contracts'\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
