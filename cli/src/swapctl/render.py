"""What swapctl shows: quotes, sessions, the maker's action and a swap's progress, as rich renderables."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from swapctl.assets import AssetBook
from swapctl.stream import TERMINAL_STATES
from swapctl.units import NATIVE, describe_asset, format_units

Json = dict[str, Any]
# Display decimals of an asset ({chain, token}); None shows base units.
Decimals = Callable[[object], int | None]
# While a session waits for cancellation windows, it shows when each opens.
REFUND_STATES = frozenset({"refunding", "cancelling"})
_WINDOWS = (("src_cancellation_at", "source"), ("dst_cancellation_at", "destination"))

# The session state table's happy path (docs/session-states.md), in order.
HAPPY_PATH = (
    "initialized",
    "executing",
    "source_locking",
    "source_locked",
    "destination_locking",
    "both_locked",
    "revealing_secret",
    "completed",
)
STATE_LABELS = {
    "initialized": "session created; waiting for the maker",
    "executing": "maker's order accepted",
    "source_locking": "locking the source leg",
    "source_locked": "source lock confirmed",
    "destination_locking": "locking the destination leg",
    "both_locked": "both legs locked and final",
    "revealing_secret": "secret revealed; withdrawing both legs",
    "completed": "completed: the receiver has the funds",
    "cancelling": "cancelling",
    "cancelled": "cancelled before anything was locked",
    "refunding": "refunding the locked legs",
    "refunded": "refunded: every lock cancelled, funds back",
    "failed": "failed before anything was locked",
    "timeout": "timed out before execution",
}
_MARKS = {
    "done": ("✓", "green"),
    "current": ("●", "yellow"),
    "pending": ("·", "dim"),
    "ended": ("■", "yellow"),
    "failed": ("✗", "red"),
}


@dataclass
class StepRow:
    state: str
    status: str  # done | current | pending | ended | failed
    at: int | None = None
    txs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def progress_rows(session: Json) -> list[StepRow]:
    """One row per state of the session table: the happy path, then any detour the session took."""
    current = str(session.get("state") or "")
    seen: dict[str, StepRow] = {}
    for step in session.get("steps") or []:
        if not isinstance(step, dict):
            continue
        state = str(step.get("state") or "")
        row = seen.setdefault(state, StepRow(state, "done"))
        at = step.get("at")
        if row.at is None and isinstance(at, int):
            row.at = at
        if step.get("tx_hash"):
            chain = step.get("chain")
            row.txs.append(f"{chain} {step['tx_hash']}" if chain else str(step["tx_hash"]))
        note = step.get("note")
        if note and note not in row.notes:
            row.notes.append(str(note))
    if current and current not in seen:
        seen[current] = StepRow(current, "done")
    detour = any(state not in HAPPY_PATH for state in seen)
    furthest = max((HAPPY_PATH.index(s) for s in seen if s in HAPPY_PATH), default=-1)
    rows: list[StepRow] = []
    for index, state in enumerate(HAPPY_PATH):
        if state in seen:
            rows.append(seen[state])
        elif index < furthest:
            rows.append(StepRow(state, "done"))
        elif not detour:
            rows.append(StepRow(state, "pending"))
    rows.extend(row for state, row in seen.items() if state not in HAPPY_PATH)
    for row in rows:
        if row.state == current:
            row.status = _final_status(current) if current in TERMINAL_STATES else "current"
    return rows


def _final_status(state: str) -> str:
    if state == "completed":
        return "done"
    return "ended" if state in ("refunded", "cancelled") else "failed"


def progress_table(session: Json, *, spinner: str | None = None) -> Table:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, expand=False)
    table.add_column("", width=1, no_wrap=True)
    table.add_column("step", no_wrap=True)
    table.add_column("at", no_wrap=True)
    # Transactions go under their step's text: a hash needs the width that a column of its own lacks.
    table.add_column("what / transactions", overflow="fold")
    for row in progress_rows(session):
        mark, style = _MARKS[row.status]
        if row.status == "current" and spinner:
            mark = spinner
        what = Text(
            "; ".join(row.notes) or STATE_LABELS.get(row.state, ""), style="dim" if row.status == "pending" else ""
        )
        for tx in row.txs:
            what.append(f"\ntx {tx}", style="cyan")
        table.add_row(
            Text(mark, style=style),
            Text(row.state, style="bold" if row.status == "current" else ("dim" if row.status == "pending" else "")),
            clock(row.at) if row.at else "",
            what,
        )
    return table


def step_line(row: StepRow) -> str:
    """A plain line per step for output that is not a terminal (logs, CI)."""
    parts = [f"{clock(row.at) if row.at else '--:--:--'}  {row.state:<20}"]
    parts.append("; ".join(row.notes) or STATE_LABELS.get(row.state, ""))
    if row.txs:
        parts.append("tx " + ", ".join(row.txs))
    return "  ".join(p for p in parts if p)


def countdown(seconds: float) -> str:
    """`1m 12s`, `45s`, `1h 02m 03s`."""
    left = max(0, round(seconds))
    hours, rest = divmod(left, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def window(ts: int, now: float) -> str:
    """When a refund window opens, as local clock time and a countdown (chain times: clocks agree roughly)."""
    if ts > now:
        return f"opens {clock(ts)} (in {countdown(ts - now)})"
    return f"open since {clock(ts)}"


def refund_windows(session: Json, now: float) -> list[str]:
    """refunding / cancelling: when the source and destination cancellation windows open, for the legs that
    are locked (the session knows a lock's window once the lock is on chain)."""
    if session.get("state") not in REFUND_STATES:
        return []
    lines = []
    for key, leg in _WINDOWS:
        ts = session.get(key)
        if isinstance(ts, int) and not isinstance(ts, bool) and ts > 0:
            lines.append(f"{leg} refund window {window(ts, now)}")
    deadline = session.get("order_deadline")
    locked = isinstance(session.get("src_cancellation_at"), int) and session.get("src_cancellation_at")
    if session.get("state") == "cancelling" and not locked and isinstance(deadline, int) and deadline > now:
        # Nothing locked yet: a lock already sent may still land until the order deadline (then it is refused).
        lines.append(f"a source lock already sent may land until {clock(deadline)} (in {countdown(deadline - now)})")
    return lines


def swap_view(
    session: Json,
    *,
    src_decimals: int | None,
    dst_decimals: int | None,
    spinner: str | None,
    now: float | None = None,
) -> Group:
    state = str(session.get("state") or "?")
    style = {"completed": "bold green", "refunded": "bold yellow", "cancelled": "bold yellow"}.get(
        state, "bold red" if state in ("failed", "timeout") else "bold"
    )
    quote = session.get("quote") or {}
    head = Text.assemble(
        ("session ", "dim"),
        (str(session.get("session_id", "?")), "bold"),
        ("  ", ""),
        (state, style),
        (
            f"\n{describe_asset(session.get('src'))} -> {describe_asset(session.get('dst'))}: pays "
            f"{format_units(session.get('src_amount'), src_decimals)}, receives "
            f"{format_units(session.get('dst_amount'), dst_decimals)} "
            f"(min {format_units(quote.get('min_received'), dst_decimals)})",
            "",
        ),
    )
    parts: list[RenderableType] = [head, progress_table(session, spinner=spinner)]
    for line in refund_windows(session, time.time() if now is None else now):
        parts.append(Text(line, style="yellow"))
    error = session.get("error")
    if isinstance(error, dict) and (error.get("reason") or error.get("message")):
        parts.append(Text(f"error: {error.get('message') or ''} [{error.get('reason') or ''}]", style="red"))
    return Group(*parts)


def quote_table(quote: Json, *, src_decimals: int | None, dst_decimals: int | None, now: float | None = None) -> Table:
    now = time.time() if now is None else now
    auction = quote.get("auction") or {}
    start = auction.get("start_time")
    duration = auction.get("duration_s")
    # The quote id is the signed quote itself (hundreds of characters): a row of its own, last, to copy.
    table = Table(title="quote", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    rows: list[tuple[str, str]] = [
        ("pair", f"{describe_asset(quote.get('src'))} -> {describe_asset(quote.get('dst'))}"),
        ("you pay", format_units(quote.get("src_amount"), src_decimals)),
        ("market rate", f"{quote.get('market_rate', '-')} (destination base units per 10^18 source base units)"),
        ("auction start", format_units(auction.get("start_amount"), dst_decimals)),
        ("auction now", format_units(auction.get("current_amount"), dst_decimals)),
        ("auction end", format_units(auction.get("end_amount"), dst_decimals)),
    ]
    if isinstance(start, int) and isinstance(duration, int):
        rows.append(("auction runs", f"{clock(start)} -> {clock(start + duration)} ({duration} s)"))
    rows += [
        ("protocol fee", format_units(quote.get("protocol_fee"), dst_decimals)),
        ("network fee", format_units(quote.get("network_fee"), dst_decimals)),
        ("slippage", _bps(quote.get("slippage_bps"))),
        ("min received", format_units(quote.get("min_received"), dst_decimals)),
        ("valid until", when(quote.get("valid_until"), now)),
        ("refund guaranteed by", when(quote.get("refund_guaranteed_by"), now)),
        ("quote id (--quote-id)", str(quote.get("quote_id", "?"))),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def session_table(
    session: Json, *, src_decimals: int | None, dst_decimals: int | None, now: float | None = None
) -> Table:
    now = time.time() if now is None else now
    quote = session.get("quote") or {}
    error = session.get("error") if isinstance(session.get("error"), dict) else None
    table = Table(title=f"session {session.get('session_id', '?')}", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    rows = [
        ("state", str(session.get("state", "?"))),
        ("pair", f"{describe_asset(session.get('src'))} -> {describe_asset(session.get('dst'))}"),
        ("pays", format_units(session.get("src_amount"), src_decimals)),
        ("receives", format_units(session.get("dst_amount"), dst_decimals)),
        ("min received", format_units(quote.get("min_received"), dst_decimals)),
        ("maker", str(session.get("maker") or "-")),
        ("receiver", str(session.get("receiver") or "-")),
        ("hashlock", str(session.get("hashlock") or "-")),
        ("source lock", str(session.get("src_lock_id") or "-")),
        ("destination lock", str(session.get("dst_lock_id") or "-")),
        ("secret", str(session.get("secret") or "not public yet")),
        ("created", when(session.get("created_at"), None)),
        ("updated", when(session.get("updated_at"), None)),
    ]
    if session.get("state") not in TERMINAL_STATES:
        for key, leg in _WINDOWS:
            ts = session.get(key)
            if isinstance(ts, int) and not isinstance(ts, bool) and ts > 0:
                rows.append((f"{leg} refund window", window(ts, now)))
    if error:
        rows.append(("error", f"{error.get('message') or ''} [{error.get('reason') or ''}]"))
    for name, value in rows:
        table.add_row(name, value)
    return table


def sessions_table(sessions: list[Json], *, decimals: Decimals) -> Table:
    """One line per session; `swapctl get` shows tokens, accounts and steps in full."""
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    # Ids are copied from here, so they never shrink; on a narrow terminal the other columns fold.
    longest_id = max((len(str(s.get("session_id", ""))) for s in sessions), default=7)
    table.add_column("session", no_wrap=True, min_width=longest_id)
    table.add_column("state", overflow="fold")
    table.add_column("route", overflow="fold")
    table.add_column("pays", justify="right", overflow="fold")
    table.add_column("receives", justify="right", overflow="fold")
    table.add_column("created", overflow="fold")
    for s in sessions:
        table.add_row(
            str(s.get("session_id", "?")),
            str(s.get("state", "?")),
            f"{_chain(s.get('src'))}->{_chain(s.get('dst'))}",
            _amount(s.get("src_amount"), decimals(s.get("src"))),
            _amount(s.get("dst_amount"), decimals(s.get("dst"))),
            _short_time(s.get("created_at")),
        )
    return table


def _chain(asset: object) -> str:
    return str(asset.get("chain", "?")) if isinstance(asset, dict) else "?"


def _amount(base_units: object, decimals: int | None) -> str:
    """Token units alone when the decimals are known (the base units stay in `get`), else base units."""
    shown = format_units(base_units if isinstance(base_units, str | int) else None, decimals)
    return shown.split(" (", 1)[0]


def _short_time(ts: object) -> str:
    if not isinstance(ts, int | float) or isinstance(ts, bool) or ts <= 0:
        return "-"
    return datetime.fromtimestamp(ts).strftime("%m-%d %H:%M:%S")


def maker_action_view(session: Json) -> RenderableType:
    """What the maker must do before `swapctl execute`, with everything needed to do it."""
    sid = str(session.get("session_id", "?"))
    action = session.get("maker_action")
    if not isinstance(action, dict) or not action:
        return Text("This session asks nothing of the maker.")
    sign = action.get("sign_order")
    if isinstance(sign, dict):
        parts: list[RenderableType] = [
            Text.assemble(
                ("The maker signs this EIP-712 order ", "bold"),
                "(eth_signTypedData_v4, with the key of ",
                (str(session.get("maker", "?")), "bold"),
                "):",
            ),
            Syntax(json.dumps(sign.get("typed_data"), indent=2), "json", word_wrap=True, background_color="default"),
        ]
        if sign.get("token") and sign.get("spender"):
            parts.append(
                Text(
                    f"The escrow pulls the tokens: token {sign['token']} needs an allowance of at least "
                    f"{sign.get('allowance', '?')} for spender {sign['spender']} (ERC-20 approve)."
                )
            )
        parts.append(Text.assemble("Then: ", (f"swapctl execute {sid} --signature 0x<130 hex>", "bold")))
        return Group(*parts)
    call = action.get("near_call")
    if isinstance(call, dict):
        prepay = action.get("near_prepay")
        first: list[Text] = []
        if isinstance(prepay, dict):
            first.append(
                Text.assemble(
                    ("First, the maker calls ", "bold"),
                    f"{prepay.get('contract', '?')}.{prepay.get('method', '?')} with a deposit of "
                    f"{prepay.get('deposit', '0')} yoctoNEAR and {prepay.get('gas', '?')} gas, no arguments: the "
                    "lock's storage fee, prepaid on the HTLC.",
                )
            )
        return Group(
            *first,
            Text.assemble(
                ("The maker calls the NEAR contract ", "bold"),
                f"{call.get('contract', '?')}.{call.get('method', '?')} from ",
                (str(session.get("maker", "?")), "bold"),
                f" with a deposit of {call.get('deposit', '0')} yoctoNEAR and {call.get('gas', '?')} gas, arguments:",
            ),
            Syntax(json.dumps(call.get("args"), indent=2), "json", word_wrap=True, background_color="default"),
            Text.assemble("Then: ", (f"swapctl execute {sid}", "bold")),
        )
    return Syntax(json.dumps(action, indent=2), "json", word_wrap=True, background_color="default")


def _short_asset(asset: object) -> str:
    """Long hex addresses shortened for one-line rows; `swapctl get` shows them in full."""
    text = describe_asset(asset)
    chain, _, token = text.partition(":")
    if token.startswith("0x") and len(token) > 14:
        token = f"{token[:6]}…{token[-4:]}"
    return f"{chain}:{token}"


def clock(ts: int | float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def when(ts: object, now: float | None) -> str:
    if not isinstance(ts, int | float) or isinstance(ts, bool) or ts <= 0:
        return "-"
    shown = datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")
    if now is None:
        return shown
    delta = round(ts - now)
    return f"{shown} (in {delta} s)" if delta >= 0 else f"{shown} ({-delta} s ago)"


def _bps(value: object) -> str:
    if not isinstance(value, int) or isinstance(value, bool):
        return "-"
    return f"{value} bps ({value / 100:g} %)"


def assets_table(book: AssetBook) -> Table:
    """The gateway's tokens: what to type as SRC / DST, the decimals amounts are in, the sides each can be on."""
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for name in ("type", "chain", "token", "decimals", "source", "destination"):
        table.add_column(name, overflow="fold", justify="right" if name == "decimals" else "left")
    symbols = [(a.chain, a.symbol.lower()) for a in book.assets]
    for a in book.assets:
        # A symbol two tokens of one chain share names neither: those are typed by address.
        named = a.token == NATIVE or symbols.count((a.chain, a.symbol.lower())) == 1
        table.add_row(
            f"{a.chain}:{a.symbol}" if named else f"{a.chain}:{a.token}",
            a.chain,
            a.token,
            str(a.decimals),
            Text("yes", style="green") if a.source else Text("no", style="yellow"),
            Text("yes", style="green") if a.destination else Text("no", style="yellow"),
        )
    return table
