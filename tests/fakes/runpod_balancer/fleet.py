"""The workers behind the fake load balancer: real HTTP servers that it starts, polls, stops.

Sources as in the package's docstring (runpod/docs a900806, serverless/load-balancing/
overview.mdx and worker-affinity.mdx):

- Health: each worker's ``/ping`` (``health_path``, RunPod's ``HEALTH_CHECK_PATH``) is polled
  every ``ping_interval_s`` [the interval is not documented]: 200 healthy, 204 initializing,
  any other answer (a refused connection included) unhealthy.
- Cold start: a started worker answers ``/ping`` 204, and any other path 503, for
  ``cold_start_s`` (what the ccrelay worker's boot face does, ``ccrelay_worker.starting``),
  then serves its own app on the same port.
- Scale down: a healthy worker with nothing in flight for ``idle_timeout_s`` stops.

Each worker's app is built anew at every start by ``worker_app(worker_id)``:
`http_mode_worker` (this repository's worker in HTTP mode) or `scripted_worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import string
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from tests.fakes.harness import LoopbackServer

if TYPE_CHECKING:
    from ccrelay_handler.settings import HandlerSettings

__all__ = ["Fleet", "Worker", "WorkerApp", "http_mode_worker", "scripted_worker"]

WorkerApp = Callable[[str], web.Application]
_STARTING = {"type": "error", "error": {"type": "overloaded_error", "message": "starting"}}


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


def http_mode_worker(settings: Callable[[], HandlerSettings]) -> WorkerApp:
    """This repository's worker in HTTP mode (``ccrelay_worker.http_server.build_app``), each
    worker over a `ChatService` of its own built from ``settings()``; the service closes with
    the worker's server."""
    from ccrelay_handler.service import ChatService
    from ccrelay_worker.http_server import build_app

    def build(_worker_id: str) -> web.Application:
        service = ChatService(settings())  # in the server's event loop
        app = build_app(service)

        async def close(_app: web.Application) -> None:
            await service.aclose()

        app.on_cleanup.append(close)
        return app

    return build


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


class Fleet:
    """The endpoint's workers, in creation order; `changed` is set at every change of theirs
    (state, a request taken or ended) and then replaced."""

    def __init__(
        self,
        worker_app: WorkerApp,
        *,
        cold_start_s: float,
        idle_timeout_s: float,
        ping_interval_s: float,
        health_path: str,
        seed: int,
    ) -> None:
        self.worker_app = worker_app
        self.cold_start_s = cold_start_s
        self.idle_timeout_s = idle_timeout_s
        self.ping_interval_s = ping_interval_s
        self.health_path = health_path
        self.workers: dict[str, Worker] = {}
        self.changed = asyncio.Event()
        self._rng = random.Random(seed)
        self._client: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._client = aiohttp.ClientSession()

    async def close(self) -> None:
        for worker in list(self.workers.values()):
            await self.stop(worker)
        if self._client is not None:
            await self._client.close()
            self._client = None

    def notify(self) -> None:
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    @staticmethod
    async def wait(changed: asyncio.Event, seconds: float) -> bool:
        """Wait until `changed` is set (the workers changed since it was taken), at most
        `seconds`; False when no time is left."""
        if seconds <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await changed.wait()
        return True

    def new(self) -> Worker:
        """A new worker, not started yet; its id is 8 characters, as REST v2 ids are."""
        alphabet = string.ascii_lowercase + string.digits
        while (ident := "".join(self._rng.choices(alphabet, k=8))) in self.workers:
            pass
        worker = Worker(ident)
        self.workers[ident] = worker
        return worker

    async def start(self, worker: Worker) -> Worker:
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
        self.notify()
        return worker

    async def stop(self, worker: Worker) -> None:
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
        self.notify()

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
            for w in list(self.workers.values())
            if w.state != "stopped"
        ]

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
                self.notify()
            idle = time.monotonic() - worker.idle_since
            if state == "ready" and not worker.in_flight and idle >= self.idle_timeout_s:
                await self.stop(worker)
                return
            await asyncio.sleep(self.ping_interval_s)


def _booting_app() -> web.Application:
    async def ping(_request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def starting(_request: web.Request) -> web.Response:
        return web.json_response(_STARTING, status=503, headers={"Retry-After": "10"})

    app = web.Application()
    app.router.add_get("/ping", ping)
    app.router.add_route("*", "/{tail:.*}", starting)
    return app
