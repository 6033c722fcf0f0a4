"""A loopback aiohttp server speaking RunPod's serverless (queue-based endpoint) API.

Routes, under ``/v2/{endpoint_id}`` (``.endpoint_url``), each checking ``Authorization:
Bearer <api_key>`` (401 otherwise):

- ``POST /runsync[?wait=ms]`` and ``POST /run``: create a job with ``{"input": ...}``;
- ``GET|POST /status/{id}``, ``GET|POST /stream/{id}`` (``{"status", "stream": [{"output"}]}``);
- ``POST /cancel/{id}``: recorded in ``.cancels``; the job ends CANCELLED;
- ``GET /health``: ``.health_body``; ``GET /openai/v1/models``: ``.models_body`` (404 if None);
- ``POST /openai/v1/<route>``: the endpoint's OpenAI route (RunPod's docs for
  ``/chat/completions``; worker-vllm commit 4c4e039 and its README for ``/messages``, which RunPod
  relays too): the request is held while no worker is up (``cold_start_s``), then the worker gets
  ``{"openai_route": "/v1/<route>", "openai_input": <body>}``. Streamed, every SSE string it
  yields is written to the HTTP stream as it comes; not streamed, its one output is the JSON
  body. A worker error (``{"error": ...}``) ends a stream as it is, and a plain request with a 500
  carrying the job's error: what RunPod sends then is not documented (worker-vllm yields errors
  in-band instead, which is what the ccrelay worker does for streams).

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

``worker`` (an async generator function of the job input, e.g. the real
``RunPodHandler.handle`` wrapped, or `paced_worker`) makes jobs *live*: a ``/run`` job runs it in
the background once a worker is up, ``/stream`` hands out what it yielded since the last poll,
``/status`` the aggregate list once it is done, as RunPod's queue does for a generator handler.
The OpenAI route always runs a worker (`paced_worker()` when none is set).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.harness import LoopbackServer, Recorded, record
from tests.fakes.providers import (
    anthropic_message,
    anthropic_text_events,
    openai_completion,
    openai_text_chunks,
)


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
    live: asyncio.Task[None] | None = None  # running the worker
    produced: list[Any] = field(default_factory=list)
    delivered: int = 0


Worker = Callable[[Any], AsyncIterator[Any]]


def anthropic_sse(event: dict[str, Any]) -> str:
    """One Anthropic event as the ccrelay worker yields it on a streamed Messages job."""
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"


def messages_outputs(
    job_input: Any, pieces: list[str], *, verdict: str | None = "miss"
) -> list[Any]:
    """What the ccrelay worker yields for a Messages job (ccrelay_handler.runpod_handler): one
    message, or (streamed) its events as SSE text; the cache verdict on the message, or on
    ``message_start``'s."""
    body = job_input.get("openai_input") if isinstance(job_input, dict) else None
    body = body if isinstance(body, dict) else {}
    model = str(body.get("model") or "qwen3-coder:30b")
    if not body.get("stream"):
        message = anthropic_message("".join(pieces), model=model)
        return [{**message, "x_ccrelay_cache": verdict} if verdict else message]
    events, _ = anthropic_text_events(pieces, model=model)
    if verdict:
        start = events[0]
        events[0] = {**start, "message": {**start["message"], "x_ccrelay_cache": verdict}}
    return [anthropic_sse(event) for event in events]


def is_messages(job_input: Any) -> bool:
    return isinstance(job_input, dict) and job_input.get("openai_route") == "/v1/messages"


def paced_worker(
    pieces: list[str] | None = None, *, interval_s: float = 0.0, log: list[float] | None = None
) -> Worker:
    """A worker that yields what the ccrelay handler yields: chunk dicts for a native job, SSE
    strings on the OpenAI route (Anthropic events for ``/v1/messages``); one content piece every
    `interval_s`, each production time (``time.perf_counter``) appended to `log`."""
    texts = pieces if pieces is not None else ["Hello", " from", " RunPod"]

    async def work(job_input: Any) -> AsyncIterator[Any]:
        if is_messages(job_input):
            for output in messages_outputs(job_input, texts):
                content = isinstance(output, str) and "text_delta" in output
                if content and interval_s:
                    await asyncio.sleep(interval_s)
                if content and log is not None:
                    log.append(time.perf_counter())
                yield output
            return
        openai_route = isinstance(job_input, dict) and "openai_route" in job_input
        body = job_input.get("openai_input", {}) if openai_route else job_input
        model = body.get("model", "fake") if isinstance(body, dict) else "fake"
        chunks = openai_text_chunks(texts, model=model)
        for n, chunk in enumerate(chunks):
            content = n >= 1 and n <= len(texts)
            if content and interval_s:
                await asyncio.sleep(interval_s)
            if content and log is not None:
                log.append(time.perf_counter())
            yield f"data: {json.dumps(chunk)}\n\n" if openai_route else chunk
        if openai_route:
            yield "data: [DONE]\n\n"

    return work


class FakeRunPod(LoopbackServer):
    endpoint_id = "fakeendpoint01"

    def __init__(
        self,
        api_key: str = "rp-test-key-0123456789",
        *,
        cold_start_s: float = 0.0,
        worker: Worker | None = None,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.cold_start_s = cold_start_s
        self.worker = worker
        self.openai_requests: list[Any] = []  # bodies sent to the OpenAI route
        self.ready_at: float | None = None  # the loop time the cold worker is up
        self.context_window: int | None = 32768
        self.requests: list[Recorded] = []
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
        app.router.add_post(f"{base}/openai/v1/{{route:.+}}", self._openai_route)

    async def close(self) -> None:
        for job in self.jobs.values():
            if job.live is not None:
                job.live.cancel()
        await super().close()

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

    def submissions(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(("/run", "/runsync"))]

    def polls(self, kind: str) -> list[Recorded]:
        return [r for r in self.requests if f"/{kind}/" in r.path]

    # -- routes --------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> tuple[Recorded, web.Response | None]:
        seen = await record(request)
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
        if self.worker is not None and not sync:
            job.live = asyncio.create_task(self._run_live(job, self.worker))
        return job, web.json_response({"id": job.id, "status": "IN_QUEUE"})

    async def _worker_up(self) -> None:
        """Wait out the cold start (the worker is up at `ready_at`)."""
        if self._cold() and self.ready_at is not None:
            await asyncio.sleep(self.ready_at - asyncio.get_running_loop().time())

    async def _run_live(self, job: Job, worker: Worker) -> None:
        await self._worker_up()
        async for item in worker(job.input):
            if job.cancelled:
                return
            job.produced.append(item)

    def _live_reply(self, job: Job, *, stream: bool) -> dict[str, Any]:
        assert job.live is not None
        if job.cancelled:
            return {"id": job.id, "status": "CANCELLED"}
        if not job.live.done():
            status = "IN_QUEUE" if self._cold() else "IN_PROGRESS"
        else:
            status = "COMPLETED"
        body: dict[str, Any] = {"id": job.id, "status": status}
        if stream:
            body["stream"] = [{"output": item} for item in job.produced[job.delivered :]]
            job.delivered = len(job.produced)
        elif status == "COMPLETED":
            body["output"] = list(job.produced)
        return body

    async def _openai_route(self, request: web.Request) -> web.StreamResponse:
        seen, denied = await self._record(request)
        if denied is not None:
            return denied
        if self.failures:
            status, body, headers = self.failures.pop(0)
            return web.json_response(body, status=status, headers=headers)
        self.openai_requests.append(seen.body)
        if self.cold_start_s and self.ready_at is None:
            self.ready_at = asyncio.get_running_loop().time() + self.cold_start_s
        await self._worker_up()  # RunPod holds the request while the job waits for a worker
        route = "/v1/" + request.match_info["route"]
        job_input = {"openai_route": route, "openai_input": seen.body}
        outputs = (self.worker or paced_worker())(job_input)
        if not (isinstance(seen.body, dict) and seen.body.get("stream")):
            items = [item async for item in outputs]
            if items and isinstance(items[0], dict) and "error" in items[0]:
                return web.json_response({"error": str(items[0]["error"])}, status=500)
            return web.json_response(items[0] if items else {})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        async for item in outputs:
            if isinstance(item, dict) and "error" in item:
                break  # the job failed: the stream just ends
            await response.write(
                item.encode() if isinstance(item, str) else json.dumps(item).encode()
            )
        await response.write_eof()
        return response

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
        if job.live is not None:
            return web.json_response(self._live_reply(job, stream=False))
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
        if job.live is not None:
            return web.json_response(self._live_reply(job, stream=True))
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
        body = job.input.get("openai_input", job.input) if isinstance(job.input, dict) else None
        return isinstance(body, dict) and bool(body.get("stream"))

    def _default_output(self, job: Job) -> Any:
        if is_messages(job.input):
            return messages_outputs(job.input, ["Hello", " from", " RunPod"])
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
