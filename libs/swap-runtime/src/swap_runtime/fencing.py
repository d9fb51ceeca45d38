"""Fencing tokens for chain actions: a replica that lost its lease must not act after its successor.

A caller that drives a swap under a lease sends the session id (`x-fence-key`) and its lease epoch
(`x-fence-epoch`) with every chain action. The chain service remembers the highest epoch seen per key and
refuses a lower one before anything reaches the chain, so a replica stalled across a takeover (a GC pause,
a partition) cannot withdraw or cancel after the new holder has started acting.

The table lives in memory and is bounded (least recently used keys are forgotten). A restart of the
chain service forgets every mark. That is acceptable: the lease itself still expires, so a stalled
replica does not keep acting as the holder, and the fence only has to beat a replica stalled across a
takeover; after a restart the new holder's next call sets the mark again, leaving only a stale call that
lands between the restart and that call unfenced, and every chain action still checks chain state
first (idempotent withdraw / cancel, lock ids derived from the terms).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from swap_runtime.errors import FailedPrecondition, InvalidArgument

FENCE_KEY_HEADER = "x-fence-key"
FENCE_EPOCH_HEADER = "x-fence-epoch"
STALE_FENCE = "STALE_FENCE"
DEFAULT_LIMIT = 100_000
MAX_KEY_LENGTH = 256
_UINT64_MAX = 2**64 - 1
_DECIMAL = re.compile(r"[0-9]{1,20}")


def _metadata_value(metadata: Iterable[Any] | None, key: str) -> str | None:
    for item in metadata or ():
        name, value = item[0], item[1]
        if name == key:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def parse_fence(metadata: Iterable[Any] | None) -> tuple[str, int] | None:
    """(key, epoch) from gRPC invocation metadata; None when the call carries no fence. A half-given or
    malformed fence is refused rather than ignored, so a caller's mistake cannot silently unfence it."""
    key = _metadata_value(metadata, FENCE_KEY_HEADER)
    epoch_text = _metadata_value(metadata, FENCE_EPOCH_HEADER)
    if key is None and epoch_text is None:
        return None
    if not key:
        raise InvalidArgument(FENCE_KEY_HEADER, "required with x-fence-epoch: the session id")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidArgument(FENCE_KEY_HEADER, f"at most {MAX_KEY_LENGTH} characters")
    if epoch_text is None:
        raise InvalidArgument(FENCE_EPOCH_HEADER, "required with x-fence-key: the lease epoch")
    if not _DECIMAL.fullmatch(epoch_text) or int(epoch_text) > _UINT64_MAX:
        raise InvalidArgument(FENCE_EPOCH_HEADER, f"must be a decimal unsigned 64-bit integer, got {epoch_text!r}")
    return key, int(epoch_text)


class FenceTable:
    """Highest epoch seen per key, the least recently used keys forgotten beyond `limit`.

    `admit` does not await, so under asyncio the check and the raise of the mark are one step: two calls
    can never both pass with the mark between them."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._limit = limit
        self._highest: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._highest)

    def highest(self, key: str) -> int | None:
        return self._highest.get(key)

    def admit(self, key: str, epoch: int) -> None:
        """Raises the mark to `epoch`, or refuses with STALE_FENCE when a higher epoch was seen."""
        highest = self._highest.get(key)
        if highest is not None and epoch < highest:
            raise FailedPrecondition(
                f"stale fence: epoch {epoch} is older than epoch {highest} already seen for this key",
                reason=STALE_FENCE,
                metadata={"epoch": str(epoch), "highest": str(highest)},
            )
        self._highest[key] = epoch if highest is None else max(epoch, highest)
        self._highest.move_to_end(key)
        if len(self._highest) > self._limit:
            self._highest.popitem(last=False)

    def check(self, metadata: Iterable[Any] | None) -> None:
        """Admits the call's fence from its gRPC metadata; a call without one passes."""
        fence = parse_fence(metadata)
        if fence is not None:
            self.admit(*fence)
