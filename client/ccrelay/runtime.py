"""What a process needs to send requests, built once at an entry point and closed once.

The CLI commands and the gateway each build one `Runtime`: the resolved config, the process's
single aiohttp session, the backend factory, the failover router and the attempt observer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING

import aiohttp

from ccrelay.backends.factory import (
    BackendFactory,
    load_client_config,
    new_session,
    proxy_configured,
)
from ccrelay.backends.registry import BackendRegistry
from ccrelay.http.retry import Sleep
from ccrelay.latency.observer import AttemptObserver, RequestObserver
from ccrelay.routing.chain import Router
from ccrelay_config.models import CcrelayConfig

if TYPE_CHECKING:
    from ccrelay.latency.recorder import LatencyRecorder

SHUTDOWN_FLUSH_S = 5.0
"""Bounded flush of latency records at exit; what S3 does not take in time stays spooled."""


class Runtime:
    def __init__(
        self,
        config: CcrelayConfig,
        session: aiohttp.ClientSession,
        *,
        registry: BackendRegistry | None = None,
        observer: AttemptObserver | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.config = config
        self.session = session
        self.observer = observer
        self.factory = BackendFactory(
            config, session, registry=registry, observer=observer, sleep=sleep
        )
        self.recorder: LatencyRecorder | None = None
        self._started = False
        requests = observer if isinstance(observer, RequestObserver) else None
        self.router = Router(self.factory, observer=requests, **({"clock": clock} if clock else {}))

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str],
        *,
        registry: BackendRegistry | None = None,
        observer: AttemptObserver | None = None,
        session_id: str | None = None,
    ) -> Runtime:
        """Must run inside the event loop (the HTTP session binds to it).

        Without an explicit observer, every attempt goes to a `LatencyRecorder` built from the
        config's `telemetry` and `prices` (log line, local JSONL, S3 when configured).
        """
        registry = registry or BackendRegistry()
        config = load_client_config(environ, registry)
        recorder = None
        if observer is None:
            from ccrelay.latency.recorder import LatencyRecorder

            telemetry = config.telemetry.resolved(environ)
            recorder = LatencyRecorder.from_settings(telemetry, config.prices)
            recorder.session = session_id  # a `ccrelay code` session: its records say so
            observer = recorder
        http = new_session(trust_env=proxy_configured(environ))
        runtime = cls(config, http, registry=registry, observer=observer)
        runtime.recorder = recorder
        return runtime

    async def start(self) -> None:
        """Start background work (the latency sinks' flushers). Idempotent."""
        if self.recorder is not None and not self._started:
            self._started = True
            await self.recorder.start()

    async def aclose(self) -> None:
        try:
            await self.router.aclose()
            await self.factory.aclose()
            await self.session.close()
        finally:
            if self.recorder is not None:
                await self.recorder.aclose(SHUTDOWN_FLUSH_S)

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
