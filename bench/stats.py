"""Summaries of timing samples: what the report prints for every measured operation."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), defined for any n >= 1."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(samples_ms: Sequence[float]) -> dict[str, Any]:
    if not samples_ms:
        return {"n": 0}
    return {
        "n": len(samples_ms),
        "median_ms": round(statistics.median(samples_ms), 2),
        "p90_ms": round(percentile(samples_ms, 0.9), 2),
        "min_ms": round(min(samples_ms), 2),
        "max_ms": round(max(samples_ms), 2),
        "mean_ms": round(statistics.fmean(samples_ms), 2),
    }


def ratio(numerator: float, denominator: float) -> float | None:
    if denominator <= 0 or math.isnan(numerator) or math.isnan(denominator):
        return None
    return round(numerator / denominator, 2)


def comparison(
    service_ms: Sequence[float], direct_ms: Sequence[float], names: tuple[str, str] = ("service", "direct")
) -> dict[str, Any]:
    """`names[0]` vs `names[1]` for one operation measured in pairs (sample i of each came from one round);
    the ratios are the first over the second.

    The paired ratio is the median of per-round ratios: neighbours in time share the machine's load at that
    moment, so it is the figure least moved by a noisy neighbour.
    """
    service = summary(service_ms)
    direct = summary(direct_ms)
    out: dict[str, Any] = {names[0]: service, names[1]: direct}
    if service_ms and direct_ms:
        out["ratio_median"] = ratio(statistics.median(service_ms), statistics.median(direct_ms))
        out["ratio_p90"] = ratio(percentile(service_ms, 0.9), percentile(direct_ms, 0.9))
        paired = [s / d for s, d in zip(service_ms, direct_ms, strict=False) if d > 0]
        out["ratio_paired_median"] = round(statistics.median(paired), 2) if paired else None
        out["overhead_median_ms"] = round(statistics.median(service_ms) - statistics.median(direct_ms), 2)
    return out


def typical_counts(histograms: Iterable[Mapping[str, int]], label: str = "calls") -> dict[str, Any]:
    """The most frequent histogram (per operation, per swap) with its total, and the share of samples that
    had exactly it; counts of one operation repeat exactly unless something retried or polled once more."""
    seen = Counter(tuple(sorted(h.items())) for h in histograms)
    if not seen:
        return {"total": 0, label: {}, "share_of_samples": 0.0}
    typical, times = seen.most_common(1)[0]
    return {
        "total": sum(count for _, count in typical),
        label: dict(typical),
        "share_of_samples": round(times / sum(seen.values()), 2),
    }
