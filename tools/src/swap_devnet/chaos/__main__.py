"""`python -m swap_devnet.chaos --seed N --minutes M [--in-flight K] [--report FILE]`: one chaos run; exit 0
when every invariant held, 1 when one did not (the report says which, and how to replay the run)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from pathlib import Path

from swap_devnet.chaos.run import Options, run, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swap_devnet.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=1, help="drives the workload and the nemesis (default 1)")
    parser.add_argument("--minutes", type=float, default=2.0, help="how long load and faults last (default 2)")
    parser.add_argument("--in-flight", type=int, default=20, help="swaps kept open at once (default 20)")
    parser.add_argument("--fault-gap", type=float, default=6.0, help="mean seconds between faults (default 6)")
    parser.add_argument("--work-dir", type=Path, help="logs and chain state (default: a new temporary folder)")
    parser.add_argument("--report", type=Path, help="also write the JSON report here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    for noisy in ("swap_devnet.procs", "swap_devnet.faults", "httpx", "web3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix=f"chaos-{args.seed}-"))
    options = Options(
        seed=args.seed,
        minutes=args.minutes,
        in_flight=args.in_flight,
        work_dir=work_dir,
        mean_fault_gap_s=args.fault_gap,
    )
    result = asyncio.run(run(options))
    text = json.dumps(result, indent=2)
    if args.report:
        args.report.write_text(text + "\n")
    print(text)
    print(table(result), file=sys.stderr)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
