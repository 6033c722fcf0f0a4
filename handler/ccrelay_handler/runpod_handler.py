"""The RunPod serverless handler: an async generator over ``ChatService``.

Started by ``python -m ccrelay_handler`` as::

    runpod.serverless.start({"handler": RunPodHandler(settings).handle,
                             "return_aggregate_stream": True,
                             "concurrency_modifier": ...})

What a job yields (``return_aggregate_stream`` makes ``/run`` + ``/status`` and ``/runsync``
return the list of everything yielded; ``/stream`` returns it piece by piece):

* non-streamed chat request: one item, the ``chat.completion`` dict;
* streamed chat request (native input): each ``chat.completion.chunk`` dict as it arrives,
  the first one carrying the cache verdict as ``x_ccrelay_cache`` (never stored in Redis);
* streamed chat request via RunPod's OpenAI route (``openai_route``): each chunk as an SSE
  string ``"data: {...}\\n\\n"`` and finally ``"data: [DONE]\\n\\n"``: RunPod's OpenAI
  proxy relays these strings as the HTTP event stream (the raw output mode of worker-vllm).
  The first chunk carries the cache verdict as ``x_ccrelay_cache`` too: the ccrelay client
  streams this way by default and its records need it, and OpenAI clients ignore a field they
  do not know (openai-python's models keep extra fields);
* ``/v1/models`` via the OpenAI route: one item, the model list (each with the worker's
  ``context_window`` when ``OLLAMA_CONTEXT_LENGTH`` is set);
* an Anthropic Messages job (``openai_route: /v1/messages``, the gateway's ``runpod`` backend
  and Claude Code straight at the endpoint): not streamed, one item, the Messages response (with
  ``x_ccrelay_cache``); streamed, each Anthropic event as SSE text
  (``"event: <type>\ndata: {...}\n\n"``), each output the events ready by then
  (`ccrelay_handler.sse_batches`: the SDK sends one POST per output), which RunPod's OpenAI
  route relays as the HTTP event stream (and ``/stream`` hands out in batches). An error is an SSE ``error``
  event there, before or after the first event, as Anthropic streams one: RunPod has already
  answered 200. ``/v1/messages/count_tokens``: one item, ``{"input_tokens": N}``;
* a warm-up (``{"ccrelay_warmup": true}``): one item, ``{"warm": true, "model", "context_window"}``,
  without inference;
* any error: ``{"error": "<string>"}`` and the job ends; the string is JSON
  ``{"message": ..., "code": ...}`` so a client maps it by code, never by wording.  The SDK turns a yielded dict with
  an ``error`` key into a FAILED job with that string (the error must be a string: a dict
  error would end COMPLETED with no output).  The SDK's local ``--rp_serve_api`` server does
  not apply that rule: its ``/runsync`` answers COMPLETED with the error dict in ``output``.

A cancelled job reaches ``handle`` as ``CancelledError``: it is not caught here; the service
stops Ollama, stores nothing, releases the single-flight lock, and the error propagates.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from ccrelay_handler._requestlog import RequestLog
from ccrelay_handler.chunks import SSE_DONE, sse_event
from ccrelay_handler.errors import HandlerError, InvalidInput
from ccrelay_handler.messages import MessagesService, anthropic_error, anthropic_sse
from ccrelay_handler.request import ChatJob, MessagesJob, WarmupJob, parse_job_input
from ccrelay_handler.service import ChatService, StreamVerdict
from ccrelay_handler.settings import HandlerSettings
from ccrelay_handler.sse_batches import sse_batches
from ccrelay_wire import CACHE_VERDICT_FIELD, encode_job_error

__all__ = ["RunPodHandler", "start"]

logger = logging.getLogger("ccrelay.handler")


class RunPodHandler:
    """Holds the settings and (created lazily, inside the SDK's event loop) the ChatService."""

    def __init__(self, settings: HandlerSettings, *, service: ChatService | None = None) -> None:
        self.settings = settings
        self._service = service
        self._messages: MessagesService | None = None

    @property
    def service(self) -> ChatService:
        if self._service is None:
            self._service = ChatService(self.settings)
        return self._service

    @property
    def messages(self) -> MessagesService:
        if self._messages is None:
            self._messages = MessagesService(self.service, self.settings)
        return self._messages

    def concurrency_modifier(self, current: int) -> int:
        """Jobs this worker takes at once: Ollama's parallel slots (``OLLAMA_NUM_PARALLEL``)."""
        del current
        return self.settings.concurrency

    def runpod_config(self) -> dict[str, Any]:
        return {
            "handler": self.handle,
            "return_aggregate_stream": True,
            "concurrency_modifier": self.concurrency_modifier,
        }

    async def handle(self, job: dict[str, Any]) -> AsyncGenerator[Any, None]:
        """The SDK's handler: yields outputs as described in the module docstring."""
        label = str(job.get("id")) if job.get("id") is not None else None
        try:
            parsed = parse_job_input(job.get("input"))
        except InvalidInput as exc:
            with RequestLog("job", stream=False, label=label) as log:
                log.outcome = type(exc).__name__
            yield {"error": job_error(exc)}
            return

        try:
            if isinstance(parsed, WarmupJob):
                logger.info("warm-up job %s: the worker is ready", label)
                yield self.service.warmup()
                return
            if isinstance(parsed, MessagesJob):
                async with aclosing(self._messages_job(parsed, label)) as outputs:
                    async for output in outputs:
                        yield output
                return
            if not isinstance(parsed, ChatJob):
                yield await self.service.models(label=label)
                return
            request = parsed.request
            if not request.stream:
                completion, verdict = await self.service.complete_with_verdict(request, label=label)
                yield {**completion, CACHE_VERDICT_FIELD: verdict}
                return
            holder = StreamVerdict()
            first = True
            stream = self.service.stream(request, label=label, verdict=holder)
            async with aclosing(stream) as chunks:
                async for chunk in chunks:
                    if parsed.openai_route:
                        yield sse_event(
                            {**chunk, CACHE_VERDICT_FIELD: holder.value} if first else chunk
                        )
                    elif first:
                        yield {**chunk, CACHE_VERDICT_FIELD: holder.value}
                    else:
                        yield chunk
                    first = False
            if parsed.openai_route:
                yield SSE_DONE
        except HandlerError as exc:
            yield {"error": job_error(exc)}
        except Exception as exc:  # a bug: log it here, never hand the SDK a traceback to echo
            logger.exception("job %s failed unexpectedly", label)
            yield {"error": f"internal error ({type(exc).__name__})"}

    async def _messages_job(self, job: MessagesJob, label: str | None) -> AsyncGenerator[Any, None]:
        """What a Messages job yields (the module docstring); a handler error before a streamed
        job's first event is its first event."""
        if job.count_tokens:
            yield self.messages.count_tokens(job.body)
            return
        if not job.stream:
            yield await self.messages.complete(job.body, label=label)
            return
        try:
            prepared = await self.messages.prepare(job.body, stream=True)
            texts = _sse_texts(self.messages.stream(prepared, label=label))
            async with aclosing(sse_batches(texts)) as batches:
                async for batch in batches:
                    yield batch
        except HandlerError as exc:
            yield anthropic_sse(anthropic_error(exc))


async def _sse_texts(events: AsyncGenerator[dict[str, Any], None]) -> AsyncGenerator[str, None]:
    async with aclosing(events):
        async for event in events:
            yield anthropic_sse(event)


def job_error(exc: HandlerError) -> str:
    """A job error is a string (SDK rule); JSON inside it keeps the structured code for clients."""
    return encode_job_error(str(exc), exc.code)


def start(settings: HandlerSettings) -> None:
    """Run the RunPod worker loop (or, with ``--rp_serve_api``, the SDK's local API server)."""
    import runpod  # imported here: only the RunPod entry point needs the SDK

    runpod.serverless.start(RunPodHandler(settings).runpod_config())
