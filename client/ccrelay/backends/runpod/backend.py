"""A self-hosted Qwen3-Coder on a RunPod serverless endpoint (queue-based, scale to zero).

The endpoint's worker (`handler/`) takes an OpenAI chat-completions request as the job
``input`` and answers with an OpenAI completion (or, for ``stream: true``, one chunk per
yielded output). This backend speaks RunPod's serverless API at ``endpoint_url``
(default ``https://api.runpod.ai/v2/{endpoint_id}``, ``Authorization: Bearer <api_key>``):

Non-streamed (`complete`)
    ``POST /runsync?wait=<runsync_wait_ms>`` with ``{"input": <chat request>}``. A reply that
    is still ``IN_QUEUE``/``IN_PROGRESS`` (a cold start from zero workers, or a long answer)
    is followed with ``/status/{id}`` polls, backing off from ``poll_initial_s`` to
    ``poll_max_s``. ``COMPLETED`` output is accepted bare (the completion) or in the
    aggregate-stream list shape (``[completion]``, or a list of chunks).

Streamed (`open_stream`), ``stream_mode``:
    ``"openai"`` (default): ``POST /openai/v1/chat/completions`` with ``stream: true``, the
    endpoint's OpenAI route: RunPod hands the worker ``{"openai_route", "openai_input"}`` and
    relays the SSE text the worker yields as a real event stream, token by token, with no
    polling (`ccrelay.backends.openai_chat.openai_stream_items` reads it). The request is held open
    while the job waits for a worker, so its first-byte deadline is ``cold_start_timeout_s``
    plus ``timeouts.first_byte_s``. A stream closed early closes the connection; whether
    RunPod then cancels the job is not documented (the worker's output is simply dropped).
    ``python -m bench runpod_stream`` measures it against polling.
    ``"poll"``: ``POST /run`` with ``stream: true``, then ``/stream/{id}`` polls
    (every ``stream_poll_s`` while the job runs, backing off while it is queued); each
    batch's outputs are OpenAI chunks, fed through `OpenAIStreamTranslator` and passed on
    as they arrive. ``"runsync"``: the job runs non-streamed (as above) and the completion
    is replayed as Anthropic events: for short answers, and for the runpod SDK's local
    test server (``--rp_serve_api``), whose ``/run`` only stores a job.
    The SDK's local server answers ``/status`` and ``/stream`` to POST only; RunPod's API
    to both (its own SDK uses GET): ``poll_method`` picks.

Time limits. A job may sit ``IN_QUEUE`` for ``cold_start_timeout_s`` (a worker booting from
zero loads Ollama and the model); once ``IN_PROGRESS`` it may run ``timeouts.total_s``, and a
streamed job must produce its first output within ``timeouts.first_byte_s`` and then one at
least every ``timeouts.idle_s``. Past a limit the job is cancelled (``POST /cancel/{id}``)
and a `TotalTimeout` (`StreamStalled` for the gap) is raised. A caller that gives up
(``CancelledError``, or a stream closed early) also cancels the job: shielded, bounded by
``cancel_timeout_s``, best effort; then the cancellation propagates. During the ``/runsync``
wait itself there is no job id yet, so a caller giving up then cannot cancel the job;
``runsync_wait_ms`` (default 30 s) bounds that window.

Retries (the base class) never resubmit a job that may exist: a submission is retried only
when RunPod answered 429/5xx or the connection failed; a timeout while submitting, and every
error once a job id is known, is final (``retryable = False``). A poll that fails with a
retryable error is simply polled again, within the limits above, never resubmitted.

Errors. ``FAILED``/``CANCELLED``/``TIMED_OUT`` raise `JobFailed` with the worker's error
text (scrubbed of the key; the SDK's traceback JSON is reduced to its message). A worker
error that carries a structured code (an ``{"error": ..., "code": ...}`` output, or an error
string holding such JSON) maps by that code: ``model_not_allowed`` -> `UnknownModelError`,
``invalid_input`` / ``invalid_request_error`` -> `UpstreamInvalidRequest`; never by text.

The job protocol itself (job statuses, the `Job` state machine with its limits and backoff,
the readers of RunPod's reply and output shapes, the error mapping) is `ccrelay.backends.runpod.jobs`;
this module is the Anthropic-facing strategy: settings, the HTTP calls, translation.

Cache. ``cache`` (``{"mode": "default" | "no-cache" | "no-store", "ttl": s}``) is passed to
the worker in the job input. A completion, or a streamed job's first chunk, carrying
``x_ccrelay_cache`` reports the verdict (a stream yields it as a `CacheVerdict` marker
before its first event).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ccrelay.backends.base import Backend
from ccrelay.backends.openai_chat import openai_stream_items, reported_window
from ccrelay.backends.runpod.jobs import (
    COMPLETED,
    FAILED_STATES,
    RUNNING,
    TERMINAL_STATES,
    Job,
    JobLimits,
    active_workers,
    after_submission,
    cache_verdict,
    health_summary,
    is_completion,
    is_error_output,
    job_error,
    opt_str,
    output_chunks,
    output_items,
    stream_outputs,
)
from ccrelay.backends.types import CacheVerdict, HealthReport, ModelInfo, RequestOptions, StreamItem
from ccrelay.errors import (
    BackendError,
    BackendTimeout,
    CcrelayError,
    ConnectionLost,
    ConnectTimeout,
    JobFailed,
    ProtocolError,
    SubmitUncertain,
    UnknownModelError,
    UpstreamAuthError,
    UpstreamStatusError,
)
from ccrelay.http.client import UpstreamClient
from ccrelay.latency.observer import elapsed_ms
from ccrelay_config.models import BackendSettings, check_http_url
from ccrelay_translate import (
    OpenAIStreamTranslator,
    anthropic_events_to_response,
    anthropic_to_openai_request,
    openai_to_anthropic_response,
    response_to_anthropic_events,
)
from ccrelay_translate.capabilities import OLLAMA_IMAGES, Accepts
from ccrelay_translate.documents import DocumentTexts
from ccrelay_translate.request import thinking_display
from ccrelay_wire import CACHE_VERDICT_FIELD
from ccrelay_wire.defaults import DEFAULT_CONTEXT_WINDOW, DEFAULT_MODEL

log = logging.getLogger("ccrelay.backends.runpod")

RUNPOD_API = "https://api.runpod.ai/v2"


class RunPodCacheControl(BaseModel):
    """Per-request cache control the worker reads from the job input."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["default", "no-cache", "no-store"] = "default"
    ttl: int | None = Field(None, gt=0, description="seconds the answer stays cached")


class RunPodSettings(BackendSettings):
    endpoint_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]+$", description="the serverless endpoint's id"
    )
    endpoint_url: str | None = Field(
        None,
        description="overrides https://api.runpod.ai/v2/{endpoint_id}, e.g. a local test "
        "server (base_url is accepted as the same)",
    )
    model: str | None = Field(DEFAULT_MODEL, description="the model the worker serves")
    cold_start_timeout_s: float = Field(
        600.0, gt=0, description="how long a job may wait IN_QUEUE for a worker"
    )
    poll_initial_s: float = Field(0.25, gt=0, description="first /status poll interval")
    poll_max_s: float = Field(3.0, gt=0, description="longest /status poll interval")
    stream_poll_s: float = Field(
        0.1, gt=0, description="/stream poll interval while a streamed job runs"
    )
    runsync_wait_ms: int = Field(
        30_000, ge=1_000, le=300_000, description="RunPod's ?wait= for /runsync"
    )
    stream_mode: Literal["openai", "poll", "runsync"] = "openai"
    poll_method: Literal["GET", "POST"] = "GET"
    cancel_timeout_s: float = Field(5.0, gt=0)
    cache: RunPodCacheControl | None = None
    accepts: Accepts = Field(
        default_factory=lambda: Accepts(image_types=sorted(OLLAMA_IMAGES), image_urls=False),
        description="what the worker's Ollama takes: jpeg/png/webp data URIs, no image URLs",
    )

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint_url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)

    @model_validator(mode="after")
    def _where(self) -> RunPodSettings:
        if self.endpoint_url and self.base_url and self.endpoint_url != self.base_url:
            raise ValueError("set endpoint_url or base_url for a runpod backend, not both")
        if not (self.endpoint_url or self.base_url or self.endpoint_id):
            raise ValueError(
                "a runpod backend needs endpoint_id (its URL is then "
                "https://api.runpod.ai/v2/{endpoint_id}) or endpoint_url"
            )
        if self.poll_max_s < self.poll_initial_s:
            raise ValueError("poll_max_s must be at least poll_initial_s")
        if urlsplit(self.url).hostname == "api.runpod.ai" and self.api_key is None:
            raise ValueError(
                "api.runpod.ai needs an api_key: set api_key to ${RUNPOD_API_KEY} (a RunPod API key)"
            )
        return self

    @property
    def url(self) -> str:
        """The endpoint's base URL, without a trailing slash."""
        return self.endpoint_url or self.base_url or f"{RUNPOD_API}/{self.endpoint_id}"


class RunPodBackend(Backend[RunPodSettings]):
    """A RunPod serverless endpoint whose worker speaks OpenAI chat completions."""

    type_name = "runpod"
    scales_to_zero = True
    Settings: ClassVar[type[BackendSettings]] = RunPodSettings
    default_context_window = DEFAULT_CONTEXT_WINDOW
    """The worker image's OLLAMA_CONTEXT_LENGTH; the worker reports its own once it runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = self.settings
        self.upstream = self.upstream_client(settings.url)
        # /runsync holds the request open for up to `wait` before it answers.
        wait_s = settings.runsync_wait_ms / 1000
        sync_timeouts = settings.timeouts.model_copy(
            update={"first_byte_s": wait_s + settings.timeouts.first_byte_s}
        )
        self._runsync = self.upstream_client(settings.url, timeouts=sync_timeouts)
        # The OpenAI route holds the request while the job waits for a (cold) worker.
        route_timeouts = settings.timeouts.model_copy(
            update={
                "first_byte_s": settings.cold_start_timeout_s + settings.timeouts.first_byte_s,
                "total_s": settings.cold_start_timeout_s + settings.timeouts.total_s,
            }
        )
        self._openai_route = self.upstream_client(
            settings.url + "/openai/v1", timeouts=route_timeouts
        )
        self._runsync_timeout_s = min(wait_s + settings.timeouts.first_byte_s, 3600.0)
        self._poll_timeout_s = min(settings.timeouts.first_byte_s, 30.0)
        self._cancels: set[asyncio.Task[None]] = set()
        self.documents = DocumentTexts(
            max_pages=settings.accepts.pdf_max_pages, max_chars=settings.accepts.pdf_max_chars
        )
        self._limits = JobLimits(
            cold_start_timeout_s=settings.cold_start_timeout_s,
            poll_initial_s=settings.poll_initial_s,
            poll_max_s=settings.poll_max_s,
            timeouts=settings.timeouts,
        )

    def job_input(self, request: dict[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
        """The OpenAI chat request the worker receives as the job input."""
        settings = self.settings
        body = anthropic_to_openai_request(
            request,
            model=model,
            max_tokens_limit=settings.max_tokens_limit,
            stream=stream,
            include_usage=True,
            caps=settings.accepts.capabilities(model),
            documents=self.documents,
        )
        if settings.cache is not None:
            body["cache"] = settings.cache.model_dump(exclude_none=True)
        return body

    # -- attempts ---------------------------------------------------------------------------

    async def _complete_once(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> tuple[dict[str, Any], str | None]:
        await self.documents.prepare(request)
        output = await self._run_to_completion(request, model)
        return self._response_from_output(output, model, thinking_display(request))

    async def _stream_once(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> AsyncIterator[StreamItem]:
        await self.documents.prepare(request)
        display = thinking_display(request)
        if self.settings.stream_mode == "openai":
            async with aclosing(self._stream_openai_route(request, model, options)) as items:
                async for item in items:
                    yield item
            return
        if self.settings.stream_mode == "runsync":
            output = await self._run_to_completion(request, model)
            response, cache = self._response_from_output(output, model, display)
            if cache is not None:
                yield CacheVerdict(cache)
            for event in response_to_anthropic_events(response):
                yield event
            return
        body = {"input": self.job_input(request, model, stream=True)}
        job = Job(self.name, self._limits, await self._submit(self.upstream, "/run", body, model))
        translator = OpenAIStreamTranslator(
            model,
            input_tokens_estimate=self.prompt_tokens(request, options),
            backend=self.name,
            thinking_display=display,
        )
        verdict: CacheVerdict | None = None
        completed = False
        try:
            while True:
                if not job.terminal:
                    job.check_limits(streaming=True)
                reply = await self._poll(job, "stream")
                batch: list[Any] = []
                if reply is not None:
                    batch = stream_outputs(self.name, job.id, reply)
                    for output in batch:
                        job.last_output = time.monotonic()
                        for chunk in output_chunks(self.name, output):
                            if is_error_output(chunk):
                                raise self._job_error(job, chunk)
                            if verdict is None:
                                # the worker's first chunk carries the verdict
                                verdict = CacheVerdict.parse(chunk.get(CACHE_VERDICT_FIELD))
                                if verdict is not None:
                                    yield verdict
                            for event in translator.feed(chunk):
                                yield event
                    # As the SDK reads /stream: done when the status is final AND the batch
                    # is empty; chunks may still come with or after COMPLETED. Once COMPLETED
                    # was seen, any final empty reply ends it: the SDK's local server forgets
                    # a job after its last batch ("FAILED", "Job ID not found").
                    completed = completed or job.status == COMPLETED
                    if completed and job.status in TERMINAL_STATES and not batch:
                        break
                    if job.status in FAILED_STATES and not completed:
                        raise await self._failure(job, reply)
                # Quick polls while the job runs (or drains); back off while queued or failing.
                running = reply is not None and (job.status == RUNNING or bool(batch))
                interval = self.settings.stream_poll_s if running else None
                await self._wait(job, job.next_delay(interval))
        except BackendError as exc:
            raise after_submission(self.name, job.id, exc)  # noqa: B904 (cause kept inside)
        finally:
            if not job.terminal:
                await self._cancel_shielded(job.id)
        if not translator.finished_cleanly:
            raise ProtocolError(
                self.name, f"job {job.id} completed without a finish_reason (truncated)"
            )
        for event in translator.finish():
            yield event

    async def _stream_openai_route(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> AsyncGenerator[StreamItem, None]:
        """The endpoint's OpenAI route, read as any OpenAI stream is."""
        body = self.job_input(request, model, stream=True)
        translator = OpenAIStreamTranslator(
            model,
            input_tokens_estimate=self.prompt_tokens(request, options),
            backend=self.name,
            thinking_display=thinking_display(request),
        )
        route = self._openai_route
        started = False
        try:
            async with (
                route.stream("/chat/completions", body, model=model) as response,
                aclosing(openai_stream_items(response, translator, route, model)) as items,
            ):
                async for item in items:
                    started = True
                    yield item
        except (BackendTimeout, ConnectionLost) as exc:
            if started or isinstance(exc, ConnectTimeout):
                raise
            # RunPod may have queued the job: sending it again could run the inference twice
            raise SubmitUncertain(
                self.name,
                f"{exc.message.removeprefix(self.name + ': ')}; RunPod may have queued the job, "
                "so it is not submitted again",
            ) from None
        if not translator.finished_cleanly:
            raise ProtocolError(self.name, "the OpenAI route's stream ended before a finish_reason")
        for event in translator.finish():
            yield event

    async def _run_to_completion(self, request: dict[str, Any], model: str) -> Any:
        """Submit with /runsync and follow the job until it ends; its COMPLETED output."""
        return await self._run_job(self.job_input(request, model, stream=False), model)

    async def warm_up(self) -> float | None:
        """Run a warm-up job (no inference) now; the seconds until a worker answered it.

        Started when a session starts (`ccrelay code`, `ccrelay serve --warm`), so a
        scaled-to-zero endpoint cold-starts while the user types. The answer carries the
        worker's context window, kept for the prompt-size check.
        """
        started = time.monotonic()
        output = await self._run_job({"ccrelay_warmup": True}, self.settings.model or "")
        for item in output_items(self.name, output):
            window = item.get("context_window") if isinstance(item, dict) else None
            if isinstance(window, int) and not isinstance(window, bool) and window > 0:
                self.reported_context_window = window
        return time.monotonic() - started

    async def _run_job(self, job_input: dict[str, Any], model: str) -> Any:
        """Submit with /runsync and follow the job until it ends; its COMPLETED output."""
        body = {"input": job_input}
        path = f"/runsync?wait={self.settings.runsync_wait_ms}"
        reply = await self._submit(self._runsync, path, body, model)
        job = Job(self.name, self._limits, reply)
        try:
            while not job.terminal:
                job.check_limits()
                await self._wait(job, job.next_delay())
                polled = await self._poll(job, "status")
                if polled is not None:
                    reply = polled
        except BackendError as exc:
            raise after_submission(self.name, job.id, exc)  # noqa: B904 (cause kept inside)
        finally:
            if not job.terminal:
                await self._cancel_shielded(job.id)
        if job.status != COMPLETED:
            raise await self._failure(job, reply)
        return reply.get("output")

    # -- the wire ---------------------------------------------------------------------------

    async def _submit(
        self, client: UpstreamClient, path: str, body: dict[str, Any], model: str
    ) -> dict[str, Any]:
        """POST a job. Retryable only when no job can exist (429/5xx, connection failed)."""
        timeout_s = self._runsync_timeout_s if client is self._runsync else self._poll_timeout_s
        try:
            reply = await client.request_json("POST", path, body, model=model, timeout_s=timeout_s)
        except (BackendTimeout, ConnectionLost) as exc:
            if isinstance(exc, ConnectTimeout):
                raise  # never connected: no job can exist
            # The request may have reached RunPod and queued a job: resubmitting could run
            # the inference twice.
            raise SubmitUncertain(
                self.name,
                f"{exc.message.removeprefix(self.name + ': ')}; RunPod may have queued the job, "
                "so it is not submitted again",
            ) from None
        except UnknownModelError as exc:
            if exc.upstream_status == 404:
                raise UpstreamStatusError(
                    self.name,
                    f"RunPod answered HTTP 404 for {self.settings.url}{path.split('?')[0]}: "
                    "check the backend's endpoint_id / endpoint_url",
                    upstream_status=404,
                ) from None
            raise
        if not isinstance(reply, dict):
            raise ProtocolError(self.name, "RunPod answered a submission with non-object")
        return reply

    async def _poll(self, job: Job, kind: Literal["status", "stream"]) -> dict[str, Any] | None:
        """One /status or /stream poll; None when it failed in a way worth polling again."""
        try:
            reply = await self.upstream.request_json(
                self.settings.poll_method, f"/{kind}/{job.id}", timeout_s=self._poll_timeout_s
            )
        except BackendError as exc:
            if exc.retryable:
                log.info("runpod job %s: /%s poll failed (%s); polling again", job.id, kind, exc)
                return None
            if isinstance(exc, UpstreamAuthError):
                raise
            if isinstance(exc, UpstreamStatusError):
                raise JobFailed(
                    self.name, f"job {job.id}: /{kind} answered HTTP {exc.upstream_status}"
                ) from None
            raise
        return job.update(reply)

    async def _wait(self, job: Job, seconds: float) -> None:
        """Pace the polls (real time: the deadlines are real time too), never past a limit."""
        await asyncio.sleep(job.pace(seconds))

    async def _cancel(self, job_id: str) -> None:
        try:
            await self.upstream.request_json(
                "POST", f"/cancel/{job_id}", timeout_s=self.settings.cancel_timeout_s
            )
        except BackendError as exc:
            log.warning("runpod job %s: cancel failed: %s", job_id, exc.message)
        else:
            log.info("runpod job %s: cancelled", job_id)

    async def _cancel_shielded(self, job_id: str) -> None:
        """Cancel the job even while our own task is being cancelled; best effort."""
        task = asyncio.ensure_future(self._cancel(job_id))
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)
        # Cancelled again while waiting: the shielded request still goes out (it is held in
        # `_cancels`, and `aclose` waits for it).
        await asyncio.shield(task)

    async def aclose(self) -> None:
        if self._cancels:
            await asyncio.wait(set(self._cancels), timeout=self.settings.cancel_timeout_s)

    # -- outputs and errors -----------------------------------------------------------------

    def _response_from_output(
        self, output: Any, model: str, display: str
    ) -> tuple[dict[str, Any], str | None]:
        items = output_items(self.name, output)
        for item in items:
            if is_error_output(item):
                raise self._job_error(None, item)
        if len(items) == 1 and is_completion(items[0]):
            completion = items[0]
            response = openai_to_anthropic_response(
                completion, model=model, backend=self.name, thinking_display=display
            )
            return response, cache_verdict(completion)
        if items and all(isinstance(item, dict) and "choices" in item for item in items):
            translator = OpenAIStreamTranslator(model, backend=self.name, thinking_display=display)
            events = [event for item in items for event in translator.feed(item)]
            events += translator.finish()
            return anthropic_events_to_response(events), cache_verdict(items[0])
        raise ProtocolError(self.name, "the job's output is not a chat completion")

    async def _failure(self, job: Job, reply: dict[str, Any]) -> BackendError:
        error = reply.get("error")
        if error is None and job.status != "CANCELLED":
            # /stream replies may leave the error out; /status has it.
            try:
                status = await self.upstream.request_json(
                    self.settings.poll_method,
                    f"/status/{job.id}",
                    timeout_s=self._poll_timeout_s,
                )
                if isinstance(status, dict):
                    error = status.get("error")
            except BackendError:
                pass
        return self._job_error(job, {"error": error}, status=job.status)

    def _job_error(
        self, job: Job | None, payload: dict[str, Any], *, status: str | None = None
    ) -> BackendError:
        job_id = job.id if job is not None else None
        return job_error(self.name, job_id, payload, scrub=self.upstream.scrub, status=status)

    # -- models and health ------------------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        """The configured model, plus the worker's list when a worker is already up.

        Listing through ``/openai/v1/models`` runs a job, so it is only asked when the
        endpoint has an idle or running worker: listing never wakes a scaled-to-zero endpoint.
        """
        configured = self.settings.model
        models = [ModelInfo(configured, "runpod")] if configured else []
        try:
            health = await self._health_reply()
        except UpstreamAuthError:
            raise
        except CcrelayError as exc:
            log.info("runpod /health failed (%s): listing the configured model only", exc)
            return models
        if active_workers(health) == 0:
            return models
        try:
            reply = await self.upstream.request_json(
                "GET", "/openai/v1/models", timeout_s=self._poll_timeout_s
            )
        except CcrelayError as exc:
            log.info("runpod /openai/v1/models failed (%s): configured model only", exc)
            return models
        data = reply.get("data") if isinstance(reply, dict) else None
        listed = {m.id: m for m in models}
        for item in data if isinstance(data, list) else []:
            if isinstance(item, dict) and item.get("id"):
                info = ModelInfo(
                    str(item["id"]), opt_str(item.get("owned_by")), reported_window(item)
                )
                listed[info.id] = info  # the worker's entry (with its window) wins
        self.note_models(list(listed.values()))
        return list(listed.values())

    async def health(self) -> HealthReport:
        started = time.perf_counter()
        try:
            reply = await self._health_reply()
        except CcrelayError as exc:
            return HealthReport(self.name, False, exc.message, elapsed_ms(started))
        ok, detail = health_summary(reply)
        return HealthReport(self.name, ok, detail, elapsed_ms(started))

    async def _health_reply(self) -> dict[str, Any]:
        reply = await self.upstream.request_json("GET", "/health", timeout_s=self._poll_timeout_s)
        if not isinstance(reply, dict):
            raise ProtocolError(self.name, "GET /health did not return a JSON object")
        return reply
