"""A load-balanced endpoint: requests straight to a worker's HTTP server, pinned by session.

RunPod's load balancer (runpod/docs serverless/load-balancing/overview.mdx and
worker-affinity.mdx) forwards ``https://{id}.api.runpod.ai/<path>`` to a worker's own HTTP
server, the ccrelay worker's HTTP mode. What this client does about it:

- **Affinity.** Every reply carries ``X-Runpod-Worker-Id``. Sending it back pins the next
  request of the same Claude Code session to that worker, whose engine holds the session's
  prompt in its KV cache (a miss re-evaluates 12k-100k tokens: 6-50 s at 2,000 tokens/s). The
  pins (`Pins`, the affinity policy) say what to send; a pinned worker that is gone (404
  ``affinity_worker_gone``) or stayed busy past RunPod's wait is unpinned and the request
  sent again without the header.
- **Cold starts.** While no worker is up the load balancer holds a request up to 2 minutes,
  then answers "no workers available" (400); this client asks again until
  ``cold_start_timeout_s``. A request never waits longer than that.
- **Limits.** 30 MB each way (refused here, before sending), 5.5 minutes of processing (the
  attempt's total deadline never exceeds the 2-minute wait plus that).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import orjson

from ccrelay.backends.runpod.settings import (
    LB_PAYLOAD_LIMIT,
    LB_PROCESSING_LIMIT_S,
    LB_QUEUE_LIMIT_S,
    LB_STRICT_WAIT_S,
    RunPodSettings,
)
from ccrelay.errors import (
    NoWorkerReady,
    PinnedWorkerUnavailable,
    ProtocolError,
    RequestTooLarge,
    TotalTimeout,
    UpstreamStatusError,
)
from ccrelay.http.client import JsonReply, SSEReply
from ccrelay.http.statuses import provider_message

if TYPE_CHECKING:
    from ccrelay.backends.base import Backend

__all__ = ["WORKER_HEADER", "BalancedEndpoint", "Pins", "lb_refusal"]

log = logging.getLogger("ccrelay.backends.runpod")

WORKER_HEADER = "X-Runpod-Worker-Id"
_RETRY_PAUSE_S = 1.0  # between "no workers available" and the next ask

R = TypeVar("R")
Waited = Callable[[float], None]
"""Told how many seconds a request waited for a worker to start."""


class Pins(Protocol):
    """Session -> worker affinity (`ccrelay.coldstart.affinity.WorkerAffinity`)."""

    def header(self, session_id: str | None, now: float) -> str | None: ...

    def record(self, session_id: str | None, worker_id: str | None, now: float) -> None: ...

    def forget(self, session_id: str) -> None: ...


def lb_refusal(backend: str, status: int, text: str) -> UpstreamStatusError | None:
    """RunPod's load-balancer refusals, told apart from a worker's own errors by their body:
    ``{"error": "no workers available"}`` (400 after its 2-minute wait), 404
    ``affinity_worker_gone`` and 400 ``worker_timeout`` / "timed out waiting for worker"
    (a strict pin). runpod/docs serverless/load-balancing (older revisions give the statuses)."""
    message, code, _param = provider_message(text)
    said = f"{message} {code or ''}".lower()
    if "no workers available" in said:
        return NoWorkerReady(backend, "no worker is up yet", upstream_status=status)
    if "affinity_worker_gone" in said or "worker_timeout" in said or "waiting for worker" in said:
        return PinnedWorkerUnavailable(
            backend, f"the session's worker is not available ({message})", upstream_status=status
        )
    return None


class BalancedEndpoint:
    """One load-balanced endpoint, on the backend's shared session and secrets."""

    def __init__(
        self,
        backend: Backend[RunPodSettings],
        pins: Pins,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        settings = backend.settings
        self.name = backend.name
        self.settings = settings
        self.pins = pins
        self._clock = clock
        self._sleep = sleep
        timeouts = settings.timeouts
        # RunPod holds a request while it waits for a worker: our deadlines start after that
        strict = settings.cold_start.affinity.mode in ("strict", "strict-resume")
        wait = LB_STRICT_WAIT_S if strict else LB_QUEUE_LIMIT_S
        self.upstream = backend.upstream_client(
            settings.url,
            timeouts=timeouts.model_copy(
                update={
                    "first_byte_s": wait + timeouts.first_byte_s,
                    "total_s": min(timeouts.total_s, wait + LB_PROCESSING_LIMIT_S),
                }
            ),
            refusal=lb_refusal,
        )

    def body(self, request: dict[str, Any]) -> bytes:
        data = orjson.dumps(request)
        if len(data) > LB_PAYLOAD_LIMIT:
            raise RequestTooLarge(
                f"a request of {len(data) / 1e6:.1f} MB is larger than RunPod's load balancer "
                f"takes ({LB_PAYLOAD_LIMIT // (1024 * 1024)} MB)"
            )
        return data

    async def request(
        self,
        path: str,
        body: bytes | None,
        session: str | None,
        model: str,
        *,
        waited: Waited | None = None,
    ) -> JsonReply:
        """One plain request (POST with a body, else GET), pinned and retried as above."""

        async def once(headers: dict[str, str]) -> JsonReply:
            method = "POST" if body is not None else "GET"
            return await self.upstream.request(method, path, body, headers=headers, model=model)

        reply = await self._pinned(session, once, waited)
        self.pins.record(session, reply.headers.get(WORKER_HEADER), self._clock())
        return reply

    @asynccontextmanager
    async def stream(
        self,
        path: str,
        body: bytes,
        session: str | None,
        model: str,
        *,
        waited: Waited | None = None,
    ) -> AsyncIterator[SSEReply]:
        """A streamed POST, pinned and retried until its headers arrive; then held open."""
        async with AsyncExitStack() as stack:

            async def once(headers: dict[str, str]) -> SSEReply:
                return await stack.enter_async_context(
                    self.upstream.stream(path, body, headers=headers, model=model)
                )

            reply = await self._pinned(session, once, waited)
            self.pins.record(session, reply.headers.get(WORKER_HEADER), self._clock())
            yield reply

    async def _pinned(
        self,
        session: str | None,
        once: Callable[[dict[str, str]], Awaitable[R]],
        waited: Waited | None,
    ) -> R:
        """Send with the session's pin; unpin when its worker is unavailable; ask again while
        no worker is up, until ``cold_start_timeout_s`` (the time that took is `waited`)."""
        deadline = self._clock() + self.settings.cold_start_timeout_s
        cold_since: float | None = None
        while True:
            pin = self.pins.header(session, self._clock())
            headers = {WORKER_HEADER: pin} if pin else {}
            try:
                answered = await once(headers)
                if cold_since is not None and waited is not None:
                    waited(self._clock() - cold_since)
                return answered
            except PinnedWorkerUnavailable:
                if not pin or session is None:
                    raise
                log.info("runpod %s: session's worker is gone; sending unpinned", self.name)
                self.pins.forget(session)
            except NoWorkerReady:
                if self._clock() + _RETRY_PAUSE_S >= deadline:
                    raise TotalTimeout(
                        self.name,
                        "no worker started within cold_start_timeout_s="
                        f"{self.settings.cold_start_timeout_s:g} s",
                    ) from None
                if cold_since is None:
                    cold_since = self._clock()
                    log.info("runpod %s: no worker up yet; waiting for one to start", self.name)
                await self._sleep(_RETRY_PAUSE_S)

    async def worker_counts(self) -> dict[str, Any]:
        """REST v2 ``GET /serverless/{id}/workers``: the endpoint's workers by status (the
        ``summary`` object: running, idle, initializing, throttled, unhealthy)."""
        endpoint_id = self.settings.endpoint_id
        if not endpoint_id:
            raise ProtocolError(self.name, "no endpoint_id to ask RunPod's REST API about")
        reply = await self.upstream.request_json(
            "GET",
            f"{self.settings.rest_url.rstrip('/')}/serverless/{endpoint_id}/workers",
            timeout_s=min(self.settings.timeouts.first_byte_s, 30.0),
        )
        summary = reply.get("summary") if isinstance(reply, dict) else None
        if not isinstance(summary, dict):
            raise ProtocolError(self.name, "RunPod's workers reply has no summary")
        return summary
