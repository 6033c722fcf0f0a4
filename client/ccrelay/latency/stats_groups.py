"""The counters behind ``ccrelay stats``: one `Group` per (backend, model) and level, and the
percentiles (linear interpolation: see `ccrelay.latency.stats`)."""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["Group", "as_float", "as_int", "percentile", "percentiles"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by linear interpolation (see module doc)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    data = sorted(values)
    return _sorted_percentile(data, q)


def _sorted_percentile(data: Sequence[float], q: float) -> float:
    position = (len(data) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (position - low)


def percentiles(values: array[float], qs: Sequence[float]) -> list[float | None]:
    if not values:
        return [None] * len(qs)
    data = sorted(values)
    return [_sorted_percentile(data, q) for q in qs]


def as_float(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


def as_int(value: object) -> int:
    return value if isinstance(value, int) else 0


COLD_WAIT_MS = 5000.0
"""A request that waited this long for a worker met a cold start (a warm worker takes a job in
well under a second; RunPod's docs put cold starts at seconds to minutes)."""


class Group:
    __slots__ = (
        "attempts",
        "backoff_ms",
        "baseline",
        "cold_waits",
        "cost",
        "count",
        "errors",
        "failovers",
        "hedged",
        "hits",
        "latencies",
        "reported",
        "request_cost",
        "retried",
        "tokens_in",
        "tokens_out",
        "ttfbs",
    )

    def __init__(self) -> None:
        self.count = self.errors = self.hits = self.reported = 0
        self.tokens_in = self.tokens_out = self.attempts = self.retried = self.failovers = 0
        self.hedged = self.cold_waits = 0
        self.cost = self.baseline = self.backoff_ms = self.request_cost = 0.0
        self.latencies: array[float] = array("d")
        self.ttfbs: array[float] = array("d")

    def add(self, record: Mapping[str, Any]) -> None:
        self.count += 1
        ok = record.get("outcome") == "ok"
        if ok:
            self.latencies.append(as_float(record.get("latency_ms")))
            ttfb = record.get("ttfb_ms")
            if isinstance(ttfb, (int, float)):
                self.ttfbs.append(float(ttfb))
        else:
            self.errors += 1
        cache = record.get("cache")
        if cache is not None:
            self.reported += 1
            self.hits += cache == "hit"
        self.tokens_in += as_int(record.get("tokens_in"))
        self.tokens_out += as_int(record.get("tokens_out"))
        self.cost += as_float(record.get("cost_usd"))

    def add_failover(self, attempts: int) -> None:
        """A request that failed here and went on to another backend: a failure of this
        backend's, whatever the next one did."""
        self.count += 1
        self.errors += 1
        self.attempts += attempts
        self.retried += attempts > 1
        self.failovers += 1

    def add_request(self, record: Mapping[str, Any]) -> None:
        self.add(record)
        attempts = as_int(record.get("attempts"))
        self.attempts += attempts
        self.retried += attempts > 1
        self.failovers += as_int(record.get("failovers"))
        self.backoff_ms += as_float(record.get("backoff_ms"))
        self.baseline += as_float(record.get("baseline_usd"))
        self.hedged += record.get("hedged") is True
        self.cold_waits += as_float(record.get("cold_wait_ms")) >= COLD_WAIT_MS

    def summary(self, backend: str, model: str) -> dict[str, Any]:
        """The fields both levels' rows have (`ccrelay.latency.stats` makes the rows)."""
        p50, p95, p99 = percentiles(self.latencies, (50, 95, 99))
        t50, t95 = percentiles(self.ttfbs, (50, 95))
        return {
            "backend": backend,
            "model": model,
            "errors": self.errors,
            "error_rate": self.errors / self.count if self.count else 0.0,
            "latency_p50_ms": p50,
            "latency_p95_ms": p95,
            "latency_p99_ms": p99,
            "ttfb_p50_ms": t50,
            "ttfb_p95_ms": t95,
            "cache_hit_rate": self.hits / self.reported if self.reported else None,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": self.cost,
        }
