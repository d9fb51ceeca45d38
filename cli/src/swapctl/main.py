"""swapctl's commands (docs/cli.md): each parses its arguments, talks to the gateway, renders, and exits
with one of the codes of `ExitCode`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.text import Text

from swapctl import __version__
from swapctl.assets import AssetBook, AssetInfo, Side
from swapctl.client import Gateway, Json
from swapctl.config import load_config
from swapctl.errors import CliError, ExitCode
from swapctl.maker import MakerSigner, load_keys
from swapctl.release import Releaser
from swapctl.render import (
    REFUND_STATES,
    assets_table,
    maker_action_view,
    progress_rows,
    progress_table,
    quote_table,
    refund_windows,
    session_table,
    sessions_table,
    step_line,
    swap_view,
)
from swapctl.secrets import Held, SecretMode, SecretStore
from swapctl.stream import TERMINAL_STATES, SessionFollower
from swapctl.units import InputError, check_amount, format_units, parse_amount, parse_asset
from swapctl.verify import DEFAULT_MIN_TIME_LEFT_S, ChainAccess, load_chains

DEFAULT_URL = "http://127.0.0.1:8080"
_HASHLOCK = re.compile(r"[0-9a-f]{64}")
_SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")
_SPINNER = "◐◓◑◒"
_MAX_PAGES = 100

_HELP = "Atomic swaps between BASE and NEAR through the swap gateway: quotes, swaps and their live progress."
_EPILOG = (
    "Exit codes: 0 success (swap, watch, execute --watch: the swap completed); "
    "1 the swap ended otherwise (refunded, cancelled, failed, timeout); 2 bad arguments; "
    "3 rejected by the gateway; 4 missing or wrong API key; 5 gateway unreachable; "
    "6 gateway or service error; 130 interrupted."
)

app = typer.Typer(
    name="swapctl",
    help=_HELP,
    epilog=_EPILOG,
    no_args_is_help=True,
    # --install-completion / --show-completion for bash, zsh, fish and PowerShell.
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class Settings:
    url: str
    api_key: str | None
    timeout: float
    chains: Path | None = None  # the config file's chains file, when --chains is not given
    keys: Path | None = None  # the config file's maker keys file, when --keys is not given
    # The config file's accounts by chain: --maker by the source chain, --receiver by the destination chain.
    makers: dict[str, str] = field(default_factory=dict)
    receivers: dict[str, str] = field(default_factory=dict)

    def gateway(self) -> Gateway:
        return Gateway(self.url, self.api_key, timeout=self.timeout)


# Piped output has no width of its own; rich's 80 columns would fold ids and hashes mid-line.
_PIPE_WIDTH = 200


def _out() -> Console:
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, width=_PIPE_WIDTH if piped else None)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"swapctl {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="SWAPCTL_URL",
            help=f"The gateway's base URL [default: the config's, else {DEFAULT_URL}].",
            show_envvar=True,
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="SWAPCTL_API_KEY", help="Sent as X-API-Key.", show_envvar=True),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds to wait for each HTTP answer.")] = 15.0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    try:
        config = load_config()
    except CliError as e:
        raise typer.BadParameter(e.message, param_hint="SWAPCTL_CONFIG") from e
    ctx.obj = Settings(
        url=url or config.url or DEFAULT_URL,
        api_key=api_key or config.api_key,
        timeout=timeout,
        chains=config.chains,
        keys=config.keys,
        makers=config.makers,
        receivers=config.receivers,
    )


# Arguments shared by the commands; the API's field names map back to them in error messages.
SrcArg = Annotated[
    str,
    typer.Argument(
        help="What the maker pays: CHAIN:TOKEN with a symbol, address or account id (base:TUSD, near:NEAR, "
        "base:0x5FbD...), or just the chain for its native coin; swapctl assets lists them."
    ),
]
DstArg = Annotated[
    str, typer.Argument(help="What the receiver gets: CHAIN:TOKEN as for SRC, e.g. near:TUSD or base:ETH.")
]
AmountArg = Annotated[
    str,
    typer.Argument(help="What the maker pays, in token units with the source token's decimals (25, 25.5)."),
]
BaseUnitsOpt = Annotated[
    bool, typer.Option("--base-units", help="AMOUNT is in base units (25500000) instead of token units.")
]
SlippageOpt = Annotated[int | None, typer.Option("--slippage-bps", min=0, max=5_000, help="Slippage floor in bps.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the gateway's JSON instead of a table.")]
SessionArg = Annotated[str, typer.Argument(help="The session id.")]
ChainsOpt = Annotated[
    Path | None,
    typer.Option(
        "--chains",
        envvar="SWAPCTL_CHAINS",
        show_envvar=True,
        help="Your chains file (RPC URLs and escrow contracts, docs/cli.md): secret mode maker reads the "
        "destination lock from the chain itself before releasing the secret.",
    ),
]
SignOpt = Annotated[
    bool,
    typer.Option(
        "--sign",
        help="swapctl performs the maker's step itself with the maker's keys (--keys), after checking it is the "
        "session's: signs the order (BASE source) or makes the NEAR call (NEAR source, needs --chains).",
    ),
]
KeysOpt = Annotated[
    Path | None,
    typer.Option(
        "--keys",
        envvar="SWAPCTL_KEYS",
        show_envvar=True,
        help="The maker's keys file for --sign (docs/cli.md, 'Keys file'); yours alone (chmod 600).",
    ),
]
MinTimeLeftOpt = Annotated[
    int,
    typer.Option(
        "--min-time-left", min=1, help="Seconds the destination lock must still have before it can be cancelled."
    ),
]

_QUOTE_FIELDS = {
    "src": "SRC",
    "dst": "DST",
    "src_amount": "AMOUNT",
    "slippage_bps": "--slippage-bps",
    "urgency": "--urgency",
}
_SESSION_FIELDS = {
    **_QUOTE_FIELDS,
    "maker": "--maker",
    "receiver": "--receiver",
    "quote_id": "--quote-id",
    "request_id": "--request-id",
}


@app.command()
def quote(
    ctx: typer.Context,
    src: SrcArg,
    dst: DstArg,
    amount: AmountArg,
    base_units: BaseUnitsOpt = False,
    slippage_bps: SlippageOpt = None,
    urgency: Annotated[
        float | None, typer.Option("--urgency", min=0.5, max=4.0, help="Auction speed, 0.5..4 (1 = normal).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Price a swap: the Dutch auction now, its start and end, fees, the minimum received, validity."""
    trade = Trade.parse(src, dst, amount, base_units)

    async def work(gw: Gateway) -> int:
        book = await _book(gw)
        body = trade.body(book, slippage_bps)
        if urgency is not None:
            body["urgency"] = urgency
        q = await gw.quote(body, _QUOTE_FIELDS)
        if as_json:
            _print_json(q)
        else:
            src_decimals, dst_decimals = book.decimals(q.get("src")), book.decimals(q.get("dst"))
            _out().print(quote_table(q, src_decimals=src_decimals, dst_decimals=dst_decimals))
        return ExitCode.OK

    _run(ctx, work)


@app.command()
def swap(
    ctx: typer.Context,
    src: SrcArg,
    dst: DstArg,
    amount: AmountArg,
    maker: Annotated[
        str | None,
        typer.Option(
            "--maker",
            envvar="SWAPCTL_MAKER",
            show_envvar=True,
            help="The maker's address / account id on the source chain [default: the config's, for that chain].",
        ),
    ] = None,
    receiver: Annotated[
        str | None,
        typer.Option(
            "--receiver",
            envvar="SWAPCTL_RECEIVER",
            show_envvar=True,
            help="Who gets the funds on the destination chain [default: the config's, for that chain].",
        ),
    ] = None,
    base_units: BaseUnitsOpt = False,
    slippage_bps: SlippageOpt = None,
    quote_id: Annotated[str | None, typer.Option("--quote-id", help="Bind a quote from swapctl quote.")] = None,
    request_id: Annotated[
        str | None, typer.Option("--request-id", help="Idempotency key; a repeat returns the same session.")
    ] = None,
    sign: SignOpt = False,
    keys: KeysOpt = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Print the maker's action and exit instead of following the swap.")
    ] = False,
    action_file: Annotated[
        Path | None, typer.Option("--action-file", help="Also write the maker's action (JSON) to this file.")
    ] = None,
    secret_mode: Annotated[
        SecretMode,
        typer.Option(
            "--secret-mode",
            help="maker: swapctl draws and keeps the secret and releases it only after checking the destination "
            "lock on chain (needs --chains); service: the service holds it (you trust the operator).",
        ),
    ] = SecretMode.MAKER,
    chains: ChainsOpt = None,
    min_time_left: MinTimeLeftOpt = DEFAULT_MIN_TIME_LEFT_S,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each new version of the session as one JSON line (notes on stderr).")
    ] = False,
) -> None:
    """Start a swap and follow it live until it completes or is refunded (exit 0 only when completed)."""
    trade = Trade.parse(src, dst, amount, base_units)
    settings: Settings = ctx.obj
    maker = maker or settings.makers.get(trade.src["chain"])
    receiver = receiver or settings.receivers.get(trade.dst["chain"])
    if not maker:
        raise typer.BadParameter(
            f'required: the maker\'s account on {trade.src["chain"]} (or "maker" in the config file)',
            param_hint="--maker",
        )
    if not receiver:
        raise typer.BadParameter(
            f'required: the receiver\'s account on {trade.dst["chain"]} (or "receiver" in the config file)',
            param_hint="--receiver",
        )
    access = _chains_for_maker_mode(ctx, chains) if secret_mode is SecretMode.MAKER else {}
    signer = _signer(ctx, keys, chains) if sign else None

    async def work(gw: Gateway) -> int:
        book = await _book(gw)
        body = trade.body(book, slippage_bps)
        body["maker"] = maker
        body["receiver"] = receiver
        body["request_id"] = request_id or str(uuid.uuid4())
        if quote_id:
            body["quote_id"] = quote_id
        store = SecretStore()
        held: Held | None = None
        if secret_mode is SecretMode.MAKER:
            dst_asset = body["dst"]
            held = store.draw(receiver=receiver, dst_chain=dst_asset["chain"], dst_token=dst_asset["token"])
            body["secret_mode"] = secret_mode.value
            body["hashlock"] = held.hashlock
        session = await gw.create_session(body, _SESSION_FIELDS)
        sid = str(session["session_id"])
        if held is not None:
            if session.get("hashlock") != held.hashlock:
                raise CliError(
                    f"session {sid} came back with hashlock {session.get('hashlock')!r}, not the one swapctl sent "
                    f"({held.hashlock}): the secret is kept and nothing was signed",
                    ExitCode.SERVER,
                )
            held.session_id = sid
            store.save(held)
        out = _err() if as_json else _out()
        out.print(Text.assemble("session ", (sid, "bold"), f" created ({session.get('state', '?')})"))
        if held is not None:
            out.print(Text(f"secret mode maker: the secret stays in {store.dir} until the swap ends", style="dim"))
        if action_file is not None:
            action_file.write_text(json.dumps(session.get("maker_action"), indent=2) + "\n")
        if signer is not None:
            try:
                session = await _maker_step(gw, signer, session, out)
            except CliError as e:
                # The session exists by now; say which, so the swap can go on by hand.
                e.message = f"{e.message} (session {sid})"
                raise
        else:
            out.print(maker_action_view(session))
            if no_wait:
                if as_json:
                    _print_json(session)
                return ExitCode.OK
            out.print(
                Text(
                    f"waiting for the maker's step (swapctl execute {sid} ...); "
                    f"Ctrl-C stops waiting, not the swap (swapctl watch {sid} resumes)",
                    style="dim",
                )
            )
        releaser = _releaser(gw, store, held, access, min_time_left, as_json) if held is not None else None
        return await _follow(gw, session, book, releaser=releaser, as_json=as_json)

    _run(ctx, work)


@app.command()
def reveal(
    ctx: typer.Context,
    session_id: SessionArg,
    chains: ChainsOpt = None,
    min_time_left: MinTimeLeftOpt = DEFAULT_MIN_TIME_LEFT_S,
    as_json: JsonOpt = False,
) -> None:
    """Secret mode maker: check the destination lock on chain, then release the secret this machine holds."""
    access = _chains_for_maker_mode(ctx, chains)

    async def work(gw: Gateway) -> int:
        store = SecretStore()
        held = store.find(session_id)
        if held is None:
            raise CliError(f"this machine holds no secret for session {session_id} (in {store.dir})", ExitCode.USAGE)
        session = await gw.get_session(session_id)
        if session.get("state") != "awaiting_secret":
            raise CliError(
                f"the session is {session.get('state')}: the secret is released only in awaiting_secret",
                ExitCode.REJECTED,
            )
        releaser = _releaser(gw, store, held, access, min_time_left)
        await releaser.release_when_checked(session)
        if releaser.refused:
            return ExitCode.REJECTED
        await _show_session(gw, await gw.get_session(session_id), as_json)
        return ExitCode.OK

    _run(ctx, work)


def _chains_for_maker_mode(ctx: typer.Context, chains: Path | None) -> dict[str, ChainAccess]:
    settings: Settings = ctx.obj
    chains = chains or settings.chains
    if chains is None:
        raise typer.BadParameter(
            "secret mode maker checks the destination lock on its own chain before releasing the secret: give "
            "your chains file (docs/cli.md, 'Chains file'), or --secret-mode service to let the service hold it",
            param_hint="--chains",
        )
    try:
        return load_chains(chains)
    except CliError as e:
        raise typer.BadParameter(e.message, param_hint="--chains") from e


def _signer(ctx: typer.Context, keys: Path | None, chains: Path | None) -> MakerSigner:
    settings: Settings = ctx.obj
    path = keys or settings.keys
    if path is None:
        raise typer.BadParameter("--sign needs the maker's keys file (docs/cli.md, 'Keys file')", param_hint="--keys")
    try:
        keys_read = load_keys(path)
    except CliError as e:
        raise typer.BadParameter(e.message, param_hint="--keys") from e
    chains_path = chains or settings.chains
    try:
        return MakerSigner(keys_read, load_chains(chains_path) if chains_path else {})
    except CliError as e:
        raise typer.BadParameter(e.message, param_hint="--chains") from e


async def _maker_step(gw: Gateway, signer: MakerSigner, session: Json, out: Console) -> Json:
    """The maker's step, made here with the maker's keys once it is checked against the session."""
    sid = str(session["session_id"])
    action = session.get("maker_action") or {}
    if "sign_order" in action:
        signature = signer.sign_order(session)
        session = await gw.execute(sid, signature=signature, request_id=None)
        out.print("swapctl signed the order with the maker's key")
        return session
    if "near_call" in action:
        calls = signer.check_near_calls(session)
        # Execute first: the session then watches for the lock the maker's call makes.
        await gw.execute(sid, signature=None, request_id=None)
        hashes = await signer.near_calls(calls)
        out.print(f"swapctl made the maker's NEAR call from {signer.keys.near_account}: tx {', '.join(hashes)}")
        return await gw.get_session(sid)
    raise CliError(f"session {sid} has no maker step to make (state {session.get('state')})", ExitCode.REJECTED)


def _releaser(
    gw: Gateway,
    store: SecretStore,
    held: Held,
    access: dict[str, ChainAccess],
    min_time_left: int,
    quiet_stdout: bool = False,
) -> Releaser:
    out = _err() if quiet_stdout else _out()
    return Releaser(
        gw,
        store,
        held,
        access,
        say=lambda message, style: out.print(Text(message, style=style), soft_wrap=True),
        min_time_left_s=min_time_left,
    )


@app.command()
def execute(
    ctx: typer.Context,
    session_id: SessionArg,
    signature: Annotated[
        str | None, typer.Option("--signature", help="The maker's EIP-712 signature, 0x + 130 hex (BASE source).")
    ] = None,
    request_id: Annotated[str | None, typer.Option("--request-id", help="Idempotency key for retries.")] = None,
    sign: SignOpt = False,
    keys: KeysOpt = None,
    chains: ChainsOpt = None,
    watch: Annotated[bool, typer.Option("--watch", help="Then follow the swap live until it ends.")] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the gateway's JSON; with --watch, each new version of the session as one line."
        ),
    ] = False,
) -> None:
    """Hand the maker's signature to the session (or, for a NEAR source, ask it to adopt the maker's lock);
    with --sign, make the maker's step here first."""
    if signature is not None and not _SIGNATURE.match(signature):
        raise typer.BadParameter("expected 0x followed by 130 hex digits (65 bytes)", param_hint="--signature")
    if sign and signature is not None:
        raise typer.BadParameter("give --signature or --sign, not both", param_hint="--sign")
    signer = _signer(ctx, keys, chains) if sign else None

    async def work(gw: Gateway) -> int:
        if signer is not None:
            out = _err() if as_json else _out()
            current = await gw.get_session(session_id)
            hashlock = str(current.get("hashlock", ""))
            if current.get("secret_mode") == SecretMode.MAKER.value and (
                not _HASHLOCK.fullmatch(hashlock) or SecretStore().find(hashlock=hashlock) is None
            ):
                # Whoever knows that hashlock's secret could take the maker's funds once they are locked.
                raise CliError(
                    f"not signed: session {session_id} is in secret mode maker and this machine holds no secret for "
                    f"its hashlock {current.get('hashlock')} (swapctl swap keeps it in {SecretStore().dir})",
                    ExitCode.REJECTED,
                )
            session = await _maker_step(gw, signer, current, out)
        else:
            session = await gw.execute(session_id, signature=signature, request_id=request_id)
        if watch:
            book = AssetBook([]) if as_json else await _display_book(gw)
            return await _follow(gw, session, book, as_json=as_json)
        await _show_session(gw, session, as_json)
        return ExitCode.OK

    _run(ctx, work)


@app.command()
def watch(
    ctx: typer.Context,
    session_id: SessionArg,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Resume after this cursor (printed when a watch is lost).")
    ] = None,
    chains: ChainsOpt = None,
    min_time_left: MinTimeLeftOpt = DEFAULT_MIN_TIME_LEFT_S,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each new version of the session as one JSON line (notes on stderr).")
    ] = False,
) -> None:
    """Follow a session live over the WebSocket until it ends (exit 0 only when it completed). A secret this
    machine holds for it (secret mode maker) is released when the destination lock checks out."""

    async def work(gw: Gateway) -> int:
        session = await gw.get_session(session_id)
        store = SecretStore()
        held = store.find(session_id)
        releaser = None
        if held is not None and session.get("state") not in TERMINAL_STATES:
            releaser = _releaser(gw, store, held, _chains_for_maker_mode(ctx, chains), min_time_left, as_json)
        book = AssetBook([]) if as_json else await _display_book(gw)
        return await _follow(gw, session, book, cursor=cursor, releaser=releaser, as_json=as_json)

    _run(ctx, work)


@app.command("list")
def list_sessions(
    ctx: typer.Context,
    maker: Annotated[str | None, typer.Option("--maker", help="Only this maker's sessions.")] = None,
    page_size: Annotated[int | None, typer.Option("--page-size", min=1, max=100, help="Sessions per page.")] = None,
    page_token: Annotated[str | None, typer.Option("--page-token", help="Continue from a previous page.")] = None,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow every page.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List sessions, newest first as the gateway orders them."""

    async def work(gw: Gateway) -> int:
        sessions: list[Json] = []
        token = page_token
        for _ in range(_MAX_PAGES):
            page = await gw.list_sessions(maker=maker, page_size=page_size, page_token=token)
            sessions += [s for s in page.get("sessions") or [] if isinstance(s, dict)]
            token = page.get("next_page_token") or None
            if not all_pages or token is None:
                break
        if as_json:
            _print_json({"sessions": sessions, "next_page_token": token})
            return ExitCode.OK
        out = _out()
        if not sessions:
            out.print("no sessions")
        else:
            book = await _display_book(gw)
            out.print(sessions_table(sessions, decimals=book.decimals))
        if token:
            out.print(Text(f"more: swapctl list --page-token {token}", style="dim"))
        return ExitCode.OK

    _run(ctx, work)


@app.command()
def get(ctx: typer.Context, session_id: SessionArg, as_json: JsonOpt = False) -> None:
    """Show one session: its state, amounts, locks, refund windows and every step with its transactions."""

    async def work(gw: Gateway) -> int:
        await _show_session(gw, await gw.get_session(session_id), as_json)
        return ExitCode.OK

    _run(ctx, work)


@app.command()
def cancel(ctx: typer.Context, session_id: SessionArg, as_json: JsonOpt = False) -> None:
    """Ask for a cancellation: before any lock the session is cancelled, after one it is refunded."""

    async def work(gw: Gateway) -> int:
        await _show_session(gw, await gw.cancel(session_id), as_json)
        return ExitCode.OK

    _run(ctx, work)


@app.command()
def assets(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The tokens the gateway quotes: what SRC and DST may name, their decimals, and the side of a swap each
    can be on (native ETH on BASE only as a destination)."""

    async def work(gw: Gateway) -> int:
        listed = await gw.assets()
        if as_json:
            _print_json(listed)
        else:
            _out().print(assets_table(AssetBook.from_json(listed)))
        return ExitCode.OK

    _run(ctx, work)


@dataclass(frozen=True)
class Trade:
    """SRC, DST and AMOUNT as typed; their syntax is checked before anything is sent, their tokens and the
    amount's decimals once the gateway's token list is in."""

    src_text: str
    dst_text: str
    src: dict[str, str]
    dst: dict[str, str]
    amount: str
    base_units: bool

    @classmethod
    def parse(cls, src: str, dst: str, amount: str, base_units: bool) -> Trade:
        parsed: dict[str, dict[str, str]] = {}
        for hint, text in (("SRC", src), ("DST", dst)):
            try:
                parsed[hint] = parse_asset(text)
            except InputError as e:
                raise typer.BadParameter(str(e), param_hint=hint) from e
        try:
            check_amount(amount, base_units)
        except InputError as e:
            raise typer.BadParameter(str(e), param_hint="AMOUNT") from e
        return cls(src.strip(), dst.strip(), parsed["SRC"], parsed["DST"], amount, base_units)

    def body(self, book: AssetBook, slippage_bps: int | None) -> Json:
        """The request's pair and amount; a token the gateway does not list, or lists only for the other
        side, is refused here (exit 2, nothing sent) with what can be swapped."""
        src = _resolve(book, self.src, "src", self.src_text, "SRC")
        dst = _resolve(book, self.dst, "dst", self.dst_text, "DST")
        try:
            amount = parse_amount(self.amount, None if self.base_units else src.decimals)
        except InputError as e:
            raise CliError(f"AMOUNT: {e}", ExitCode.USAGE) from e
        body: Json = {"src": src.asset, "dst": dst.asset, "src_amount": str(amount)}
        if slippage_bps is not None:
            body["slippage_bps"] = slippage_bps
        return body


def _resolve(book: AssetBook, asset: dict[str, str], side: Side, typed: str, hint: str) -> AssetInfo:
    try:
        return book.resolve(asset, side, typed)
    except InputError as e:
        raise CliError(f"{hint}: {e}", ExitCode.USAGE) from e


async def _book(gw: Gateway) -> AssetBook:
    """The gateway's token list (one request), needed to read SRC, DST and AMOUNT."""
    return AssetBook.from_json(await gw.assets())


async def _display_book(gw: Gateway) -> AssetBook:
    """The token list for showing amounts in token units; without it amounts show in base units."""
    try:
        return await _book(gw)
    except CliError as e:
        _err().print(Text(f"no token list ({e.message}): amounts in base units", style="dim"), soft_wrap=True)
        return AssetBook([])


def _print_json(value: object) -> None:
    typer.echo(json.dumps(value, indent=2))


async def _show_session(gw: Gateway, session: Json, as_json: bool) -> None:
    if as_json:
        _print_json(session)
        return
    book = await _display_book(gw)
    out = _out()
    out.print(
        session_table(
            session, src_decimals=book.decimals(session.get("src")), dst_decimals=book.decimals(session.get("dst"))
        )
    )
    out.print(progress_table(session))


class ProgressDisplay:
    """Live table on a terminal; elsewhere (pipes, CI logs) one plain line per step as it happens."""

    def __init__(self, console: Console, session: Json, book: AssetBook) -> None:
        self.console = console
        self.session = session
        self.book = book
        self.notice = ""
        self._live: Live | None = None
        self._printed: dict[str, int] = {}
        self._windows_printed: tuple[object, ...] = ()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # Rendered on every refresh: the spinner turns and the refund windows count down.
        frame = _SPINNER[int(time.monotonic() * 4) % len(_SPINNER)]
        yield swap_view(
            self.session,
            src_decimals=self.book.decimals(self.session.get("src")),
            dst_decimals=self.book.decimals(self.session.get("dst")),
            spinner=frame,
        )
        if self.notice:
            yield Text(self.notice, style="yellow")

    def __enter__(self) -> ProgressDisplay:
        if self.console.is_terminal:
            self._live = Live(self, console=self.console, refresh_per_second=8, transient=False)
            self._live.start()
        else:
            self._print_new_steps()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self.notice = ""
            self._live.stop()

    def update(self, session: Json) -> None:
        self.session = session
        self.notice = ""
        if self._live is not None:
            self._live.refresh()
        else:
            self._print_new_steps()

    def reconnecting(self, attempt: int, delay_s: float) -> None:
        self.notice = f"connection to the gateway lost; reconnecting in {delay_s:g} s (attempt {attempt})"
        if self._live is None:
            self.console.print(self.notice, soft_wrap=True)

    def _print_new_steps(self) -> None:
        # A step is printed when it first appears and again whenever it gains a transaction.
        for row in progress_rows(self.session):
            if row.status == "pending" or self._printed.get(row.state, -1) >= len(row.txs):
                continue
            self._printed[row.state] = len(row.txs)
            self.console.print(step_line(row), soft_wrap=True, markup=False)
        # Without a live display the refund windows are printed once, and again only when they change.
        s = self.session
        shown = (s.get("state"), s.get("src_cancellation_at"), s.get("dst_cancellation_at"))
        if s.get("state") in REFUND_STATES and shown != self._windows_printed:
            lines = refund_windows(s, time.time())
            if lines:
                self._windows_printed = shown
                self.console.print("; ".join(lines), soft_wrap=True, markup=False)


class JsonLines:
    """--json: one compact JSON line per new version of the session on stdout; notices go to stderr."""

    def __init__(self, session: Json) -> None:
        self.version = -1
        self.update(session)

    def __enter__(self) -> JsonLines:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, session: Json) -> None:
        version = session.get("version")
        if isinstance(version, int):
            if version <= self.version:
                return
            self.version = version
        typer.echo(json.dumps(session, separators=(",", ":")))

    def reconnecting(self, attempt: int, delay_s: float) -> None:
        _err().print(f"connection to the gateway lost; reconnecting in {delay_s:g} s (attempt {attempt})")


async def _follow(
    gw: Gateway,
    session: Json,
    book: AssetBook,
    *,
    cursor: str | None = None,
    releaser: Releaser | None = None,
    as_json: bool = False,
) -> int:
    out = _out()
    display: ProgressDisplay | JsonLines = JsonLines(session) if as_json else ProgressDisplay(out, session, book)

    def on_session(update: Json) -> None:
        display.update(update)
        if releaser is not None:
            releaser.feed(update)

    with display:
        if releaser is not None:
            releaser.feed(session)
        follower = SessionFollower(
            gw.url,
            gw.api_key,
            str(session["session_id"]),
            on_session=on_session,
            cursor=cursor,
            known=session,
            on_reconnect=display.reconnecting,
        )
        final = await follower.run()
        if releaser is not None:
            await releaser.wait()
            releaser.feed(final)
    if as_json:
        return ExitCode.OK if final.get("state") == "completed" else ExitCode.NOT_COMPLETED
    return _finish(out, final, book.decimals(final.get("dst")))


def _finish(out: Console, session: Json, dst_decimals: int | None) -> int:
    state = session.get("state")
    quote = session.get("quote") or {}
    if state == "completed":
        out.print(
            Text(
                f"completed: {session.get('receiver', '?')} received "
                f"{format_units(session.get('dst_amount'), dst_decimals)} "
                f"(minimum was {format_units(quote.get('min_received'), dst_decimals)})",
                style="bold green",
            ),
            soft_wrap=True,
        )
        return ExitCode.OK
    error = session.get("error") if isinstance(session.get("error"), dict) else {}
    why = f": {error.get('message')} [{error.get('reason')}]" if error and error.get("message") else ""
    out.print(Text(f"the swap ended {state}{why}", style="bold yellow"), soft_wrap=True)
    return ExitCode.NOT_COMPLETED


def _run(ctx: typer.Context, work: Callable[[Gateway], Awaitable[int]]) -> None:
    settings: Settings = ctx.obj

    async def body() -> int:
        async with settings.gateway() as gw:
            return await work(gw)

    code = _run_coro(body())
    if code != ExitCode.OK:
        raise typer.Exit(int(code))


def _run_coro(coro: Coroutine[Any, Any, int]) -> int:
    try:
        return asyncio.run(coro)
    except CliError as e:
        _err().print(Text.assemble(("error: ", "bold red"), e.message), soft_wrap=True)
        return e.exit_code
    except KeyboardInterrupt:
        _err().print("interrupted; the session goes on at the gateway", soft_wrap=True)
        return ExitCode.INTERRUPTED
