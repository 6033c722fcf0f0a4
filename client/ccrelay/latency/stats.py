"""Summarise latency records per backend and model, at two levels, in bounded memory.

Two levels, because they answer different questions:

- **requests** (``kind: request``): what the client got, once per request, across retries and
  failover: the error rate a user sees, the total latency, attempts, failovers and backoff, and
  the money: cost against what Anthropic would have billed (``baseline_usd``);
- **attempts** (``kind: attempt``, and records written before request records existed): each
  try at a backend: its health, its own latency.

A run in which every request succeeded after failover has a total request error rate of 0 and a
non-zero attempt error rate; both are shown. Per backend, a request that failed over counts as
a failed request of each backend it left, and as a request of the one that answered.

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
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ccrelay.latency.record import LatencyRecord
from ccrelay.latency.stats_groups import Group, as_float, percentile, percentiles
from ccrelay_config.pricing import PriceTable

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
    """Client requests served by one (backend, model), or failed there: last tried there, or
    failed over from there to another backend."""

    requests: int
    attempts: int
    retried: int
    """Requests that took more than one attempt."""
    failovers: int
    backoff_ms: float
    baseline_usd: float
    saving_usd: float
    hedged: int = 0
    """Requests this backend answered because a self-hosted endpoint had no worker ready."""
    cold_waits: int = 0
    """Requests that waited for a worker to start (``cold_wait_ms`` of 5 s or more)."""


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
    priced_as: dict[str, str] = field(default_factory=dict)
    """Requested models the price table does not know, and the known model whose price their
    baseline took (a Claude model newer than the table: its family's newest)."""


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
    overall: list[SeriesPoint] = field(default_factory=list)
    """Every backend's attempts together, per bucket (the page's first charts)."""

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


_MAX_OPEN_FAILURES = 100_000
"""Requests whose failed attempts wait for their request record; the oldest are dropped."""


def _attempt_row(group: Group, backend: str, model: str) -> GroupStats:
    return GroupStats(calls=group.count, **group.summary(backend, model))


def _request_row(group: Group, backend: str, model: str) -> RequestStats:
    return RequestStats(
        requests=group.count,
        attempts=group.attempts,
        retried=group.retried,
        failovers=group.failovers,
        backoff_ms=group.backoff_ms,
        baseline_usd=group.baseline,
        saving_usd=group.baseline - group.cost,
        hedged=group.hedged,
        cold_waits=group.cold_waits,
        **group.summary(backend, model),
    )


class StatsBuilder:
    """Folds records in one at a time; :meth:`report` summarises. ``series``: chart buckets too.

    A request that failed over is a failure of every backend it left, not only a request of
    the one that answered (or was tried last): its failed attempts are remembered by request
    id until its request record comes (a request's attempts are written before it), and each
    other backend they name counts one failed request. Totals count each request once.
    ``prices``: to say which requested models the price table does not know.
    """

    def __init__(
        self,
        since: datetime,
        until: datetime,
        *,
        series: bool = False,
        prices: PriceTable | None = None,
    ) -> None:
        self.since = since
        self.until = until
        self.prices = prices
        self._attempts: dict[tuple[str, str], Group] = {}
        self._requests: dict[tuple[str, str], Group] = {}
        self._all_attempts = Group()
        self._all_requests = Group()
        self._requested: dict[str, int] = {}
        self._failed: dict[str, dict[tuple[str, str], int]] = {}
        self.bucket_s = _bucket_size(until - since)
        self._series: dict[str, dict[int, Group]] | None = {} if series else None
        self._overall: dict[int, Group] = {}

    @staticmethod
    def _group(groups: dict[tuple[str, str], Group], key: tuple[str, str]) -> Group:
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group()
        return group

    def add(self, record: Mapping[str, Any] | LatencyRecord) -> None:
        if isinstance(record, LatencyRecord):
            record = record.model_dump()
        key = (str(record["backend"]), str(record["model"]))
        request_id = str(record.get("request_id") or "")
        if record.get("kind") == "request":
            self._group(self._requests, key).add_request(record)
            self._all_requests.add_request(record)
            for (backend, model), attempts in self._failed.pop(request_id, {}).items():
                if backend != key[0]:
                    self._group(self._requests, (backend, model)).add_failover(attempts)
            requested = record.get("requested_model")
            if isinstance(requested, str):
                self._requested[requested] = self._requested.get(requested, 0) + 1
        else:
            self._group(self._attempts, key).add(record)
            self._all_attempts.add(record)
            if record.get("outcome") != "ok" and request_id:
                failed = self._failed.setdefault(request_id, {})
                failed[key] = failed.get(key, 0) + 1
                if len(self._failed) > _MAX_OPEN_FAILURES:
                    del self._failed[next(iter(self._failed))]
        if self._series is not None and key[0]:
            self._add_point(record, key[0])

    def _add_point(self, record: Mapping[str, Any], backend: str) -> None:
        assert self._series is not None
        timestamp: datetime = record["timestamp"]
        bucket = int((timestamp - self.since).total_seconds() // self.bucket_s)
        points = self._series.setdefault(backend, {})
        for line in (points, self._overall):
            point = line.get(bucket)
            if point is None:
                point = line[bucket] = Group()
            if record.get("kind") == "request":
                point.baseline += as_float(record.get("baseline_usd"))
                point.request_cost += as_float(record.get("cost_usd"))
            else:
                point.add(record)

    def _priced_as(self) -> dict[str, str]:
        prices = self.prices
        if prices is None:
            return {}
        guessed = {
            model: prices.priced_as(prices.baseline_model(model)) for model in self._requested
        }
        return {model: known for model, known in sorted(guessed.items()) if known}

    def report(self, skipped: int = 0) -> StatsReport:
        rows = [_attempt_row(g, b, m) for (b, m), g in sorted(self._attempts.items())]
        requests = [_request_row(g, b, m) for (b, m), g in sorted(self._requests.items())]
        total = self._all_requests
        days = max((self.until - self.since) / timedelta(days=1), 1e-9)
        saving = total.baseline - total.cost
        return StatsReport(
            since=self.since,
            until=self.until,
            rows=rows,
            total=_attempt_row(self._all_attempts, "total", ""),
            requests=requests,
            requests_total=_request_row(total, "total", ""),
            savings=Savings(
                requests=total.count,
                cost_usd=total.cost,
                baseline_usd=total.baseline,
                saving_usd=saving,
                window_days=days,
                monthly_saving_usd=saving / days * (_MONTH / timedelta(days=1)),
                requested_models=dict(sorted(self._requested.items())),
                assumptions=list(ASSUMPTIONS),
                priced_as=self._priced_as(),
            ),
            skipped=skipped,
            bucket_s=self.bucket_s,
            series=self._points(),
            overall=self._line(self._overall) if self._series is not None else [],
        )

    def _line(self, points: dict[int, Group]) -> list[SeriesPoint]:
        line = []
        for bucket, group in sorted(points.items()):
            p50, p95, p99 = percentiles(group.latencies, (50, 95, 99))
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
        return line

    def _points(self) -> dict[str, list[SeriesPoint]]:
        if self._series is None:
            return {}
        return {backend: self._line(points) for backend, points in sorted(self._series.items())}


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
    prices: PriceTable | None = None,
) -> StatsReport:
    """Per (backend, model) summaries at both levels, sorted by backend then model."""
    builder = StatsBuilder(since, until, series=series, prices=prices)
    for record in records:
        builder.add(record)
    return builder.report(skipped)
