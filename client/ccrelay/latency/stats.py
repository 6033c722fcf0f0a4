"""Summarise latency records per backend and model, at two levels, in bounded memory.

Two levels, because they answer different questions:

- **requests** (``kind: request``): what the client got, once per request, across retries and
  failover: the error rate a user sees, the total latency, attempts, failovers and backoff, and
  the money: cost against what Anthropic would have billed (``baseline_usd``);
- **attempts** (``kind: attempt``, and records written before request records existed): each
  try at a backend: its health, its own latency.

A run in which every request succeeded after failover has a request error rate of 0 and a
non-zero attempt error rate; both are shown.

Percentiles use linear interpolation between closest ranks: for sorted values ``x[0..n-1]`` the
q-th percentile is at position ``(n - 1) * q / 100``, interpolated between its two neighbours.
This is numpy's default (``method="linear"``), Hyndman & Fan's type 7, DuckDB's
``quantile_cont``, and ``statistics.quantiles(data, n=100, method="inclusive")``.
Latency and TTFB percentiles are over successful ones only (TTFB: streamed ones), so a burst of
instant connection errors does not flatter them, nor timeouts inflate them. ``cache hit`` is
the share of hits among those whose backend reported a verdict.

Memory: records are folded in as they are read (:class:`StatsBuilder`); a group keeps counters
and a compact ``array('d')`` of its latencies, 8 bytes a record.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ccrelay.latency.record import LatencyRecord

__all__ = [
    "GroupStats",
    "RequestStats",
    "Savings",
    "SeriesPoint",
    "StatsBuilder",
    "StatsReport",
    "compute_stats",
    "percentile",
]

_MONTH = timedelta(days=30)
_BUCKETS = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)
"""Chart bucket sizes in seconds; the smallest that gives at most :data:`_MAX_POINTS`."""
_MAX_POINTS = 60


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


def _percentiles(values: array[float], qs: Sequence[float]) -> list[float | None]:
    if not values:
        return [None] * len(qs)
    data = sorted(values)
    return [_sorted_percentile(data, q) for q in qs]


# -- the rows ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Summary:
    """What both levels report for one (backend, model); milliseconds, USD."""

    backend: str
    model: str
    errors: int
    error_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    ttfb_p50_ms: float | None
    ttfb_p95_ms: float | None
    cache_hit_rate: float | None
    tokens_in: int
    tokens_out: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class GroupStats(_Summary):
    """Attempts at one (backend, model)."""

    calls: int


@dataclass(frozen=True, slots=True)
class RequestStats(_Summary):
    """Client requests served by (or, failed, last tried at) one (backend, model)."""

    requests: int
    attempts: int
    retried: int
    """Requests that took more than one attempt."""
    failovers: int
    backoff_ms: float
    baseline_usd: float
    saving_usd: float


@dataclass(frozen=True, slots=True)
class Savings:
    """The money, over request records: what it cost, what Anthropic would have billed."""

    requests: int
    cost_usd: float
    baseline_usd: float
    saving_usd: float
    window_days: float
    monthly_saving_usd: float
    """``saving_usd`` scaled from the window to 30 days."""
    requested_models: dict[str, int]
    """How many requests asked for each Claude model (the baseline each was priced on)."""
    assumptions: list[str]


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One chart bucket of one backend (attempt level), plus its requests' money."""

    start: str
    calls: int
    errors: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    cache_hits: int
    cache_reported: int
    cost_usd: float
    baseline_usd: float


ASSUMPTIONS = (
    "baseline: the Claude model each request asked for (a non-Claude model name: the "
    "configured `prices.baseline`), at Anthropic's list prices",
    "prompt caching as Claude Code uses it: the prompt the previous request of the same "
    "conversation carried, within 5 minutes, is a cache read (0.1x input); the rest a cache "
    "write (1.25x input)",
    "cost: tokens at each backend's price, plus gpu_usd_per_second for every second an attempt "
    "took (an upper bound when a worker serves requests in parallel; idle time is not counted)",
    "monthly: this window's saving per day, times 30",
)


@dataclass(frozen=True, slots=True)
class StatsReport:
    since: datetime
    until: datetime
    rows: list[GroupStats]
    total: GroupStats
    requests: list[RequestStats]
    requests_total: RequestStats
    savings: Savings
    skipped: int = 0
    bucket_s: int = 0
    series: dict[str, list[SeriesPoint]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "requests": [asdict(row) for row in self.requests],
            "requests_total": asdict(self.requests_total),
            "rows": [asdict(row) for row in self.rows],
            "total": asdict(self.total),
            "savings": asdict(self.savings),
        }


# -- folding records in --------------------------------------------------------------------------


def _num(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


class _Group:
    __slots__ = (
        "attempts",
        "backoff_ms",
        "baseline",
        "cost",
        "count",
        "errors",
        "failovers",
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
        self.cost = self.baseline = self.backoff_ms = self.request_cost = 0.0
        self.latencies: array[float] = array("d")
        self.ttfbs: array[float] = array("d")

    def add(self, record: Mapping[str, Any]) -> None:
        self.count += 1
        ok = record.get("outcome") == "ok"
        if ok:
            self.latencies.append(_num(record.get("latency_ms")))
            ttfb = record.get("ttfb_ms")
            if isinstance(ttfb, (int, float)):
                self.ttfbs.append(float(ttfb))
        else:
            self.errors += 1
        cache = record.get("cache")
        if cache is not None:
            self.reported += 1
            self.hits += cache == "hit"
        self.tokens_in += _int(record.get("tokens_in"))
        self.tokens_out += _int(record.get("tokens_out"))
        self.cost += _num(record.get("cost_usd"))

    def add_request(self, record: Mapping[str, Any]) -> None:
        self.add(record)
        attempts = _int(record.get("attempts"))
        self.attempts += attempts
        self.retried += attempts > 1
        self.failovers += _int(record.get("failovers"))
        self.backoff_ms += _num(record.get("backoff_ms"))
        self.baseline += _num(record.get("baseline_usd"))

    def _common(self, backend: str, model: str) -> dict[str, Any]:
        """The fields both levels' rows have."""
        p50, p95, p99 = _percentiles(self.latencies, (50, 95, 99))
        t50, t95 = _percentiles(self.ttfbs, (50, 95))
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

    def attempt_row(self, backend: str, model: str) -> GroupStats:
        return GroupStats(calls=self.count, **self._common(backend, model))

    def request_row(self, backend: str, model: str) -> RequestStats:
        return RequestStats(
            requests=self.count,
            attempts=self.attempts,
            retried=self.retried,
            failovers=self.failovers,
            backoff_ms=self.backoff_ms,
            baseline_usd=self.baseline,
            saving_usd=self.baseline - self.cost,
            **self._common(backend, model),
        )


class StatsBuilder:
    """Folds records in one at a time; :meth:`report` summarises. ``series``: chart buckets too."""

    def __init__(self, since: datetime, until: datetime, *, series: bool = False) -> None:
        self.since = since
        self.until = until
        self._attempts: dict[tuple[str, str], _Group] = {}
        self._requests: dict[tuple[str, str], _Group] = {}
        self._all_attempts = _Group()
        self._all_requests = _Group()
        self._requested: dict[str, int] = {}
        self.bucket_s = _bucket_size(until - since)
        self._series: dict[str, dict[int, _Group]] | None = {} if series else None

    def add(self, record: Mapping[str, Any] | LatencyRecord) -> None:
        if isinstance(record, LatencyRecord):
            record = record.model_dump()
        key = (str(record["backend"]), str(record["model"]))
        if record.get("kind") == "request":
            group = self._requests.get(key)
            if group is None:
                group = self._requests[key] = _Group()
            group.add_request(record)
            self._all_requests.add_request(record)
            requested = record.get("requested_model")
            if isinstance(requested, str):
                self._requested[requested] = self._requested.get(requested, 0) + 1
        else:
            group = self._attempts.get(key)
            if group is None:
                group = self._attempts[key] = _Group()
            group.add(record)
            self._all_attempts.add(record)
        if self._series is not None:
            self._add_point(record)

    def _add_point(self, record: Mapping[str, Any]) -> None:
        assert self._series is not None
        timestamp: datetime = record["timestamp"]
        bucket = int((timestamp - self.since).total_seconds() // self.bucket_s)
        points = self._series.setdefault(str(record["backend"]), {})
        point = points.get(bucket)
        if point is None:
            point = points[bucket] = _Group()
        if record.get("kind") == "request":
            point.baseline += _num(record.get("baseline_usd"))
            point.request_cost += _num(record.get("cost_usd"))
        else:
            point.add(record)

    def report(self, skipped: int = 0) -> StatsReport:
        rows = [g.attempt_row(b, m) for (b, m), g in sorted(self._attempts.items())]
        requests = [g.request_row(b, m) for (b, m), g in sorted(self._requests.items())]
        total = self._all_requests
        days = max((self.until - self.since) / timedelta(days=1), 1e-9)
        saving = total.baseline - total.cost
        return StatsReport(
            since=self.since,
            until=self.until,
            rows=rows,
            total=self._all_attempts.attempt_row("total", ""),
            requests=requests,
            requests_total=total.request_row("total", ""),
            savings=Savings(
                requests=total.count,
                cost_usd=total.cost,
                baseline_usd=total.baseline,
                saving_usd=saving,
                window_days=days,
                monthly_saving_usd=saving / days * (_MONTH / timedelta(days=1)),
                requested_models=dict(sorted(self._requested.items())),
                assumptions=list(ASSUMPTIONS),
            ),
            skipped=skipped,
            bucket_s=self.bucket_s,
            series=self._points(),
        )

    def _points(self) -> dict[str, list[SeriesPoint]]:
        if self._series is None:
            return {}
        out: dict[str, list[SeriesPoint]] = {}
        for backend, points in sorted(self._series.items()):
            line = []
            for bucket, group in sorted(points.items()):
                p50, p95, p99 = _percentiles(group.latencies, (50, 95, 99))
                start = self.since + timedelta(seconds=bucket * self.bucket_s)
                line.append(
                    SeriesPoint(
                        start=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        calls=group.count,
                        errors=group.errors,
                        latency_p50_ms=p50,
                        latency_p95_ms=p95,
                        latency_p99_ms=p99,
                        cache_hits=group.hits,
                        cache_reported=group.reported,
                        cost_usd=group.request_cost,
                        baseline_usd=group.baseline,
                    )
                )
            out[backend] = line
        return out


def _bucket_size(window: timedelta) -> int:
    seconds = max(window.total_seconds(), 1.0)
    for size in _BUCKETS:
        if seconds / size <= _MAX_POINTS:
            return size
    return math.ceil(seconds / _MAX_POINTS)


def compute_stats(
    records: Iterable[Mapping[str, Any] | LatencyRecord],
    *,
    since: datetime,
    until: datetime,
    series: bool = False,
    skipped: int = 0,
) -> StatsReport:
    """Per (backend, model) summaries at both levels, sorted by backend then model."""
    builder = StatsBuilder(since, until, series=series)
    for record in records:
        builder.add(record)
    return builder.report(skipped)
