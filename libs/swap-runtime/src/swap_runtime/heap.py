"""The garbage collector tuned for a long-running service.

Everything built at start (modules, protobuf descriptors, clients, settings) lives as long as the process. Left
in the collector's oldest generation, every full collection walks all of it again, and the pause lands on
whichever request is running: a tail-latency spike on a busy service. `settle()` moves what exists after
start out of the collector's sight (gc.freeze) and collects the young generation less often, so each request's
garbage is gathered in fewer, equally cheap passes. Reference cycles made later are still collected; a frozen
object dropped later is still freed by its reference count, only a cycle among frozen objects stays."""

from __future__ import annotations

import gc

# Allocations before a young-generation pass (CPython's default is 700): a request allocates a few hundred
# objects, so the default runs a pass every request or two.
YOUNG_THRESHOLD = 20_000


def settle() -> None:
    """Call once the service is wired and serving: collect what start-up left over, freeze the rest."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
