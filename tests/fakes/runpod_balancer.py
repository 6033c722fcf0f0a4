"""A fake of RunPod's load balancer: a load-balancing serverless endpoint, on 127.0.0.1.

Sources: runpod/docs at a900806e253c4f8c16da27d1a4370e72456da4cb,
``serverless/load-balancing/overview.mdx`` ("overview") and ``worker-affinity.mdx``
("affinity"). The statuses of the two timeouts are only in an older revision of the overview,
runpod/docs d81ff9c1ae7e2b3bdc49c2301b300de03209419c (l.187-188, "overview@d81ff9c"); the
current page states the limits without them and contradicts nothing. [inferred] marks what no
page says; each is a choice a test can see.

- ``https://{id}.api.runpod.ai/<any path>`` (overview): every method and path goes to one
  worker's own HTTP server, body and headers as sent, and the worker's reply comes back as it
  is written (streams too). ``Authorization`` and ``X-Runpod-Worker-Id`` are the load
  balancer's and are not passed on [inferred: no page says either way].
- Auth: ``Authorization: Bearer <key>``, as every example sends; anything else is 401
  ``{"error": "unauthorized"}`` [inferred: no page says what RunPod answers].
- Health (overview, "Worker health management"): each worker's ``/ping`` (``health_path``,
  ``HEALTH_CHECK_PATH``) is polled every ``ping_interval_s`` [the interval is not documented]:
  200 healthy, in the pool; 204 initializing; any other answer, a refused connection included,
  unhealthy and out of the pool. Only healthy workers are sent requests.
- Cold start (overview: counted "from /ping first returning 204 until it first returns 200"):
  a started worker answers ``/ping`` 204, and every other path 503, for ``cold_start_s`` (as
  the ccrelay worker's boot face does, ``ccrelay_worker.starting``), then serves its app.
- Scale up (REST v2 ``RequestCountScaling``, required for load balancers: "Adjusts the number
  of workers based on active in-flight requests"): a worker with ``request_count`` requests in
  flight is at capacity [inferred: the affinity page's "at capacity"]; while the requests in
  flight and waiting need more workers than are up, another starts, up to ``max_workers``.
- Scale down (affinity: "Workers scale down after being idle (no requests) for a set period
  ... a worker receiving regular traffic ... will never scale down"): a worker with nothing in
  flight for ``idle_timeout_s`` (the endpoint's ``workers.idleTimeout``) stops.
- Waiting (overview: "Request timeout: 2 min (no worker available)"): with no healthy worker
  that has room, a request waits up to ``wait_limit_s``, then gets 400 (overview@d81ff9c)
  ``{"error": "no workers available"}`` (the body: build-a-worker.mdx and vllm-worker.mdx).
- Processing (overview: 5.5 min per request): past ``processing_limit_s`` a request ends with
  524 (overview@d81ff9c), or, once the worker's reply has begun, its connection is cut
  [inferred].
- Payload (overview: 30 MB, request and response): a larger request body is refused 413
  ``{"error": "payload too large"}`` [inferred: no status is given]. Replies are not capped.
- Routing: an unpinned request goes to the next healthy worker with room, round robin
  [inferred: overview says only "distributing requests across the worker pool"].
- Affinity (affinity): every reply a worker gave carries ``X-Runpod-Worker-Id: <id>``. The
  request header pins: empty or absent, normal routing; ``<id>`` (soft) prefers that worker and
  falls back to normal routing when it is gone or at capacity; ``strict <id>`` waits for it up
  to ``strict_wait_s`` (~5 min) then 400 ``worker_timeout``, and answers 404
  ``affinity_worker_gone`` when it is not in the active set; ``strict-resume <id>`` also starts
  a scaled-down worker again (404 only when it is gone for good: `terminate_worker`). The
  bodies, ``{"error": "<reason>"}``, copy the documented "no workers available" one [inferred:
  their shape is not documented]. The balancer's own refusals name no worker [inferred].

Every request is recorded in ``.routed`` (`Routed`: the worker that served it, the pin sent,
its headers and body), for assertions. Workers are real HTTP servers: ``worker_app(worker_id)``
builds each one's aiohttp application (the ccrelay worker's ``build_app`` over a real
``ChatService``, or `scripted_worker`), anew at every start.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import random
import string
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.harness import LoopbackServer
from tests.fakes.runpod_rest import API_KEY

__all__ = ["WORKER_HEADER", "FakeLoadBalancer", "Routed", "Worker", "scripted_worker"]

WORKER_HEADER = "X-Runpod-Worker-Id"
PAYLOAD_LIMIT = 30 * 1024 * 1024
WorkerApp = Callable[[str], web.Application]
_NOT_FORWARDED = {"host", "authorization", "x-runpod-worker-id", "content-length"}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade"}
_STARTING = {"type": "error", "error": {"type": "overloaded_error", "message": "starting"}}


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Routed:
    """One request as the load balancer handled it: `worker` served it (None: refused)."""

    method: str
    path: str
    pin: str | None
    headers: dict[str, str]
    body: Any
    worker: str | None = None
    status: int | None = None


@dataclass(eq=False)
class Worker:
    """One worker: ``state`` is initializing, ready, unhealthy or stopped."""

    id: str
    state: str = "initializing"
    in_flight: int = 0
    served: int = 0
    starts: int = 0
    port: int = 0
    idle_since: float = 0.0
    started: float = 0.0
    started_at: str = ""
    _face: LoopbackServer | None = None
    _server: LoopbackServer | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rest_status(self) -> str:
        """Its REST v2 ``WorkerStatus``."""
        if self.state == "ready":
            return "RUNNING" if self.in_flight else "IDLE"
        return self.state.upper()


def scripted_worker(
    handler: Callable[[str, web.Request], Awaitable[web.StreamResponse]],
) -> WorkerApp:
    """A worker app that answers ``/ping`` 200 and every other request with
    ``handler(worker_id, request)``."""

    def build(worker_id: str) -> web.Application:
        async def ping(_request: web.Request) -> web.Response:
            return web.Response(status=200, text="ok")

        async def other(request: web.Request) -> web.StreamResponse:
            return await handler(worker_id, request)

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/ping", ping)
        app.router.add_route("*", "/{tail:.*}", other)
        return app

    return build


class FakeLoadBalancer(LoopbackServer):
    """The endpoint at ``.url``; its workers in `workers` (creation order); `routed`."""

    def __init__(
        self,
        worker_app: WorkerApp,
        *,
        api_key: str = API_KEY,
        endpoint_id: str = "lb7q2k9x",
        max_workers: int = 3,
        request_count: int = 4,
        cold_start_s: float = 0.0,
        idle_timeout_s: float = 60.0,
        wait_limit_s: float = 120.0,
        strict_wait_s: float = 300.0,
        processing_limit_s: float = 330.0,
        ping_interval_s: float = 0.05,
        payload_limit: int = PAYLOAD_LIMIT,
        health_path: str = "/ping",
        seed: int = 7,
    ) -> None:
        super().__init__()
        self.worker_app = worker_app
        self.api_key = api_key
        self.endpoint_id = endpoint_id
        self.max_workers = max_workers
        self.request_count = request_count
        self.cold_start_s = cold_start_s
        self.idle_timeout_s = idle_timeout_s
        self.wait_limit_s = wait_limit_s
        self.strict_wait_s = strict_wait_s
        self.processing_limit_s = processing_limit_s
        self.ping_interval_s = ping_interval_s
        self.payload_limit = payload_limit
        self.health_path = health_path
        self.routed: list[Routed] = []
        self._workers: dict[str, Worker] = {}
        self._rng = random.Random(seed)
        self._turn = itertools.count()
        self._waiting = 0
        self._changed = asyncio.Event()
        self._client: aiohttp.ClientSession | None = None
        self.app.router.add_route("*", "/{tail:.*}", self._route)

    # -- what tests use -------------------------------------------------------------------

    @property
    def workers(self) -> list[Worker]:
        return list(self._workers.values())

    def worker(self, worker_id: str) -> Worker:
        return self._workers[worker_id]

    def served_by(self) -> list[str | None]:
        """The worker of each request, in the order they were routed."""
        return [r.worker for r in self.routed]

    async def start_workers(self, count: int, within_s: float = 10.0) -> list[Worker]:
        """Start `count` workers now and wait until each is healthy."""
        started = [await self._start(self._new_worker()) for _ in range(count)]
        async with asyncio.timeout(within_s):
            while any(w.state != "ready" for w in started):
                await self._wait_change(self._changed, self.ping_interval_s)
        return started

    async def stop_worker(self, worker_id: str) -> None:
        """Scale `worker_id` down now, as its idle timeout would (strict-resume can resume it)."""
        await self._stop(self._workers[worker_id])

    async def terminate_worker(self, worker_id: str) -> None:
        """Take `worker_id` away for good (terminated, or redeployed under a new id)."""
        await self._stop(self._workers.pop(worker_id))

    def rest_workers(self) -> list[dict[str, Any]]:
        """The active workers as REST v2 ``GET /serverless/{id}/workers`` lists them
        (``Worker``); scaled-down ones are not listed (the spec's ``listEndpointWorkers``)."""
        now = time.monotonic()
        return [
            {
                "id": w.id,
                "status": w.rest_status(),
                "isStale": False,
                "version": 1,
                "gpuCount": 1,
                "image": "ccrelay-worker:test",
                "uptimeSeconds": max(0, int(now - w.started)),
                "gpuTypeId": "NVIDIA L40S",
                "dataCenterId": "EU-RO-1",
                "startedAt": w.started_at,
            }
            for w in list(self._workers.values())
            if w.state != "stopped"
        ]

    # -- the front door -------------------------------------------------------------------

    async def start(self) -> FakeLoadBalancer:
        self._client = aiohttp.ClientSession(auto_decompress=False)
        await super().start()
        return self

    async def close(self) -> None:
        await super().close()
        for worker in list(self._workers.values()):
            await self._stop(worker)
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _route(self, request: web.Request) -> web.StreamResponse:
        pin = request.headers.get(WORKER_HEADER)
        routed = Routed(request.method, request.path, pin, dict(request.headers), None)
        self.routed.append(routed)
        try:
            if request.headers.get("Authorization") != f"Bearer {self.api_key}":
                raise _Refused(401, "unauthorized")
            raw = await self._read_body(request)
            routed.body = _decoded(raw)
            worker = await self._take(pin or "")
        except _Refused as refused:
            routed.status = refused.status
            return web.json_response({"error": refused.reason}, status=refused.status)
        routed.worker = worker.id
        try:
            return await self._forward(request, raw, worker, routed)
        finally:
            worker.in_flight -= 1
            worker.served += 1
            worker.idle_since = time.monotonic()
            self._notify()

    async def _read_body(self, request: web.Request) -> bytes:
        if (request.content_length or 0) > self.payload_limit:
            raise _Refused(413, "payload too large")
        chunks, size = [], 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > self.payload_limit:
                raise _Refused(413, "payload too large")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _take(self, pin: str) -> Worker:
        """The worker for this request, its place counted (``in_flight``); waits as RunPod's
        load balancer does, then refuses."""
        mode, _, wanted = pin.strip().rpartition(" ")
        if mode in ("strict", "strict-resume"):
            return await self._take_pinned(mode, wanted)
        deadline = time.monotonic() + self.wait_limit_s
        preferred = self._workers.get(wanted) if wanted else None
        self._waiting += 1
        try:
            while True:
                changed = self._changed  # taken before looking: no change goes unseen
                if preferred is not None and self._has_room(preferred):
                    return self._claim(preferred)
                free = self._next_free()
                if free is not None:
                    return self._claim(free)
                await self._scale_up()
                if not await self._wait_change(changed, deadline - time.monotonic()):
                    raise _Refused(400, "no workers available")
        finally:
            self._waiting -= 1

    async def _take_pinned(self, mode: str, wanted: str) -> Worker:
        worker = self._workers.get(wanted)
        if worker is None or (worker.state == "stopped" and mode == "strict"):
            raise _Refused(404, "affinity_worker_gone")
        if worker.state == "stopped":
            await self._start(worker)  # strict-resume: ResumePodById, then wait for it
        deadline = time.monotonic() + self.strict_wait_s
        while True:
            changed = self._changed
            if self._workers.get(wanted) is not worker or worker.state == "stopped":
                raise _Refused(404, "affinity_worker_gone")
            if self._has_room(worker):
                return self._claim(worker)
            if not await self._wait_change(changed, deadline - time.monotonic()):
                raise _Refused(400, "worker_timeout")

    def _has_room(self, worker: Worker) -> bool:
        return worker.state == "ready" and worker.in_flight < self.request_count

    def _claim(self, worker: Worker) -> Worker:
        worker.in_flight += 1
        return worker

    def _next_free(self) -> Worker | None:
        """Round robin over the workers, from the one after the last chosen."""
        order = list(self._workers.values())
        if not order:
            return None
        start = next(self._turn) % len(order)
        for worker in order[start:] + order[:start]:
            if self._has_room(worker):
                return worker
        return None

    async def _scale_up(self) -> None:
        live = [w for w in self._workers.values() if w.state != "stopped"]
        busy = sum(w.in_flight for w in live) + self._waiting
        wanted = min(self.max_workers, math.ceil(busy / self.request_count))
        if len(live) < wanted:
            await self._start(self._new_worker())

    async def _forward(
        self, request: web.Request, raw: bytes, worker: Worker, routed: Routed
    ) -> web.StreamResponse:
        assert self._client is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        response = web.StreamResponse()
        try:
            async with (
                asyncio.timeout(self.processing_limit_s),
                self._client.request(
                    request.method,
                    worker.url + request.path_qs,
                    data=raw or None,
                    headers=headers,
                    allow_redirects=False,
                ) as upstream,
            ):
                response.set_status(upstream.status, upstream.reason)
                for name, value in upstream.headers.items():
                    if name.lower() not in _HOP_BY_HOP:
                        response.headers.add(name, value)
                response.headers[WORKER_HEADER] = worker.id
                if upstream.content_length is not None:
                    response.content_length = upstream.content_length
                routed.status = upstream.status
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except ConnectionResetError:  # the caller went away: so does the worker's request
            return response
        except TimeoutError:
            status, reason = 524, "processing timeout"
        except aiohttp.ClientError:
            status, reason = 502, "the worker did not answer"
        if response.prepared:  # the reply had begun: cut it off
            if request.transport is not None:
                request.transport.abort()
            return response
        routed.status = status
        reply = web.json_response({"error": reason}, status=status)
        reply.headers[WORKER_HEADER] = worker.id
        return reply

    # -- the workers ----------------------------------------------------------------------

    def _new_worker(self) -> Worker:
        alphabet = string.ascii_lowercase + string.digits
        while (ident := "".join(self._rng.choices(alphabet, k=8))) in self._workers:
            pass
        worker = Worker(ident)
        self._workers[ident] = worker
        return worker

    async def _start(self, worker: Worker) -> Worker:
        """Start (or resume) `worker`: 204 on /ping for `cold_start_s`, then its app."""
        worker.state = "initializing"
        worker.starts += 1
        worker.idle_since = worker.started = time.monotonic()
        worker.started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.cold_start_s > 0:
            worker._face = await LoopbackServer(_booting_app(), port=worker.port).start()
            worker.port = worker._face.port
            worker._tasks.append(asyncio.create_task(self._boot(worker)))
        else:
            await self._serve(worker)
        worker._tasks.append(asyncio.create_task(self._watch(worker)))
        self._notify()
        return worker

    async def _boot(self, worker: Worker) -> None:
        await asyncio.sleep(self.cold_start_s)
        async with worker._lock:  # no /ping while the port changes hands
            if worker._face is not None:
                await worker._face.close()
                worker._face = None
            await self._serve(worker)

    async def _serve(self, worker: Worker) -> None:
        app = self.worker_app(worker.id)
        worker._server = await LoopbackServer(app, port=worker.port).start()
        worker.port = worker._server.port

    async def _watch(self, worker: Worker) -> None:
        """Poll the worker's health; stop it once it has been idle for `idle_timeout_s`."""
        assert self._client is not None
        while worker.state != "stopped":
            async with worker._lock:
                try:
                    timeout = aiohttp.ClientTimeout(total=2)
                    url = worker.url + self.health_path
                    async with self._client.get(url, timeout=timeout) as reply:
                        status = reply.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
            state = {200: "ready", 204: "initializing"}.get(status, "unhealthy")
            if worker.state == "stopped":
                return
            if state != worker.state:
                if state == "ready":
                    worker.idle_since = time.monotonic()
                worker.state = state
                self._notify()
            idle = time.monotonic() - worker.idle_since
            if state == "ready" and not worker.in_flight and idle >= self.idle_timeout_s:
                await self._stop(worker)
                return
            await asyncio.sleep(self.ping_interval_s)

    async def _stop(self, worker: Worker) -> None:
        worker.state = "stopped"
        current = asyncio.current_task()
        tasks, worker._tasks = worker._tasks, []
        for task in tasks:
            if task is not current:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for server in (worker._face, worker._server):
            if server is not None:
                await server.close()
        worker._face = worker._server = None
        self._notify()

    # -- waiting --------------------------------------------------------------------------

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    @staticmethod
    async def _wait_change(changed: asyncio.Event, seconds: float) -> bool:
        """Wait until `changed` is set (the workers changed since it was taken), at most
        `seconds`; False when no time is left."""
        if seconds <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await changed.wait()
        return True


def _booting_app() -> web.Application:
    async def ping(_request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def starting(_request: web.Request) -> web.Response:
        return web.json_response(_STARTING, status=503, headers={"Retry-After": "10"})

    app = web.Application()
    app.router.add_get("/ping", ping)
    app.router.add_route("*", "/{tail:.*}", starting)
    return app


def _decoded(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")
