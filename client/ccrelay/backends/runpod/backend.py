"""A self-hosted Qwen3-Coder on a RunPod serverless endpoint (scale to zero).

The worker (this repository's image) speaks Anthropic Messages itself, with the same
translation the gateway uses, so this backend sends Claude Code's request through unchanged:
translation happens once, in the worker, next to the engine. How a request reaches it depends
on the endpoint's type (`ccrelay.backends.runpod.settings`):

Queue endpoint (``queue``)
    Plain calls run as a job: ``POST /runsync`` with ``{"openai_route": "/v1/messages",
    "openai_input": <request>}`` (RunPod's OpenAI-route job shape), followed with ``/status``
    polls while a cold worker starts (`ccrelay.backends.runpod.queue`). Streams, by
    ``stream_mode``: ``openai`` (default) posts to the endpoint's OpenAI route,
    ``/openai/v1/messages``, and reads the worker's Anthropic events as RunPod relays them, token
    by token, with no polling; ``poll`` submits with ``/run`` and reads the same events from
    ``/stream`` batches; ``runsync`` runs the job whole and replays its answer as events (the
    runpod SDK's local test server has no OpenAI route and no live ``/stream``).
Load-balanced endpoint (``load_balancer``)
    ``POST https://{id}.api.runpod.ai/v1/messages`` straight to a worker's HTTP server, each
    Claude Code session pinned to the worker that holds its KV cache
    (`ccrelay.backends.runpod.balanced`).

A cold start is warmed while the user types (`warm_up`: a job, or a model list, that runs no
inference). The worker's cache verdict rides on the answer (``x_ccrelay_cache`` on the message,
or its ``message_start``; a header in HTTP mode) and is taken off before the caller sees it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any, ClassVar

import orjson

from ccrelay.backends.base import Backend
from ccrelay.backends.context_policy import with_tool_clearing
from ccrelay.backends.runpod.balanced import BalancedEndpoint
from ccrelay.backends.runpod.jobs import (
    active_workers,
    after_submission,
    health_summary,
    is_error_output,
    is_message,
    opt_str,
    output_items,
)
from ccrelay.backends.runpod.queue import QueueEndpoint
from ccrelay.backends.runpod.settings import RunPodSettings
from ccrelay.backends.types import (
    CacheVerdict,
    HealthReport,
    ModelInfo,
    RequestOptions,
    StreamItem,
)
from ccrelay.coldstart.affinity import WorkerAffinity
from ccrelay.coldstart.endpoint_view import WorkerCounts
from ccrelay.coldstart.policies import ColdStartPolicies
from ccrelay.coldstart.settings import ColdStartSettings
from ccrelay.errors import (
    BackendError,
    BackendTimeout,
    CcrelayError,
    ConnectionLost,
    ConnectTimeout,
    ProtocolError,
    StreamStalled,
    UpstreamAuthError,
)
from ccrelay.http.events import RawEvent, anthropic_events
from ccrelay.latency.observer import elapsed_ms
from ccrelay_config.models import BackendSettings
from ccrelay_translate.events import response_to_anthropic_events
from ccrelay_wire import CACHE_VERDICT_FIELD, CACHE_VERDICT_HEADER
from ccrelay_wire.defaults import DEFAULT_CONTEXT_WINDOW
from ccrelay_wire.sse import SSEDecoder

__all__ = ["RunPodBackend", "RunPodSettings"]

log = logging.getLogger("ccrelay.backends.runpod")

MESSAGES_ROUTE = "/v1/messages"


class RunPodBackend(Backend[RunPodSettings]):
    """A RunPod serverless endpoint whose worker speaks Anthropic Messages."""

    type_name = "runpod"
    scales_to_zero = True
    Settings: ClassVar[type[BackendSettings]] = RunPodSettings
    default_context_window = DEFAULT_CONTEXT_WINDOW
    """The worker image's default window; the worker reports its own once it runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = self.settings
        cold = self.cold_start_settings()
        self.affinity = WorkerAffinity(cold.affinity, idle_timeout_s=cold.idle_timeout_s)
        self.queue: QueueEndpoint | None = None
        self.balanced: BalancedEndpoint | None = None
        if settings.endpoint_type == "load_balancer":
            self.balanced = BalancedEndpoint(self, self.affinity)
        else:
            self.queue = QueueEndpoint(self)

    def cold_start_settings(self) -> ColdStartSettings:
        load_balanced = self.settings.endpoint_type == "load_balancer"
        return self.settings.cold_start.as_gateway_runs(load_balanced=load_balanced)

    def cold_start_policies(
        self, *, gpu_usd_per_s: float, has_fallback: bool
    ) -> ColdStartPolicies | None:
        policies = ColdStartPolicies(
            self.cold_start_settings(), gpu_usd_per_s=gpu_usd_per_s, has_fallback=has_fallback
        )
        # one affinity for the policies and the load balancer's pins
        self.affinity = policies.affinity
        if self.balanced is not None:
            self.balanced.pins = policies.affinity
        return policies

    async def ping(self, session_id: str | None) -> None:
        """Keep the session's worker busy, without inference: a warm-up job, or the worker's
        model list pinned to it."""
        model = self.settings.model or ""
        if self.balanced is not None:
            await self.balanced.request("/v1/models", None, session_id, model)
            return
        assert self.queue is not None
        await self.queue.run_job({"ccrelay_warmup": True}, model)

    async def prefill(self, request: dict[str, Any], session_id: str | None) -> None:
        """The session's latest prompt with ``max_tokens`` 1, answer dropped: the worker's KV
        cache then holds it when the session comes back (`ccrelay.coldstart.hedge`)."""
        model = self.settings.model or ""
        body = self._body({**request, "max_tokens": 1}, model, stream=False)
        if self.balanced is not None:
            await self.balanced.request(MESSAGES_ROUTE, self.balanced.body(body), session_id, model)
            return
        assert self.queue is not None
        await self.queue.run_job({"openai_route": MESSAGES_ROUTE, "openai_input": body}, model)

    async def worker_counts(self) -> WorkerCounts | None:
        if self.balanced is not None:
            return WorkerCounts.from_workers_list({"summary": await self.balanced.worker_counts()})
        assert self.queue is not None
        return WorkerCounts.from_health(await self.queue.health())

    def _body(self, request: dict[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
        """The request as the worker takes it: Claude Code's, with our model and stream flag,
        the tool clearing a small window calls for (`ccrelay.backends.context_policy`; the
        worker applies ``context_management``), and the configured cache control (a field the
        worker reads and takes off)."""
        body = {**with_tool_clearing(request, self), "model": model, "stream": stream}
        if self.settings.cache is not None:
            body["cache"] = self.settings.cache.model_dump(exclude_none=True)
        return body

    # -- attempts ---------------------------------------------------------------------------

    async def _complete_once(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> tuple[dict[str, Any], str | None]:
        body = self._body(request, model, stream=False)
        if self.balanced is not None:
            balanced = self.balanced
            reply = await balanced.request(
                MESSAGES_ROUTE,
                balanced.body(body),
                options.session_id,
                model,
                waited=options.tally.waited_cold,
            )
            message = reply.data
            header = CacheVerdict.parse(reply.headers.get(CACHE_VERDICT_HEADER))
        else:
            assert self.queue is not None
            job_input = {"openai_route": MESSAGES_ROUTE, "openai_input": body}
            output = await self.queue.run_job(job_input, model, waited=options.tally.waited_cold)
            message = self._message(output)
            header = None
        if not is_message(message):
            raise ProtocolError(self.name, "the worker's answer is not a Messages response")
        verdict = CacheVerdict.parse(message.pop(CACHE_VERDICT_FIELD, None)) or header
        return message, verdict.value if verdict is not None else None

    def _message(self, output: Any) -> Any:
        """The message in a COMPLETED job's output (the aggregate list holds one)."""
        items = output_items(self.name, output)
        for item in items:
            if is_error_output(item):
                assert self.queue is not None
                raise self.queue.job_error(None, item)
        return next((item for item in items if is_message(item)), None)

    async def _stream_once(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> AsyncIterator[StreamItem]:
        body = self._body(request, model, stream=True)
        if self.balanced is not None:
            items = self._stream_balanced(body, model, options)
        elif self.settings.stream_mode == "openai":
            items = self._stream_route(body, model)
        elif self.settings.stream_mode == "poll":
            items = self._stream_polled(body, model, options)
        else:
            items = self._replayed(request, model, options)
        async with aclosing(items):
            async for item in items:
                yield item

    async def _stream_balanced(
        self, body: dict[str, Any], model: str, options: RequestOptions
    ) -> AsyncGenerator[StreamItem, None]:
        balanced = self.balanced
        assert balanced is not None
        data = balanced.body(body)
        async with balanced.stream(
            MESSAGES_ROUTE, data, options.session_id, model, waited=options.tally.waited_cold
        ) as reply:
            header = CacheVerdict.parse(reply.headers.get(CACHE_VERDICT_HEADER))
            if header is not None:
                yield header
            upstream = balanced.upstream
            events = anthropic_events(
                reply.events(),
                backend=self.name,
                error_of=lambda error: upstream.payload_error(error, model=model),
            )
            async with aclosing(_verdicts(events)) as items:
                async for item in items:
                    yield item
            await reply.drain()

    async def _stream_route(
        self, body: dict[str, Any], model: str
    ) -> AsyncGenerator[StreamItem, None]:
        """The endpoint's OpenAI route. Once RunPod has taken the request a job may exist, so
        nothing from then on is retried: a timeout or lost connection before any event is
        `SubmitUncertain`, and any other failure becomes final (`after_submission`)."""
        queue = self.queue
        assert queue is not None
        started = False
        try:
            async with queue.route.stream("/messages", body, model=model) as reply:
                events = anthropic_events(
                    reply.events(),
                    backend=self.name,
                    error_of=lambda error: queue.route.payload_error(error, model=model),
                )
                try:
                    async with aclosing(_verdicts(events)) as items:
                        async for item in items:
                            started = True
                            yield item
                except (BackendTimeout, ConnectionLost):
                    raise
                except BackendError as exc:
                    raise after_submission(self.name, None, exc)  # noqa: B904 (cause kept)
                await reply.drain()
        except (BackendTimeout, ConnectionLost) as exc:
            if started or isinstance(exc, ConnectTimeout | StreamStalled):
                raise
            raise queue.uncertain(exc) from None

    async def _stream_polled(
        self, body: dict[str, Any], model: str, options: RequestOptions
    ) -> AsyncGenerator[StreamItem, None]:
        """``/run`` and ``/stream``: each output is the SSE text of some Anthropic events. Once
        the job exists (an output came, or it ended), nothing it did may be resubmitted: a
        stream cut short or garbled is final (`after_submission`); a refused submission is
        still retried."""
        queue = self.queue
        assert queue is not None
        job_input = {"openai_route": MESSAGES_ROUTE, "openai_input": body}
        outputs = queue.stream_job(job_input, model, waited=options.tally.waited_cold)
        texts = _SSEOutputs(outputs, queue)
        events = anthropic_events(
            texts.events(),
            backend=self.name,
            error_of=lambda error: queue.upstream.payload_error(error, model=model),
        )
        try:
            async with aclosing(outputs), aclosing(_verdicts(events)) as items:
                async for item in items:
                    yield item
        except BackendError as exc:
            if not texts.job_exists:
                raise
            raise after_submission(self.name, None, exc)  # noqa: B904 (cause kept inside)

    async def _replayed(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> AsyncGenerator[StreamItem, None]:
        response, cache = await self._complete_once(request, model, options)
        if cache is not None:
            yield CacheVerdict(cache)
        for event in response_to_anthropic_events(response):
            yield event

    # -- warm-up, models, health --------------------------------------------------------------

    async def warm_up(self) -> float | None:
        """Start a worker now without inference; the seconds until one answered.

        Started when a session starts (`ccrelay code`, `ccrelay serve --warm`), so a
        scaled-to-zero endpoint cold-starts while the user types. The answer carries the
        worker's context window, kept for the prompt-size check.
        """
        started = time.monotonic()
        model = self.settings.model or ""
        if self.balanced is not None:
            reply = await self.balanced.request("/v1/models", None, None, model)
            self._note_listing(reply.data)
        else:
            assert self.queue is not None
            output = await self.queue.run_job({"ccrelay_warmup": True}, model)
            for item in output_items(self.name, output):
                window = item.get("context_window") if isinstance(item, dict) else None
                if isinstance(window, int) and not isinstance(window, bool) and window > 0:
                    self.reported_context_window = window
        return time.monotonic() - started

    def _note_listing(self, reply: Any) -> list[ModelInfo]:
        from ccrelay.backends.openai_chat import reported_window

        configured = self.settings.model
        listed = {configured: ModelInfo(configured, "runpod")} if configured else {}
        data = reply.get("data") if isinstance(reply, dict) else None
        for item in data if isinstance(data, list) else []:
            if isinstance(item, dict) and item.get("id"):
                info = ModelInfo(
                    str(item["id"]), opt_str(item.get("owned_by")), reported_window(item)
                )
                listed[info.id] = info  # the worker's entry (with its window) wins
        models = list(listed.values())
        self.note_models(models)
        return models

    async def list_models(self) -> list[ModelInfo]:
        """The configured model, plus the worker's list when a worker is already up.

        Listing on a queue endpoint runs a job, and on a load balancer reaches a worker, so it
        is only asked when a queue endpoint has an idle or running worker: listing never wakes
        a scaled-to-zero endpoint.
        """
        configured = self.settings.model
        models = [ModelInfo(configured, "runpod")] if configured else []
        if self.queue is None:
            return models
        try:
            health = await self.queue.health()
        except UpstreamAuthError:
            raise
        except CcrelayError as exc:
            log.info("runpod /health failed (%s): listing the configured model only", exc)
            return models
        if active_workers(health) == 0:
            return models
        try:
            reply = await self.queue.models()
        except CcrelayError as exc:
            log.info("runpod /openai/v1/models failed (%s): configured model only", exc)
            return models
        return self._note_listing(reply)

    async def health(self) -> HealthReport:
        started = time.perf_counter()
        try:
            if self.queue is not None:
                reply = await self.queue.health()
            else:
                assert self.balanced is not None
                reply = {"workers": await self.balanced.worker_counts()}
        except CcrelayError as exc:
            return HealthReport(self.name, False, exc.message, elapsed_ms(started))
        ok, detail = health_summary(reply)
        return HealthReport(self.name, ok, detail, elapsed_ms(started))

    async def aclose(self) -> None:
        if self.queue is not None:
            await self.queue.aclose()


async def _verdicts(events: AsyncIterator[RawEvent]) -> AsyncGenerator[StreamItem, None]:
    """The events, with the worker's cache verdict taken off ``message_start`` (where the
    worker puts it) and yielded as a `CacheVerdict` before it."""
    async for event in events:
        payload = event.payload
        if event.kind == "message_start" and payload is not None:
            message = payload.get("message")
            if isinstance(message, dict) and CACHE_VERDICT_FIELD in message:
                verdict = CacheVerdict.parse(message.pop(CACHE_VERDICT_FIELD))
                if verdict is not None:
                    yield verdict
                event = RawEvent(event.kind, orjson.dumps(payload).decode(), payload)
        yield event


class _SSEOutputs:
    """Server-sent events from a streamed job's outputs, each the SSE text of some events."""

    def __init__(self, outputs: AsyncIterator[Any], queue: QueueEndpoint) -> None:
        self.outputs = outputs
        self.queue = queue
        self.job_exists = False
        """An output came, or the job ended: it was submitted."""

    async def events(self) -> AsyncIterator[Any]:
        decoder = SSEDecoder()
        async for output in self.outputs:
            self.job_exists = True
            if is_error_output(output):
                raise self.queue.job_error(None, output)
            if not isinstance(output, str):
                raise ProtocolError(self.queue.name, "a streamed output is not event text")
            for event in decoder.feed(output.encode()):
                yield event
        self.job_exists = True
        for event in decoder.flush():
            yield event
