"""swap_runtime.heap.settle, in a process of its own (it changes the collector of the process it runs in):
start-up objects leave the collector's sight, young passes run less often, and cycles made afterwards are
still collected."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc, weakref
from swap_runtime import heap

class Node:
    pass

before = gc.get_freeze_count()
heap.settle()
assert gc.get_freeze_count() > before, "start-up objects are frozen"
assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
node = Node()
node.self = node  # a reference cycle made while serving
gone = weakref.ref(node)
del node
gc.collect()
assert gone() is None, "a cycle made after settle() is still collected"
print("ok")
"""


def test_settle_freezes_start_up_objects_and_still_collects_later_cycles() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
