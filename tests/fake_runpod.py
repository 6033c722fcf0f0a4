"""A loopback aiohttp server speaking RunPod's serverless (queue-based endpoint) API.

Routes, under ``/v2/{endpoint_id}`` (``.endpoint_url``), each checking ``Authorization:
Bearer <api_key>`` (401 otherwise):

- ``POST /runsync[?wait=ms]`` and ``POST /run``: create a job with ``{"input": ...}``;
- ``GET|POST /status/{id}``, ``GET|POST /stream/{id}`` (``{"status", "stream": [{"output"}]}``);
- ``POST /cancel/{id}``: recorded in ``.cancels``; the job ends CANCELLED;
- ``GET /health``: ``.health_body``; ``GET /openai/v1/models``: ``.models_body`` (404 if None).

Each job follows a `Script` (``.push_job`` queues scripts; otherwise the default): some polls
``IN_QUEUE`` (a cold start), some ``IN_PROGRESS``, then the final status. ``/runsync`` answers
the final status at once when the script has no queued or running polls. A streamed job
(``stream: true`` in its input) hands out one batch of outputs per ``/stream`` poll; with
``late_batches`` the status turns final while that many batches are still to come, as RunPod's
``/stream`` does (the SDK polls until the status is final *and* the batch is empty:
runpod-python ``endpoint/runner.py`` ``Job.stream``).
``.push_failure`` queues HTTP error replies for the next submissions (429/5xx knobs);
``.poll_failures`` lists statuses answered to the next ``/status`` or ``/stream`` polls.

``cold_start_s`` models a scale-to-zero endpoint in time, as RunPod does: no worker until the
first job arrives, then a worker ready ``cold_start_s`` later; until then every job is
``IN_QUEUE``. A warm-up job (``{"ccrelay_warmup": true}``) is answered as the ccrelay handler
answers it: ``{"warm": true, "model", "context_window"}`` (``.context_window``).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fake_providers import LoopbackServer, openai_completion, openai_text_chunks


@dataclass
class Script:
    """How one job behaves."""

    status: str = "COMPLETED"  # the final status: COMPLETED, FAILED, CANCELLED, TIMED_OUT
    output: Any = None  # COMPLETED output; None: a completion (or chunks) built from the input
    error: str | None = None  # FAILED / TIMED_OUT error text
    queued_polls: int = 0  # polls answered IN_QUEUE first (a cold start)
    running_polls: int = 0  # then polls answered IN_PROGRESS
    batches: list[list[Any]] | None = None  # /stream: outputs handed out per poll
    hang: bool = False  # never leaves IN_QUEUE (until cancelled)
    submit_delay: float = 0.0  # seconds the submission takes to answer
    stream_error_field: bool = True  # a FAILED /stream reply carries `error`
    late_batches: int = 0  # /stream batches still handed out after the status is final


@dataclass
class Job:
    id: str
    input: Any
    script: Script
    sync: bool
    polls: int = 0
    cancelled: bool = False
    batches: list[list[Any]] = field(default_factory=list)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class FakeRunPod(LoopbackServer):
    endpoint_id = "fakeendpoint01"

    def __init__(
        self, api_key: str = "rp-test-key-0123456789", *, cold_start_s: float = 0.0
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.cold_start_s = cold_start_s
        self.ready_at: float | None = None  # the loop time the cold worker is up
        self.context_window: int | None = 32768
        self.requests: list[Seen] = []
        self.jobs: dict[str, Job] = {}
        self.cancels: list[str] = []
        self.scripts: list[Script] = []
        self.failures: list[tuple[int, Any, dict[str, str]]] = []
        self.poll_failures: list[int] = []  # statuses for the next /status or /stream polls
        self.health_body: dict[str, Any] = {
            "jobs": {"completed": 0, "failed": 0, "inProgress": 0, "inQueue": 0, "retried": 0},
            "workers": {"idle": 0, "initializing": 0, "ready": 0, "running": 0, "throttled": 0},
        }
        self.models_body: dict[str, Any] | None = None
        app = self.app
        base = f"/v2/{self.endpoint_id}"
        app.router.add_post(f"{base}/runsync", self._runsync)
        app.router.add_post(f"{base}/run", self._run)
        for verb in ("GET", "POST"):
            app.router.add_route(verb, f"{base}/status/{{job_id}}", self._status)
            app.router.add_route(verb, f"{base}/stream/{{job_id}}", self._stream)
        app.router.add_post(f"{base}/cancel/{{job_id}}", self._cancel)
        app.router.add_get(f"{base}/health", self._health)
        app.router.add_get(f"{base}/openai/v1/models", self._models)

    @property
    def endpoint_url(self) -> str:
        return f"{self.url}/v2/{self.endpoint_id}"

    # -- knobs ---------------------------------------------------------------------------

    def push_job(self, *scripts: Script) -> None:
        self.scripts.extend(scripts)

    def push_failure(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        self.failures.append((status, body or {"error": f"HTTP {status}"}, headers or {}))

    def submissions(self) -> list[Seen]:
        return [r for r in self.requests if r.path.endswith(("/run", "/runsync"))]

    def polls(self, kind: str) -> list[Seen]:
        return [r for r in self.requests if f"/{kind}/" in r.path]

    # -- routes --------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> tuple[Seen, web.Response | None]:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        seen = Seen(request.method, request.path, dict(request.query), dict(request.headers), body)
        self.requests.append(seen)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return seen, web.json_response({"error": "Unauthorized"}, status=401)
        return seen, None

    async def _submit(self, request: web.Request, *, sync: bool) -> tuple[Job | None, web.Response]:
        seen, denied = await self._record(request)
        if denied is not None:
            return None, denied
        if self.failures:
            status, body, headers = self.failures.pop(0)
            return None, web.json_response(body, status=status, headers=headers)
        if self.cold_start_s and self.ready_at is None:
            self.ready_at = asyncio.get_running_loop().time() + self.cold_start_s
        script = self.scripts.pop(0) if self.scripts else Script()
        if script.submit_delay:
            await asyncio.sleep(script.submit_delay)
        prefix = "sync-" if sync else ""
        job = Job(f"{prefix}{uuid.uuid4()}", (seen.body or {}).get("input"), script, sync)
        job.batches = [list(b) for b in script.batches] if script.batches is not None else []
        if script.batches is None and self._streamed(job):
            chunks = self._default_output(job)
            job.batches = [chunks[i : i + 2] for i in range(0, len(chunks), 2)]
        self.jobs[job.id] = job
        return job, web.json_response({"id": job.id, "status": "IN_QUEUE"})

    async def _runsync(self, request: web.Request) -> web.Response:
        job, response = await self._submit(request, sync=True)
        if job is None:
            return response
        script = job.script
        if script.hang or script.queued_polls or script.running_polls or self._cold():
            return response
        return web.json_response(self._final(job))

    def _cold(self) -> bool:
        """No worker is up yet: every job waits in the queue."""
        return self.ready_at is not None and asyncio.get_running_loop().time() < self.ready_at

    async def _run(self, request: web.Request) -> web.Response:
        _job, response = await self._submit(request, sync=False)
        return response

    def _job(self, request: web.Request) -> Job | None:
        return self.jobs.get(request.match_info["job_id"])

    def _phase(self, job: Job) -> str:
        """Advance the job by one poll and say where it now stands."""
        if job.cancelled:
            return "CANCELLED"
        if self._cold():
            return "IN_QUEUE"
        job.polls += 1
        script = job.script
        if script.hang or job.polls <= script.queued_polls:
            return "IN_QUEUE"
        if job.polls <= script.queued_polls + script.running_polls:
            return "IN_PROGRESS"
        return script.status

    async def _polled_job(self, request: web.Request) -> Job | web.Response:
        """A /status or /stream poll's job, or the reply when it is refused or unknown."""
        _seen, denied = await self._record(request)
        if denied is not None:
            return denied
        if self.poll_failures:
            return web.json_response({"error": "upstream"}, status=self.poll_failures.pop(0))
        job = self._job(request)
        if job is None:
            return web.json_response({"error": "job not found"}, status=404)
        return job

    async def _status(self, request: web.Request) -> web.Response:
        job = await self._polled_job(request)
        if isinstance(job, web.Response):
            return job
        phase = self._phase(job)
        if phase in ("IN_QUEUE", "IN_PROGRESS"):
            return web.json_response({"id": job.id, "status": phase, "delayTime": 10})
        if phase == "CANCELLED":
            return web.json_response({"id": job.id, "status": "CANCELLED"})
        return web.json_response(self._final(job))

    async def _stream(self, request: web.Request) -> web.Response:
        job = await self._polled_job(request)
        if isinstance(job, web.Response):
            return job
        script = job.script
        if job.cancelled:
            return web.json_response({"id": job.id, "status": "CANCELLED", "stream": []})
        if self._cold():
            return web.json_response({"id": job.id, "status": "IN_QUEUE", "stream": []})
        job.polls += 1
        if script.hang or job.polls <= script.queued_polls:
            return web.json_response({"id": job.id, "status": "IN_QUEUE", "stream": []})
        batch = job.batches.pop(0) if job.batches else []
        running = job.polls <= script.queued_polls + script.running_polls
        if len(job.batches) > script.late_batches or running:
            status = "IN_PROGRESS"
        else:
            status = script.status
        body: dict[str, Any] = {
            "id": job.id,
            "status": status,
            "stream": [{"output": item} for item in batch],
        }
        if status in ("FAILED", "TIMED_OUT") and script.stream_error_field:
            body["error"] = script.error or "job failed"
        return web.json_response(body)

    async def _cancel(self, request: web.Request) -> web.Response:
        _seen, denied = await self._record(request)
        if denied is not None:
            return denied
        job = self._job(request)
        if job is None:
            return web.json_response({"error": "job not found"}, status=404)
        job.cancelled = True
        self.cancels.append(job.id)
        return web.json_response({"id": job.id, "status": "CANCELLED"})

    async def _health(self, request: web.Request) -> web.Response:
        _seen, denied = await self._record(request)
        return denied or web.json_response(self.health_body)

    async def _models(self, request: web.Request) -> web.Response:
        _seen, denied = await self._record(request)
        if denied is not None:
            return denied
        if self.models_body is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(self.models_body)

    # -- outputs -------------------------------------------------------------------------

    @staticmethod
    def _streamed(job: Job) -> bool:
        return isinstance(job.input, dict) and bool(job.input.get("stream"))

    def _default_output(self, job: Job) -> Any:
        if isinstance(job.input, dict) and job.input.get("ccrelay_warmup") is True:
            return {"warm": True, "model": "qwen3-coder:30b", "context_window": self.context_window}
        model = job.input.get("model", "fake") if isinstance(job.input, dict) else "fake"
        if self._streamed(job):
            return openai_text_chunks(["Hello", " from", " RunPod"], model=model)
        return openai_completion("Hello from RunPod", model=model)

    def _final(self, job: Job) -> dict[str, Any]:
        script = job.script
        body: dict[str, Any] = {
            "id": job.id,
            "status": script.status,
            "delayTime": 12,
            "executionTime": 34,
        }
        if script.status == "COMPLETED":
            output = script.output if script.output is not None else self._default_output(job)
            body["output"] = output
        elif script.error is not None:
            body["error"] = script.error
        return body
