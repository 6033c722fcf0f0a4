"""The facade the backends and the router call: one record per attempt, one per request."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ccrelay.latency.record import CacheStatus, LatencyRecord
from ccrelay.latency.sinks import JsonlSink, LogSink, MultiSink, RecordSink
from ccrelay_config.pricing import PriceTable
from ccrelay_config.telemetry import TelemetrySettings
from ccrelay_wire import CACHE_VERDICTS

if TYPE_CHECKING:
    from ccrelay.latency.observer import Attempt, RequestSummary
    from ccrelay.latency.s3 import S3ClientFactory

__all__ = ["LatencyRecorder", "PromptCacheEstimate", "build_sink"]

_log = logging.getLogger("ccrelay.telemetry")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def build_sink(
    settings: TelemetrySettings, *, s3_client_factory: S3ClientFactory | None = None
) -> RecordSink:
    """The sinks ``settings`` asks for: the log line always, then JSONL and S3 when configured.

    ``settings`` must be resolved (:meth:`TelemetrySettings.resolved`).
    """
    sinks: list[RecordSink] = [LogSink(settings.log_format)]
    if settings.jsonl_enabled:
        if settings.jsonl_dir is None:
            raise ValueError("TelemetrySettings.jsonl_dir is unset: resolve the settings first")
        sinks.append(JsonlSink(settings.jsonl_dir))
    if settings.s3 is not None:
        from ccrelay.latency.s3 import S3Sink  # only when configured: not every start pays it

        sinks.append(S3Sink(settings.s3, client_factory=s3_client_factory))
    return MultiSink(sinks)


class PromptCacheEstimate:
    """How Anthropic's prompt cache would have split a request's prompt, had it gone there.

    Claude Code marks its system prompt, tools and latest messages for caching, and a
    conversation only grows between two requests; so on Anthropic the part of the prompt the
    previous request of the same conversation already carried, if it came within the cache's
    five minutes, is a cache read (0.1x the input price), and the rest is a cache write (1.25x).
    A first request, or one after a pause or a compaction (a shorter prompt), writes it all.
    Conversations are told apart by `ccrelay.routing.summary.conversation_key`; the memory is bounded.
    """

    TTL_S = 300.0
    MAX_CONVERSATIONS = 10_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def split(self, conversation: str, prompt_tokens: int) -> tuple[int, int]:
        """(cache read, cache write) tokens for a prompt of ``prompt_tokens``; remembers it."""
        now = self._clock()
        previous = self._last.pop(conversation, None)
        read = 0
        if previous is not None:
            when, tokens = previous
            if now - when <= self.TTL_S and tokens <= prompt_tokens:
                read = tokens
        self._last[conversation] = (now, prompt_tokens)
        while len(self._last) > self.MAX_CONVERSATIONS:
            self._last.popitem(last=False)
        return read, prompt_tokens - read


class LatencyRecorder:
    """Builds a :class:`LatencyRecord` per attempt, prices it, and hands it to the sink.

    Recording is synchronous, never raises into the request path and never waits on I/O (the
    sinks only enqueue). It is also the backends' ``AttemptObserver`` (:meth:`on_attempt`).
    Call it from inside the event loop; the sinks' background tasks start there.
    """

    def __init__(
        self,
        sink: RecordSink,
        prices: PriceTable,
        *,
        now: Callable[[], datetime] = _utc_now,
        session: str | None = None,
    ) -> None:
        self.sink = sink
        self.prices = prices
        self.now = now
        self.session = session
        self.prompt_cache = PromptCacheEstimate()
        self._spent: OrderedDict[str, float] = OrderedDict()  # request id -> its attempts' cost

    @classmethod
    def from_settings(
        cls,
        settings: TelemetrySettings,
        prices: PriceTable,
        *,
        s3_client_factory: S3ClientFactory | None = None,
    ) -> LatencyRecorder:
        return cls(build_sink(settings, s3_client_factory=s3_client_factory), prices)

    async def start(self) -> None:
        await self.sink.start()

    async def aclose(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        await self.sink.aclose(timeout)

    def record(
        self,
        *,
        request_id: str,
        backend: str,
        backend_type: str,
        model: str,
        outcome: str | BaseException,
        attempt: int,
        latency_ms: float,
        status: int | None = None,
        ttfb_ms: float | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cache: CacheStatus | None = None,
        streamed: bool = False,
        started_at: datetime | None = None,
        route: str | None = None,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        repaired_tool_calls: int = 0,
    ) -> LatencyRecord | None:
        """Record one attempt. ``outcome`` is ``"ok"`` or the error it ended with.

        When ``outcome`` is an exception that carries ``upstream_status`` and ``status`` is not
        given, that status is used. Returns the record, or None if the values were invalid (a
        warning is logged; the request goes on).
        """
        if isinstance(outcome, BaseException):
            if status is None:
                status = getattr(outcome, "upstream_status", None)
            outcome = type(outcome).__name__
        cost = self.prices.cost(
            model,
            tokens_in,
            tokens_out,
            backend=backend,
            cache_read=cache_read_tokens,
            cache_write=cache_write_tokens,
            seconds=max(latency_ms, 0.0) / 1000,
        )
        record = self._keep(
            timestamp=started_at if started_at is not None else self.now(),
            kind="attempt",
            request_id=request_id,
            backend=backend,
            backend_type=backend_type,
            model=model,
            outcome=outcome,
            status=status,
            attempt=attempt,
            latency_ms=latency_ms,
            ttfb_ms=ttfb_ms,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
            cache=cache,
            cost_usd=cost,
            streamed=streamed,
            route=route,
            session=self.session,
            repaired_tool_calls=repaired_tool_calls,
        )
        if record is not None and request_id:
            self._spent[request_id] = self._spent.pop(request_id, 0.0) + record.cost_usd
            while len(self._spent) > _MAX_OPEN_REQUESTS:
                self._spent.popitem(last=False)
        return record

    def _keep(self, **fields: Any) -> LatencyRecord | None:
        try:
            record = LatencyRecord(**fields)
        except ValidationError as exc:
            names = ", ".join(str(error["loc"][0]) for error in exc.errors() if error["loc"])
            _log.warning(
                "latency record for backend %s not kept: invalid %s", fields.get("backend"), names
            )
            return None
        self.sink.emit_nowait(record)
        return record

    def on_request(self, summary: RequestSummary) -> None:
        """The router's `RequestObserver` hook: one record for what the client got, built
        once the reply is on its way (:meth:`_after_reply`).

        A request refused before any backend was chosen (a backend name that does not exist,
        a request no backend could take) says nothing about a backend: it makes no record,
        or it would be a row and a chart with no backend's name in ``ccrelay stats``. The
        gateway's access log still has its line.
        """
        if not summary.backend:
            return
        self._after_reply(self.request_record, summary, self.now())

    def on_attempt(self, attempt: Attempt) -> None:
        """The backends' ``AttemptObserver`` hook: record a finished attempt, once the reply
        is on its way (:meth:`_after_reply`)."""
        self._after_reply(self.attempt_record, attempt, self.now())

    @staticmethod
    def _after_reply(build: Callable[[Any, datetime], object], item: Any, now: datetime) -> None:
        """Build and emit the record on the loop's next turn, not inside the request: the
        backend returns, the gateway writes the reply, then the record (with its log line)
        is made. That takes the record's cost out of the request's latency (its CPU stays).
        Callbacks run in order, so a request's attempts are recorded before the request."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): now
            build(item, now)
            return
        loop.call_soon(build, item, now)

    def request_record(self, summary: RequestSummary, now: datetime) -> LatencyRecord | None:
        """The record of one request that ended at ``now``.

        Its cost is what its attempts cost (failed ones included: a GPU-second is spent either
        way); its baseline is what Anthropic would have billed for the answer, on the Claude
        model the client asked for, with prompt caching (:class:`PromptCacheEstimate`).
        """
        usage = summary.usage
        tokens_in = _count(usage.get("input_tokens"))
        tokens_out = _count(usage.get("output_tokens"))
        cache_read = _count(usage.get("cache_read_input_tokens"))
        cache_write = _count(usage.get("cache_creation_input_tokens"))
        cost = self._spent.pop(summary.request_id, 0.0)
        if summary.outcome != "ok":
            baseline = 0.0  # Anthropic bills no failed request
        elif summary.backend_type == "anthropic":
            baseline = cost  # it was Anthropic: the bill is the bill, nothing saved
        else:
            read, write = self.prompt_cache.split(
                summary.conversation, tokens_in + cache_read + cache_write
            )
            baseline = self.prices.baseline_cost(
                0, tokens_out, requested=summary.requested_model, cache_read=read, cache_write=write
            )
        return self._keep(
            timestamp=now - timedelta(milliseconds=summary.latency_ms),
            kind="request",
            request_id=summary.request_id,
            session=summary.session or self.session,
            request_class=summary.request_class,
            backend=summary.backend,
            backend_type=summary.backend_type,
            model=summary.model,
            requested_model=summary.requested_model,
            route=summary.route,
            outcome=summary.outcome,
            status=summary.status,
            attempts=summary.attempts,
            failovers=summary.failovers,
            backoff_ms=summary.backoff_ms,
            latency_ms=summary.latency_ms,
            ttfb_ms=summary.ttfb_ms,
            streamed=summary.streamed,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            cache=summary.cache if summary.cache in CACHE_VERDICTS else None,
            cost_usd=cost,
            baseline_usd=baseline,
            hedged=summary.hedged,
            cold_wait_ms=summary.cold_wait_ms,
        )

    def attempt_record(self, attempt: Attempt, now: datetime) -> LatencyRecord | None:
        """The record of one attempt that ended at ``now``."""
        return self.record(
            request_id=attempt.request_id,
            backend=attempt.backend,
            backend_type=attempt.backend_type,
            model=attempt.model,
            outcome=attempt.outcome,
            attempt=attempt.attempt,
            latency_ms=attempt.latency_ms,
            status=attempt.status,
            ttfb_ms=attempt.ttfb_ms,
            tokens_in=attempt.tokens_in or 0,
            tokens_out=attempt.tokens_out or 0,
            cache=attempt.cache if attempt.cache in CACHE_VERDICTS else None,  # type: ignore[arg-type]
            streamed=attempt.streamed,
            started_at=now - timedelta(milliseconds=attempt.latency_ms),
            route=attempt.route,
            cache_read_tokens=attempt.cache_read_tokens or 0,
            cache_write_tokens=attempt.cache_write_tokens or 0,
            repaired_tool_calls=attempt.repaired_tool_calls,
        )


_MAX_OPEN_REQUESTS = 10_000
"""Requests whose attempts' cost waits for their request record; bounded, oldest dropped."""


def _count(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else 0
