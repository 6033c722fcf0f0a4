"""RunPod's worker-facing job API, as the runpod SDK speaks it: real workers take the fake's jobs.

`FakeRunPod(real_workers=True)` (tests/fakes/runpod_jobs.py) keeps every submitted job in a
`WorkerQueue` until a worker process takes it: the ccrelay handler under the runpod SDK's own
job loop (``python -m ccrelay_handler`` with `WorkerQueue.worker_env`; tests/runpod_sdk_worker.py).

The protocol, read in runpod/runpod-python v1.12.0 (07fc6e2, the SDK this project pins), under
``runpod/serverless/``:

- Taking jobs (``modules/rp_job.py`` ``get_job``, ``_job_get_url``; ``modules/rp_scale.py``
  ``JobScaler.get_jobs``): ``GET RUNPOD_WEBHOOK_GET_JOB`` with ``$ID`` replaced by the worker id
  (``RUNPOD_POD_ID``, ``modules/worker_state.py`` ``WORKER_ID``) and ``&job_in_progress=0|1``
  appended, so the URL carries a query already. With more than one free slot (the handler's
  ``concurrency_modifier``: ``OLLAMA_NUM_PARALLEL``) the path's ``/job-take/`` becomes
  ``/job-take-batch/`` and ``&batch_size=N`` is added. Answers: ``204`` (no job; ``400`` is
  read the same), one ``{"id", "input"}`` object (legacy) or a list of them (batch), as
  ``application/json``. The SDK waits up to 90 s for it (``jobs_fetcher_timeout``); how long
  RunPod holds an empty poll is not documented: here ``hold_s``.
- Outputs (``modules/rp_http.py`` ``stream_result``, ``send_result``, ``_transmit``;
  ``rp_job.handle_job``): a POST per output, its body JSON text sent as
  ``application/x-www-form-urlencoded``. A generator handler's every yield goes to
  ``RUNPOD_WEBHOOK_POST_STREAM`` (``$ID``: the job id, ``$RUNPOD_POD_ID``: the worker id; then
  ``&isStream=false``) as ``{"output": item}``, each awaited before the next item is pulled;
  then ``RUNPOD_WEBHOOK_POST_OUTPUT`` (``&isStream=true``) gets ``{"output": [every item]}``
  (``return_aggregate_stream``) or, when the handler yielded a dict with a truthy ``error`` (that
  item is never streamed), ``{"error": str(error)}``. Failed posts are retried 3 times, then
  only logged.
- Stopping (``rp_job.get_stop_signals``, ``_job_stop_url``; ``rp_scale.monitor_stop_signals``,
  ``stop_job``): a long-poll of the take URL with ``/job-take/`` -> ``/job-stop/``; a
  ``{"jobsToStop": [ids]}`` answer cancels those jobs' tasks (the handler sees
  ``CancelledError``) and nothing is posted for them. Here ``/cancel`` of a taken job sends it.
- Heartbeat (``modules/rp_ping.py`` ``Heartbeat``): ``GET RUNPOD_WEBHOOK_PING`` (``$RUNPOD_POD_ID``)
  with ``job_id`` and ``runpod_version`` every ``RUNPOD_PING_INTERVAL`` ms, from a child
  process, only when ``RUNPOD_AI_API_KEY`` and ``RUNPOD_POD_ID`` are set.
- Credentials (``runpod/http_client.py`` ``get_auth_header``, ``rp_ping.Heartbeat``): every
  request carries ``Authorization: <RUNPOD_AI_API_KEY>``, the key as it is, without ``Bearer``
  (unless ``~/.runpod/config.toml`` has one: workers get a HOME of their own).
- Fitness checks (``modules/rp_fitness.py``, ``rp_system_fitness.py``, ``rp_gpu_fitness.py``)
  run before the loop and end the process when one fails; the network one dials 8.8.8.8, so
  the environment turns them off (``RUNPOD_SKIP_AUTO_SYSTEM_CHECKS``, ``RUNPOD_SKIP_GPU_CHECK``).

Inferred, not documented: the URL shapes (``/v2/{endpoint}/job-take/{worker}?gpu=...``,
``job-done/{worker}/{job}``, ``job-stream/{worker}/{job}``, ``job-stop/{worker}``,
``ping/{worker}``) follow the SDK's own local simulator (runpod-python
``tests/test_serverless/local_sim/``) and its ``tests/test_serverless/test_modules/test_job.py``;
that the platform gives the worker a key of its own (``worker_key``) rather than the account's.

What the client sees (``/status``, ``/stream``, ``/runsync``, the OpenAI route) is in
`FakeRunPod`; RunPod's relay of the OpenAI route is not documented (its docstring says what is
inferred there).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from tests.fakes.harness import Recorded, record
from tests.fakes.runpod_outputs import Job, Script

__all__ = ["TERMINAL", "WorkerQueue"]

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})
_GPU = "NVIDIA+H100+80GB+HBM3"  # the ?gpu= RunPod puts in a worker's URLs (local_sim's shape)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class WorkerQueue:
    """The jobs waiting for a worker, and the routes workers take them, post and stop them by."""

    def __init__(
        self, endpoint_id: str, jobs: dict[str, Job], *, worker_key: str, hold_s: float = 0.5
    ) -> None:
        self.endpoint_id = endpoint_id
        self.jobs = jobs  # the endpoint's jobs, by id (shared with `FakeRunPod`)
        self.worker_key = worker_key
        self.hold_s = hold_s
        self.pending: deque[Job] = deque()
        self.stops: dict[str, list[str]] = {}  # worker id -> jobs it is to stop
        self.contacts: dict[str, float] = {}  # worker id -> when it last asked for work
        self.requests: list[Recorded] = []  # every request a worker made
        self.changed = asyncio.Condition()
        self.base_url = ""  # set by `FakeRunPod` once it listens

    def add_routes(self, app: web.Application, base: str) -> None:
        app.router.add_get(f"{base}/job-take/{{worker}}", self._take)
        app.router.add_get(f"{base}/job-take-batch/{{worker}}", self._take)
        app.router.add_get(f"{base}/job-stop/{{worker}}", self._stop_signals)
        app.router.add_post(f"{base}/job-stream/{{worker}}/{{job_id}}", self._stream_output)
        app.router.add_post(f"{base}/job-done/{{worker}}/{{job_id}}", self._job_done)
        app.router.add_get(f"{base}/ping/{{worker}}", self._ping)

    def worker_env(self, worker_id: str) -> dict[str, str]:
        """The variables RunPod gives a worker (runpod-python reads them at import)."""
        base = f"{self.base_url}/v2/{self.endpoint_id}"
        query = f"?gpu={_GPU}"
        return {
            "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$ID{query}",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID{query}",
            "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID{query}",
            "RUNPOD_WEBHOOK_PING": f"{base}/ping/$RUNPOD_POD_ID{query}",
            "RUNPOD_AI_API_KEY": self.worker_key,
            "RUNPOD_POD_ID": worker_id,
            "RUNPOD_ENDPOINT_ID": self.endpoint_id,
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
            "RUNPOD_SKIP_GPU_CHECK": "true",
        }

    # -- what the worker side has seen ---------------------------------------------------

    def seen(self, kind: str) -> list[Recorded]:
        """The workers' requests of one kind: job-take (batch too), job-stream, job-done..."""
        return [r for r in self.requests if f"/{kind}" in r.path]

    def taking(self, worker_id: str) -> bool:
        """Has `worker_id` asked for a job yet (its loop is running)?"""
        return worker_id in self.contacts

    # -- the client side's calls ----------------------------------------------------------

    async def enqueue(self, job: Job) -> None:
        job.queued = True
        async with self.changed:
            self.pending.append(job)
            self.changed.notify_all()

    async def settle(self, job: Job, within_s: float | None) -> None:
        """Wait until the job ends, or `within_s` passes (None: as long as the caller waits)."""
        async with self.changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.changed.wait_for(lambda: job.status in TERMINAL), within_s
                )

    async def cancel(self, job: Job) -> None:
        """Queued, it never runs; taken, its worker is told through its stop channel."""
        async with self.changed:
            if job.status in TERMINAL:
                return
            if job in self.pending:
                self.pending.remove(job)
            elif job.worker_id is not None:
                self.stops.setdefault(job.worker_id, []).append(job.id)
            self._end(job, "CANCELLED")

    def status_body(self, job: Job) -> dict[str, Any]:
        """``/status``: RunPod's shape (operation-reference.mdx: delayTime, executionTime in ms)."""
        body: dict[str, Any] = {"id": job.id, "status": job.status}
        if job.taken_at is not None:
            body["delayTime"] = _ms(job.taken_at - job.created_at)
            if job.ended_at is not None:
                body["executionTime"] = _ms(job.ended_at - job.taken_at)
        result = job.result or {}
        if job.status == "COMPLETED":
            body["output"] = result.get("output")
        elif job.status == "FAILED":
            body["error"] = result.get("error")
        return body

    def stream_body(self, job: Job) -> dict[str, Any]:
        """``/stream``: the outputs posted since the last poll."""
        body = {
            "id": job.id,
            "status": job.status,
            "stream": [{"output": item} for item in job.produced[job.delivered :]],
        }
        job.delivered = len(job.produced)
        if job.status == "FAILED":
            body["error"] = (job.result or {}).get("error")
        return body

    async def outputs(self, job: Job) -> AsyncIterator[Any]:
        """Each output the worker posts for `job`, as it is posted, until the job ends."""
        sent = 0
        while True:
            async with self.changed:
                await self.changed.wait_for(
                    lambda n=sent: len(job.produced) > n or job.status in TERMINAL
                )
                items, ended = job.produced[sent:], job.status in TERMINAL
            sent += len(items)
            for item in items:
                yield item
            if ended and sent == len(job.produced):
                return

    async def relay(
        self, request: web.Request, job_input: dict[str, Any], *, streamed: bool
    ) -> web.StreamResponse:
        """The OpenAI route on the queue: a job real workers take, its outputs relayed as they
        are posted (streamed), or its one output as the body; a failed job's error is a 500."""
        job = Job(str(uuid.uuid4()), job_input, Script(), sync=False)
        self.jobs[job.id] = job
        await self.enqueue(job)
        response: web.StreamResponse | None = None
        if streamed:
            async for item in self.outputs(job):
                if response is None:
                    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
                    await response.prepare(request)
                text = item if isinstance(item, str) else json.dumps(item)
                try:
                    await response.write(text.encode())
                except ConnectionError:
                    return response  # the client left; the job runs on (RunPod's is unknown)
        else:
            await self.settle(job, None)
        if response is not None:
            await response.write_eof()
            return response
        body = self.status_body(job)
        if job.status != "COMPLETED":
            return web.json_response({"error": body.get("error") or job.status}, status=500)
        output = body.get("output")
        if streamed:  # a stream with no output at all: an empty event stream
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write_eof()
            return response
        return web.json_response(output[0] if isinstance(output, list) and output else output)

    def health(self) -> dict[str, Any]:
        """``/health`` from the queue: a worker is up while it keeps asking for work."""
        now = time.monotonic()
        alive = {w for w, at in self.contacts.items() if now - at < max(5.0, 3 * self.hold_s)}
        jobs = list(self.jobs.values())
        running = {j.worker_id for j in jobs if j.status == "IN_PROGRESS"}

        def count(status: str) -> int:
            return sum(1 for j in jobs if j.queued and j.status == status)

        return {
            "jobs": {
                "completed": count("COMPLETED"),
                "failed": count("FAILED"),
                "inProgress": count("IN_PROGRESS"),
                "inQueue": count("IN_QUEUE"),
                "retried": 0,
            },
            "workers": {"idle": len(alive - running), "running": len(alive & running)},
        }

    # -- the worker side's routes ----------------------------------------------------------

    async def _worker_request(self, request: web.Request) -> tuple[Recorded, web.Response | None]:
        seen = await record(request)
        self.requests.append(seen)
        if request.headers.get("Authorization") != self.worker_key:
            return seen, web.json_response({"error": "Unauthorized"}, status=401)
        self.contacts[request.match_info["worker"]] = time.monotonic()
        return seen, None

    async def _take(self, request: web.Request) -> web.Response:
        _seen, denied = await self._worker_request(request)
        if denied is not None:
            return denied
        batch = "/job-take-batch/" in request.path
        size = max(1, int(request.query.get("batch_size", "1"))) if batch else 1
        async with self.changed:
            try:
                await asyncio.wait_for(
                    self.changed.wait_for(lambda: bool(self.pending)), self.hold_s
                )
            except TimeoutError:
                return web.Response(status=204)
            taken = [self.pending.popleft() for _ in range(min(size, len(self.pending)))]
            for job in taken:
                job.status = "IN_PROGRESS"
                job.worker_id = request.match_info["worker"]
                job.taken_at = time.monotonic()
            self.changed.notify_all()
        payload = [{"id": job.id, "input": job.input} for job in taken]
        return web.json_response(payload if batch else payload[0])

    async def _stop_signals(self, request: web.Request) -> web.Response:
        _seen, denied = await self._worker_request(request)
        if denied is not None:
            return denied
        worker = request.match_info["worker"]
        async with self.changed:
            try:
                await asyncio.wait_for(
                    self.changed.wait_for(lambda: bool(self.stops.get(worker))), self.hold_s
                )
            except TimeoutError:
                return web.Response(status=204)
            ids = self.stops.pop(worker)
        return web.json_response({"jobsToStop": ids})

    async def _posted(self, request: web.Request) -> tuple[Job | None, Any, web.Response | None]:
        seen, denied = await self._worker_request(request)
        if denied is not None:
            return None, None, denied
        job = self.jobs.get(request.match_info["job_id"])
        if job is None or not job.queued:
            return None, None, web.json_response({"error": "job not found"}, status=404)
        return job, seen.body, None  # JSON text, whatever its Content-Type says

    async def _stream_output(self, request: web.Request) -> web.Response:
        job, body, refused = await self._posted(request)
        if job is None:
            assert refused is not None
            return refused
        async with self.changed:
            if job.status == "IN_PROGRESS" and isinstance(body, dict) and "output" in body:
                job.produced.append(body["output"])
                self.changed.notify_all()
        return web.json_response({})

    async def _job_done(self, request: web.Request) -> web.Response:
        job, body, refused = await self._posted(request)
        if job is None:
            assert refused is not None
            return refused
        async with self.changed:
            if job.status == "IN_PROGRESS":  # a cancelled job's late result is dropped
                job.result = body if isinstance(body, dict) else {"error": "bad job result"}
                self._end(job, "FAILED" if job.result.get("error") else "COMPLETED")
        return web.json_response({})

    async def _ping(self, request: web.Request) -> web.Response:
        _seen, denied = await self._worker_request(request)
        return denied or web.json_response({})

    def _end(self, job: Job, status: str) -> None:
        """Call with `changed` held."""
        job.status = status
        job.ended_at = time.monotonic()
        job.cancelled = status == "CANCELLED"
        self.changed.notify_all()
