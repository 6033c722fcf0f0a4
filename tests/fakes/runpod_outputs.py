"""What a job on the fake RunPod endpoint (tests/fakes/runpod_jobs.py) is and what it produces.

`Script` (how a scripted job behaves) and `Job` (one job's state, in any of the fake's three
modes: scripted, a `Worker` callable, or real workers taking jobs from its queue); the outputs
the ccrelay worker yields (ccrelay_handler.runpod_handler): `messages_outputs`,
`anthropic_sse`; and `paced_worker`, a stand-in worker for the unit tests.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.providers import anthropic_message, anthropic_text_events, openai_text_chunks

__all__ = [
    "Job",
    "Script",
    "Worker",
    "anthropic_sse",
    "is_messages",
    "messages_outputs",
    "paced_worker",
]

Worker = Callable[[Any], AsyncIterator[Any]]


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
    # -- a job in the queue real workers take from (tests/fakes/runpod_workers.py) --
    queued: bool = False
    status: str = "IN_QUEUE"
    worker_id: str | None = None
    result: dict[str, Any] | None = None  # what the worker posted to job-done
    created_at: float = field(default_factory=time.monotonic)
    taken_at: float | None = None
    ended_at: float | None = None


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
