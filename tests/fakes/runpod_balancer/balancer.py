"""The fake load balancer's front door: auth, limits, routing, affinity, waiting.

Each behaviour and its source is listed in the package's docstring (runpod/docs a900806,
serverless/load-balancing/overview.mdx and worker-affinity.mdx; the timeouts' statuses from
d81ff9c). The workers themselves are fleet.py's.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.harness import LoopbackServer
from tests.fakes.runpod_balancer.fleet import Fleet, Worker, WorkerApp
from tests.fakes.runpod_rest import API_KEY

__all__ = ["PAYLOAD_LIMIT", "WORKER_HEADER", "FakeLoadBalancer", "Routed"]

WORKER_HEADER = "X-Runpod-Worker-Id"
PAYLOAD_LIMIT = 30 * 1024 * 1024
_NOT_FORWARDED = {"host", "authorization", "x-runpod-worker-id", "content-length"}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade"}


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Routed:
    """One request as the load balancer handled it: `worker` served it (None: refused, or
    still waiting for one)."""

    method: str
    path: str
    pin: str | None
    headers: dict[str, str]
    body: Any
    worker: str | None = None
    status: int | None = None


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
        self.api_key = api_key
        self.endpoint_id = endpoint_id
        self.max_workers = max_workers
        self.request_count = request_count
        self.wait_limit_s = wait_limit_s
        self.strict_wait_s = strict_wait_s
        self.processing_limit_s = processing_limit_s
        self.payload_limit = payload_limit
        self.fleet = Fleet(
            worker_app,
            cold_start_s=cold_start_s,
            idle_timeout_s=idle_timeout_s,
            ping_interval_s=ping_interval_s,
            health_path=health_path,
            seed=seed,
        )
        self.routed: list[Routed] = []
        self._turn = itertools.count()
        self._waiting = 0
        self._client: aiohttp.ClientSession | None = None
        self.app.router.add_route("*", "/{tail:.*}", self._route)

    # -- what tests use -------------------------------------------------------------------

    @property
    def workers(self) -> list[Worker]:
        return list(self.fleet.workers.values())

    async def start_workers(self, count: int, within_s: float = 10.0) -> list[Worker]:
        """Start `count` workers now and wait until each is healthy."""
        fleet = self.fleet
        started = [await fleet.start(fleet.new()) for _ in range(count)]
        async with asyncio.timeout(within_s):
            while any(w.state != "ready" for w in started):
                await fleet.wait(fleet.changed, fleet.ping_interval_s)
        return started

    async def stop_worker(self, worker_id: str) -> None:
        """Scale `worker_id` down now, as its idle timeout would (strict-resume can resume it)."""
        await self.fleet.stop(self.fleet.workers[worker_id])

    async def terminate_worker(self, worker_id: str) -> None:
        """Take `worker_id` away for good (terminated, or redeployed under a new id)."""
        await self.fleet.stop(self.fleet.workers.pop(worker_id))

    def rest_workers(self) -> list[dict[str, Any]]:
        """What REST v2 lists for this endpoint (tests/fakes/runpod_rest.py reads it)."""
        return self.fleet.rest_workers()

    # -- the front door -------------------------------------------------------------------

    async def start(self) -> FakeLoadBalancer:
        self._client = aiohttp.ClientSession(auto_decompress=False)
        await self.fleet.open()
        await super().start()
        return self

    async def close(self) -> None:
        await super().close()
        await self.fleet.close()
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
            self.fleet.notify()

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
        fleet = self.fleet
        deadline = time.monotonic() + self.wait_limit_s
        preferred = fleet.workers.get(wanted) if wanted else None
        self._waiting += 1
        try:
            while True:
                changed = fleet.changed  # taken before looking: no change goes unseen
                if preferred is not None and self._has_room(preferred):
                    return self._claim(preferred)
                free = self._next_free()
                if free is not None:
                    return self._claim(free)
                await self._scale_up()
                if not await fleet.wait(changed, deadline - time.monotonic()):
                    raise _Refused(400, "no workers available")
        finally:
            self._waiting -= 1

    async def _take_pinned(self, mode: str, wanted: str) -> Worker:
        fleet = self.fleet
        worker = fleet.workers.get(wanted)
        if worker is None or (worker.state == "stopped" and mode == "strict"):
            raise _Refused(404, "affinity_worker_gone")
        if worker.state == "stopped":
            await fleet.start(worker)  # strict-resume: ResumePodById, then wait for it
        deadline = time.monotonic() + self.strict_wait_s
        while True:
            changed = fleet.changed
            if fleet.workers.get(wanted) is not worker or worker.state == "stopped":
                raise _Refused(404, "affinity_worker_gone")
            if self._has_room(worker):
                return self._claim(worker)
            if not await fleet.wait(changed, deadline - time.monotonic()):
                raise _Refused(400, "worker_timeout")

    def _has_room(self, worker: Worker) -> bool:
        return worker.state == "ready" and worker.in_flight < self.request_count

    @staticmethod
    def _claim(worker: Worker) -> Worker:
        worker.in_flight += 1
        return worker

    def _next_free(self) -> Worker | None:
        """Round robin over the workers, from the one after the last chosen."""
        order = list(self.fleet.workers.values())
        if not order:
            return None
        start = next(self._turn) % len(order)
        for worker in order[start:] + order[:start]:
            if self._has_room(worker):
                return worker
        return None

    async def _scale_up(self) -> None:
        fleet = self.fleet
        live = [w for w in fleet.workers.values() if w.state != "stopped"]
        busy = sum(w.in_flight for w in live) + self._waiting
        if len(live) < min(self.max_workers, math.ceil(busy / self.request_count)):
            await fleet.start(fleet.new())

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


def _decoded(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")
