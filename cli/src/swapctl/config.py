"""swapctl's client config: defaults for `--url`, `--api-key` and `--chains`, so that a command works as
`make run` prints it. The first file found is used:

    $SWAPCTL_CONFIG
    ./.localnet/swapctl.json          (written by `make run` for the stack of this checkout)
    $XDG_CONFIG_HOME/swapctl/config.json   (default ~/.config/swapctl/config.json)

    {"url": "http://127.0.0.1:8080", "api_key": "...", "chains": "chains.json", "keys": "maker-keys.json",
     "maker": {"base": "0x...", "near": "maker.test.near"}, "receiver": {"base": "0x...", "near": "..."}}

Every key is optional; relative `chains` and `keys` paths are relative to the file; `keys` is the maker's
keys file of `--sign` (swapctl.maker); `maker` / `receiver` are the
defaults of `swap --maker` (by the source chain) and `--receiver` (by the destination chain). Options and
their environment variables (SWAPCTL_URL, SWAPCTL_API_KEY, SWAPCTL_CHAINS, SWAPCTL_MAKER, SWAPCTL_RECEIVER)
win over the file.

The chains file is what secret mode maker trusts to find the real chains, so a config found on its own
(not named by SWAPCTL_CONFIG) is used only when it and the chains file it names belong to this user and
nobody else may write them: a `.localnet/` planted in a directory one runs swapctl from is ignored.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from swapctl.errors import CliError, ExitCode

LOCAL_STACK_CONFIG = Path(".localnet") / "swapctl.json"


@dataclass(frozen=True)
class ClientConfig:
    url: str | None = None
    api_key: str | None = None
    chains: Path | None = None
    keys: Path | None = None
    source: Path | None = None
    # Accounts by chain name: the maker's on a swap's source chain, the receiver's on its destination chain.
    makers: dict[str, str] = field(default_factory=dict)
    receivers: dict[str, str] = field(default_factory=dict)


def config_paths() -> list[Path]:
    explicit = os.environ.get("SWAPCTL_CONFIG")
    if explicit:
        return [Path(explicit)]
    home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [LOCAL_STACK_CONFIG, home / "swapctl" / "config.json"]


def _own(path: Path) -> bool:
    """Owned by this user and writable by no one else."""
    try:
        st = path.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def load_config() -> ClientConfig:
    named = bool(os.environ.get("SWAPCTL_CONFIG"))
    for path in config_paths():
        if not path.is_file() or not (named or _own(path)):
            continue
        config = read_config(path)
        if not named and config.chains is not None and not _own(config.chains):
            config = replace(config, chains=None)
        return config
    if os.environ.get("SWAPCTL_CONFIG"):
        raise CliError(f"SWAPCTL_CONFIG names {os.environ['SWAPCTL_CONFIG']}, which does not exist", ExitCode.USAGE)
    return ClientConfig()


def read_config(path: Path) -> ClientConfig:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CliError(f"cannot read the swapctl config {path}: {e}", ExitCode.USAGE) from e
    if not isinstance(data, dict):
        raise CliError(f"the swapctl config {path} is not a JSON object", ExitCode.USAGE)
    chains = data.get("chains")
    return ClientConfig(
        url=str(data["url"]) if data.get("url") else None,
        api_key=str(data["api_key"]) if data.get("api_key") else None,
        chains=(path.parent / str(chains)) if chains else None,
        keys=(path.parent / str(data["keys"])) if data.get("keys") else None,
        source=path,
        makers=_accounts(path, data, "maker"),
        receivers=_accounts(path, data, "receiver"),
    )


def _accounts(path: Path, data: dict[str, object], key: str) -> dict[str, str]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise CliError(
            f'the swapctl config {path}: "{key}" must be an object of accounts by chain, '
            f'e.g. {{"base": "0x...", "near": "account.near"}}',
            ExitCode.USAGE,
        )
    return {str(chain).lower(): str(account) for chain, account in value.items() if account}
