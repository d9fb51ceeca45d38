"""`--sign`: swapctl performs the maker's step itself, with the maker's own keys, after checking that the step
is the one the maker asked for.

The keys file (docs/cli.md, "Keys file") is named by `--keys`, SWAPCTL_KEYS or the config's "keys":

    {"base": {"private_key": "0x..."},
     "near": {"account_id": "maker.test.near", "private_key": "ed25519:..."}}

Like an ssh key it must belong to this user and be readable by nobody else. The keys never leave this
process: the order is signed here (EIP-712) and the NEAR call is signed here and sent to the NEAR RPC of the
maker's chains file, never to the gateway.

What is checked before anything is signed, against the session the maker created (a gateway that swaps the
terms is refused, and nothing is signed or sent):
- BASE source: the order's maker is the key's address, its token, amount, hashlock, safety deposit and
  timelocks are the session's (its quote's, for the source), and its domain's chain id is the chains
  file's (when the file names one);
- NEAR source: the call locks the session's token and amount in the chains file's HTLC, from the key's
  account, under the session's hashlock and source timelocks, with no safety deposit and no more than
  MAX_NEAR_FEE beyond the amount; a top-up goes to that HTLC's `deposit_native`, at most MAX_NEAR_FEE.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swapctl.errors import CliError, ExitCode
from swapctl.verify import ChainAccess

Json = dict[str, Any]
NATIVE = "native"  # the token name of native NEAR (docs/api.md, assets)


@dataclass(frozen=True)
class MakerKeys:
    source: Path
    base_key: str | None = None
    near_account: str | None = None
    near_key: str | None = None


def load_keys(path: Path) -> MakerKeys:
    try:
        st = path.stat()
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CliError(f"cannot read the keys file {path}: {e}", ExitCode.USAGE) from e
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise CliError(
            f"the keys file {path} must belong to you and be readable by nobody else (chmod 600 {path})",
            ExitCode.USAGE,
        )
    try:
        base = data.get("base") or {}
        near = data.get("near") or {}
        return MakerKeys(
            source=path,
            base_key=str(base["private_key"]) if base else None,
            near_account=str(near["account_id"]) if near else None,
            near_key=str(near["private_key"]) if near else None,
        )
    except (AttributeError, KeyError, TypeError) as e:
        raise CliError(f"the keys file {path} lacks {e}: see docs/cli.md, 'Keys file'", ExitCode.USAGE) from e


class TermsMismatch(CliError):
    def __init__(self, what: str, have: object, want: object) -> None:
        super().__init__(
            f"not signed: the maker's step {what} is {have!r}, the session asked for {want!r}", ExitCode.REJECTED
        )


def _same(what: str, have: object, want: object) -> None:
    if str(have).lower() != str(want).lower():
        raise TermsMismatch(what, have, want)


_TIMELOCKS = ("withdrawal", "public_withdrawal", "cancellation", "public_cancellation")
_NS = 10**9
_ORDER_TIMELOCKS = ("withdrawal", "publicWithdrawal", "cancellation", "publicCancellation")  # EIP-712 names
# What a NEAR lock's deposit may carry beyond the amount (the HTLC's storage fee, 0.01 NEAR on the devnet),
# and the most a storage top-up may be: a call that asks for more is refused.
MAX_NEAR_FEE = 10**23  # 0.1 NEAR


def _same_timelocks(session: Json, have: dict[str, object], names: tuple[str, ...], unit: int = 1) -> None:
    """The lock's timelocks (after it lands: seconds on BASE, `unit` = 10^9 nanoseconds on NEAR) are the
    quote's for the source: a longer cancellation would hold the maker's funds longer if the swap fails."""
    want = session["quote"]["timelocks"]["src"]
    for name, key in zip(_TIMELOCKS, names, strict=True):
        _same(f"{name} timelock", have.get(key), int(want[f"{name}_after_s"]) * unit)


def _at_most(what: str, value: object, limit: int) -> None:
    if int(str(value)) > limit:
        raise TermsMismatch(what, value, f"at most {limit}")


class MakerSigner:
    def __init__(self, keys: MakerKeys, chains: dict[str, ChainAccess]) -> None:
        self.keys = keys
        self.chains = chains

    def sign_order(self, session: Json) -> str:
        """The maker's EIP-712 signature of the session's order, 0x + 130 hex."""
        # Imported when signing only: eth-account and py-near triple the start-up time of every command.
        from eth_account import Account  # noqa: PLC0415
        from eth_account.messages import encode_typed_data  # noqa: PLC0415

        if not self.keys.base_key:
            raise CliError(f'the keys file {self.keys.source} has no "base" key', ExitCode.USAGE)
        account = Account.from_key(self.keys.base_key)
        typed: Json = session["maker_action"]["sign_order"]["typed_data"]
        message = typed.get("message", {})
        _same("maker", session.get("maker"), account.address)
        _same("order's maker", message.get("maker"), account.address)
        _same("order's token", message.get("token"), session["src"]["token"])
        _same("order's amount", message.get("amount"), session["src_amount"])
        _same("order's hashlock", message.get("hashlock"), "0x" + str(session["hashlock"]))
        _same("order's safety deposit", message.get("safetyDeposit"), session["quote"]["src_safety_deposit"])
        _same_timelocks(
            session,
            message.get("timelocks") or {},
            ("withdrawal", "publicWithdrawal", "cancellation", "publicCancellation"),
        )
        base = self.chains.get("base")
        if base is not None and base.chain_id is not None:
            _same("order's chain id", typed.get("domain", {}).get("chainId"), base.chain_id)
        signed = Account.sign_message(encode_typed_data(full_message=typed), account.key)
        return "0x" + bytes(signed.signature).hex()

    def check_near_calls(self, session: Json) -> list[Json]:
        """The calls to make, in order, once each is checked against the session."""
        if not (self.keys.near_account and self.keys.near_key):
            raise CliError(f'the keys file {self.keys.source} has no "near" key', ExitCode.USAGE)
        near = self.chains.get("near")
        if near is None:
            raise CliError("the chains file names no NEAR RPC and HTLC (docs/cli.md, 'Chains file')", ExitCode.USAGE)
        action = session["maker_action"]
        call: Json = action["near_call"]
        _same("maker", session.get("maker"), self.keys.near_account)
        token, amount = session["src"]["token"], int(session["src_amount"])
        if token == NATIVE:
            _same("contract", call["contract"], near.contract)
            _same("method", call["method"], "lock_native")
            terms = call["args"]
            # The deposit carries the amount and the HTLC's storage fee (a maker's lock has no safety deposit).
            if int(call["deposit"]) < amount:
                raise TermsMismatch("deposit", call["deposit"], f"at least {amount}")
            _at_most("deposit beyond the amount", int(call["deposit"]) - amount, MAX_NEAR_FEE)
        else:
            _same("contract", call["contract"], token)
            _same("method", call["method"], "ft_transfer_call")
            _same("receiver", call["args"].get("receiver_id"), near.contract)
            _same("amount", call["args"].get("amount"), amount)
            try:
                terms = json.loads(call["args"].get("msg", ""))
            except ValueError:
                raise TermsMismatch("message", call["args"].get("msg"), "the lock's terms (JSON)") from None
        _same("hashlock", terms.get("hashlock"), session["hashlock"])
        # The maker's own lock carries no safety deposit (the session asks none of a maker who locks).
        _same("safety deposit", terms.get("safety_deposit", "0"), "0")
        _same_timelocks(session, terms.get("timelocks") or {}, _TIMELOCKS, unit=_NS)
        calls = [call]
        prepay = action.get("near_prepay")
        if prepay:
            _same("top-up contract", prepay["contract"], near.contract)
            _same("top-up method", prepay["method"], "deposit_native")
            _at_most("top-up deposit", prepay["deposit"], MAX_NEAR_FEE)
            calls.insert(0, prepay)
        return calls

    async def near_calls(self, calls: list[Json]) -> list[str]:
        """Makes the checked `calls` from the maker's NEAR account; returns their transaction hashes."""
        from py_near.account import Account as NearAccount  # noqa: PLC0415

        near = self.chains["near"]
        assert self.keys.near_account and self.keys.near_key
        account = NearAccount(self.keys.near_account, self.keys.near_key, near.rpc_url)
        hashes = []
        try:
            await account.startup()
            for call in calls:
                result = await account.function_call(
                    call["contract"], call["method"], call["args"], int(call["gas"]), int(call["deposit"])
                )
                status: Json = getattr(result, "status", {}) or {}
                if "Failure" in status:
                    raise CliError(
                        f"the maker's NEAR call {call['method']} failed on chain: {json.dumps(status)[:300]}",
                        ExitCode.REJECTED,
                    )
                hashes.append(str(result.transaction.hash))
        except CliError:
            raise
        except Exception as e:  # py-near raises its own errors and aiohttp's
            raise CliError(
                f"the maker's NEAR call could not be made through {near.rpc_url}: {e!r}"[:400], ExitCode.UNREACHABLE
            ) from e
        finally:
            await account.shutdown()
        return hashes
