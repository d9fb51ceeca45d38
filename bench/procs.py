"""Starting service processes on a machine other test runs share."""

from __future__ import annotations

import logging
from pathlib import Path

from swap_devnet.procs import ServiceProcess

log = logging.getLogger("bench.procs")

_START_ATTEMPTS = 3


def start_service(
    name: str, module: str, env: dict[str, str], log_dir: Path, port_var: str, tls_dir: Path | None = None
) -> ServiceProcess:
    """A started ServiceProcess (mutual TLS with the certificate in `tls_dir`). The free port is picked before
    the child binds it, so another process on the machine can take it first; each new attempt draws another
    port."""
    for attempt in range(1, _START_ATTEMPTS + 1):
        proc = ServiceProcess(name, module, env, log_dir, tls_dir=tls_dir)
        env[port_var] = str(proc.port)
        try:
            return proc.start()
        except (RuntimeError, TimeoutError) as err:
            if attempt == _START_ATTEMPTS:
                raise
            log.warning("%s did not start (attempt %d), retrying on another port: %s", name, attempt, err)
    raise AssertionError("unreachable")
