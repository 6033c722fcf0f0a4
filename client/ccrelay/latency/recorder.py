"""The facade the backends call: one :meth:`LatencyRecorder.record` per attempt."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ccrelay.latency.record import CacheStatus, LatencyRecord
from ccrelay.latency.s3 import S3ClientFactory, S3Sink
from ccrelay.latency.sinks import JsonlSink, LogSink, MultiSink, RecordSink
from ccrelay_config.pricing import PriceTable
from ccrelay_config.telemetry import TelemetrySettings
from ccrelay_wire import CACHE_VERDICTS

if TYPE_CHECKING:
    from ccrelay.backend import Attempt

__all__ = ["LatencyRecorder", "build_sink"]

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
        sinks.append(S3Sink(settings.s3, client_factory=s3_client_factory))
    return MultiSink(sinks)


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
        try:
            record = LatencyRecord(
                timestamp=started_at if started_at is not None else self.now(),
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
                cache=cache,
                cost_usd=self.prices.cost(model, tokens_in, tokens_out),
                streamed=streamed,
                route=route,
                session=self.session,
            )
        except ValidationError as exc:
            fields = ", ".join(str(error["loc"][0]) for error in exc.errors() if error["loc"])
            _log.warning("latency record for backend %s not kept: invalid %s", backend, fields)
            return None
        self.sink.emit_nowait(record)
        return record

    def on_attempt(self, attempt: Attempt) -> None:
        """The backends' ``AttemptObserver`` hook: record a finished attempt."""
        self.record(
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
            started_at=self.now() - timedelta(milliseconds=attempt.latency_ms),
            route=attempt.route,
        )
