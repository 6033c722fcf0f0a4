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

``real_workers=True`` puts every job (``/run``, ``/runsync``, the OpenAI route, a GET of
``/openai/v1/models`` as ``{"openai_route": "/v1/models"}``) in a queue that real worker
processes take from through RunPod's worker-facing API, as the runpod SDK's job loop speaks it
(tests/fakes/runpod_workers.py; ``.worker_env(worker_id)`` is a worker's environment). A job is
``IN_QUEUE`` until a worker takes it, ``IN_PROGRESS`` while it posts outputs, then what its
result says; ``/stream`` hands out the outputs posted since the last poll, ``/status`` the
result, ``/runsync`` waits ``?wait=`` ms (90 s by default, RunPod's operation reference) and
answers the status then, ``/cancel`` reaches the worker through its stop channel, ``/health``
counts the workers that keep asking for work. The OpenAI route holds the request until the job
has output: streamed, each output the SDK posts is written to the HTTP stream as it arrives and
the stream ends with the job; not streamed, the job's one output is the body. Inferred, as no
RunPod document says it: the relay writes the worker's strings verbatim (RunPod's vLLM docs
require ``RAW_OPENAI_OUTPUT=1`` for OpenAI clients, and worker-vllm yields raw slices of SSE), a
job that fails before any output is a 500 carrying its error, and a client that leaves does not
cancel the job.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, Self

from aiohttp import web

from tests.fakes.harness import LoopbackServer, Recorded, record
from tests.fakes.providers import openai_completion, openai_text_chunks
from tests.fakes.runpod_outputs import (
    Job,
    Script,
    Worker,
    anthropic_sse,
    is_messages,
    messages_outputs,
    paced_worker,
)
from tests.fakes.runpod_workers import WorkerQueue

__all__ = [
    "FakeRunPod",
    "Job",
    "Script",
    "Worker",
    "anthropic_sse",
    "is_messages",
    "messages_outputs",
    "paced_worker",
]


class FakeRunPod(LoopbackServer):
    endpoint_id = "fakeendpoint01"

    def __init__(
        self,
        api_key: str = "rp-test-key-0123456789",
        *,
        cold_start_s: float = 0.0,
        worker: Worker | None = None,
        real_workers: bool = False,
        worker_key: str = "rp-worker-key-5e1d7c2a",
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
        self.queue: WorkerQueue | None = None
        if real_workers:
            self.queue = WorkerQueue(self.endpoint_id, self.jobs, worker_key=worker_key)
            self.queue.add_routes(app, base)
        app.router.add_post(f"{base}/runsync", self._runsync)
        app.router.add_post(f"{base}/run", self._run)
        for verb in ("GET", "POST"):
            app.router.add_route(verb, f"{base}/status/{{job_id}}", self._status)
            app.router.add_route(verb, f"{base}/stream/{{job_id}}", self._stream)
        app.router.add_post(f"{base}/cancel/{{job_id}}", self._cancel)
        app.router.add_get(f"{base}/health", self._health)
        app.router.add_get(f"{base}/openai/v1/models", self._models)
        app.router.add_post(f"{base}/openai/v1/{{route:.+}}", self._openai_route)

    async def start(self) -> Self:
        await super().start()
        if self.queue is not None:
            self.queue.base_url = self.url
        return self

    def worker_env(self, worker_id: str) -> dict[str, str]:
        """What RunPod sets in a worker's environment so that it takes this endpoint's jobs."""
        assert self.queue is not None, "FakeRunPod(real_workers=True) has workers"
        return self.queue.worker_env(worker_id)

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
        if self.queue is not None:
            await self.queue.enqueue(job)
        elif self.worker is not None and not sync:
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
        route = "/v1/" + request.match_info["route"]
        job_input = {"openai_route": route, "openai_input": seen.body}
        streamed = isinstance(seen.body, dict) and seen.body.get("stream") is True
        if self.queue is not None:
            return await self.queue.relay(request, job_input, streamed=streamed)
        await self._worker_up()  # RunPod holds the request while the job waits for a worker
        outputs = (self.worker or paced_worker())(job_input)
        if not streamed:
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
        if self.queue is not None:
            wait_ms = int(request.query.get("wait", "90000"))  # RunPod's default: 90 s
            await self.queue.settle(job, min(max(wait_ms, 1000), 300_000) / 1000)
            return web.json_response(self.queue.status_body(job))
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
        if self.queue is not None:
            return web.json_response(self.queue.status_body(job))
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
        if self.queue is not None:
            return web.json_response(self.queue.stream_body(job))
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
        if self.queue is not None:
            await self.queue.cancel(job)
        return web.json_response({"id": job.id, "status": "CANCELLED"})

    async def _health(self, request: web.Request) -> web.Response:
        _seen, denied = await self._record(request)
        health = self.queue.health() if self.queue is not None else self.health_body
        return denied or web.json_response(health)

    async def _models(self, request: web.Request) -> web.Response:
        _seen, denied = await self._record(request)
        if denied is not None:
            return denied
        if self.queue is not None:  # a GET reaches the worker with no openai_input (worker-vllm)
            return await self.queue.relay(request, {"openai_route": "/v1/models"}, streamed=False)
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
