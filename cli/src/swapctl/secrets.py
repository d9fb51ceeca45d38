"""The maker's secrets (secret mode "maker"), kept on this machine until their swap ends.

One file per swap, readable by its owner only (0600, in a 0700 directory), written before the session is
created, so a closed terminal or a crash at any point can still release the secret or follow the refund:

    $SWAPCTL_STATE_DIR/secrets/<hashlock>.json    (default: $XDG_STATE_HOME/swapctl, ~/.local/state/swapctl)

It holds the secret, its hashlock, the session id once known, and what the maker asked for (receiver,
destination chain and token): the destination lock is checked against those, not against what the service
says of itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

_DIR_MODE = 0o700
_FILE_MODE = 0o600


class SecretMode(StrEnum):
    """Who holds a swap's secret (docs/api.md, "Secret modes")."""

    MAKER = "maker"  # this machine: released only after checking the destination lock on chain
    SERVICE = "service"  # the service: the maker trusts the operator with it


def state_dir() -> Path:
    explicit = os.environ.get("SWAPCTL_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "swapctl"


@dataclass
class Held:
    """One swap's secret and the terms the maker asked for."""

    secret: str  # 64 hex digits
    hashlock: str  # SHA-256 of the secret, 64 hex digits
    receiver: str
    dst_chain: str  # "base" / "near"
    dst_token: str
    session_id: str = ""
    created_at: float = 0.0
    released: bool = False


class SecretStore:
    def __init__(self, root: Path | None = None) -> None:
        self.dir = (root or state_dir()) / "secrets"

    def _path(self, hashlock: str) -> Path:
        return self.dir / f"{hashlock}.json"

    def draw(self, *, receiver: str, dst_chain: str, dst_token: str) -> Held:
        """A new 32-byte secret from the OS, saved before anyone learns its hashlock."""
        secret = secrets.token_bytes(32)
        held = Held(
            secret=secret.hex(),
            hashlock=hashlib.sha256(secret).hexdigest(),
            receiver=receiver,
            dst_chain=dst_chain,
            dst_token=dst_token,
            created_at=time.time(),
        )
        self.save(held)
        return held

    def save(self, held: Held) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=_DIR_MODE)
        os.chmod(self.dir, _DIR_MODE)
        path = self._path(held.hashlock)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(held), out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)

    def find(self, session_id: str = "", hashlock: str = "") -> Held | None:
        """The secret of a session (by its id or its hashlock), if this machine holds it."""
        if hashlock:
            return self._read(self._path(hashlock.lower().removeprefix("0x")))
        if not self.dir.is_dir():
            return None
        for path in sorted(self.dir.glob("*.json")):
            held = self._read(path)
            if held is not None and held.session_id == session_id:
                return held
        return None

    def forget(self, held: Held) -> None:
        """The swap ended: its secret is public (completed) or useless (refunded); the file goes."""
        self._path(held.hashlock).unlink(missing_ok=True)

    @staticmethod
    def _read(path: Path) -> Held | None:
        try:
            data = json.loads(path.read_text())
            held = Held(**data)
        except (OSError, ValueError, TypeError):
            return None
        if hashlib.sha256(bytes.fromhex(held.secret)).hexdigest() != held.hashlock:
            return None
        return held
