"""Session metrics: what operators watch while the service holds people's money."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SESSIONS_INITIATED = Counter("swap_sessions_initiated_total", "Sessions created.", ["src_chain", "dst_chain"])
SESSIONS_ENDED = Counter(
    "swap_sessions_ended_total",
    "Sessions that reached a terminal state, by state and reason (empty reason when none).",
    ["state", "reason"],
)
SESSIONS_ACTIVE = Gauge("swap_sessions_active", "Sessions not yet in a terminal state (all replicas).")
SWAP_DURATION = Histogram(
    "swap_session_duration_seconds",
    "Time from creation to a terminal state.",
    ["state"],
    buckets=(1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600),
)
STEP_DURATION = Histogram(
    "swap_session_step_seconds",
    "Time a session spent in a state before leaving it.",
    ["state"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
WATCH_STREAMS = Gauge("swap_session_watch_streams", "WatchSession streams open on this replica.")
WATCH_REJECTED = Counter(
    "swap_session_watch_rejected_total",
    "WatchSession streams refused with TOO_MANY_WATCHERS, by the cap that bit (replica, client, pool).",
    ["cap"],
)
EVENT_TO_ACTION = Histogram(
    "swap_session_event_to_action_seconds",
    "From a chain event or deadline waking a session to the chain action it led to.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5),
)
SAGA_HALTS = Counter(
    "swap_saga_halts_total",
    "Sessions the saga halted beyond its bounds, by alert: an operator must look.",
    ["alert"],
)
CHAIN_STREAM_EVENTS = Counter(
    "swap_session_chain_events_total", "Chain events received by this replica, by chain and kind.", ["chain", "kind"]
)
