"""RunPod's serverless job protocol: reply shapes, job statuses, limits and backoff.

RunPod's queue-based API (``/run``, ``/runsync``, ``/status/{id}``, ``/stream/{id}``,
``/cancel/{id}``, ``/health``) is a protocol of its own, whatever the worker computes: a job
is submitted, moves ``IN_QUEUE`` -> ``IN_PROGRESS`` -> ``COMPLETED`` (or ``FAILED`` /
``CANCELLED`` / ``TIMED_OUT``), and is followed by polls. This module holds that protocol,
apart from the calls that carry it (`ccrelay.backends.runpod.queue`), so each reads in one
sitting:

- `Job`: one submitted job's state machine; its status from each reply, the limits it runs
  under (`JobLimits`: the cold-start queue wait, the total run time, and for a streamed job
  the first output and the gap between outputs), and the poll backoff.
- Readers of replies and outputs: `output_items` (a ``COMPLETED`` output, bare or in the
  aggregate-stream list shape), `stream_outputs` (a ``/stream`` batch), `cache_verdict`,
  `is_error_output`, `is_message`, `active_workers` and `health_summary` (a ``/health`` reply).
- `job_error`: a failed job or an error output mapped to our error tree by its structured
  code only (``model_not_allowed`` -> `UnknownModelError`, ``invalid_input`` /
  ``invalid_request_error`` -> `UpstreamInvalidRequest`, else `JobFailed`), never by text.

Every error raised here is of a type that is never retried (``retryable = False``): once a job
may exist, a retry would resubmit it and could run the inference twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ccrelay.backends.types import CacheVerdict
from ccrelay.errors import (
    BackendError,
    JobFailed,
    JobStalled,
    JobTimeout,
    ProtocolError,
    UnknownModelError,
    UpstreamInvalidRequest,
    UpstreamPromptTooLong,
)
from ccrelay_config.models import TimeoutSettings
from ccrelay_wire import (
    CACHE_VERDICT_FIELD,
    CODE_INVALID_INPUT,
    CODE_MODEL_NOT_ALLOWED,
    CODE_PROMPT_TOO_LONG,
    decode_job_error,
)

# The backend's logger: these lines are the backend's story of its jobs.
log = logging.getLogger("ccrelay.backends.runpod")

QUEUED, RUNNING, COMPLETED = "IN_QUEUE", "IN_PROGRESS", "COMPLETED"
FAILED_STATES = frozenset({"FAILED", "CANCELLED", "TIMED_OUT"})
TERMINAL_STATES = FAILED_STATES | {COMPLETED}

MAX_MESSAGE = 500
_COLD_START_NOTE_S = 5.0  # a job queued this long is logged once: a worker is cold-starting


def after_submission(backend: str, job_id: str | None, exc: BackendError) -> BackendError:
    """`exc` if it is never retried; else a `JobFailed` saying what broke: once a job may
    exist, a retry would resubmit it (and could run the inference twice)."""
    if not exc.retryable:
        return exc
    which = f"job {job_id}" if job_id else "the job"
    failed = JobFailed(backend, f"{which}: {exc.message.removeprefix(backend + ': ')}")
    failed.__cause__ = exc
    return failed


@dataclass(frozen=True)
class JobLimits:
    """The limits and poll pacing a job runs under (from the backend's settings)."""

    cold_start_timeout_s: float
    poll_initial_s: float
    poll_max_s: float
    timeouts: TimeoutSettings


class Job:
    """One submitted job: its id, where it stands, and the limits it runs under."""

    def __init__(self, backend: str, limits: JobLimits, reply: Any) -> None:
        if not isinstance(reply, dict) or not isinstance(reply.get("id"), str | int):
            raise ProtocolError(backend, "RunPod answered a submission without a job id")
        self.backend = backend
        self.limits = limits
        self.id = str(reply["id"])
        self.submitted = time.monotonic()
        self.status = ""
        self.running_since: float | None = None
        self.queued_polls = 0
        """Replies that said IN_QUEUE: a job seen queued waited for a worker (a cold start)."""
        self.last_output: float | None = None
        self.delay = limits.poll_initial_s
        self._noted_queue = False
        self.update(reply)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATES

    def update(self, reply: Any) -> dict[str, Any]:
        if not isinstance(reply, dict) or not isinstance(reply.get("status"), str):
            raise ProtocolError(self.backend, f"job {self.id}: a reply without a status")
        status = reply["status"]
        if status not in TERMINAL_STATES and status not in (QUEUED, RUNNING):
            log.debug("runpod job %s: unknown status %r, treated as queued", self.id, status)
            status = QUEUED
        if status != self.status:
            log.debug("runpod job %s: %s", self.id, status)
            self.delay = self.limits.poll_initial_s
            self.status = status
        if status == QUEUED:
            self.queued_polls += 1
        elif self.running_since is None:  # running, or done without our seeing it run
            self.running_since = time.monotonic()
        return reply

    def check_limits(self, *, streaming: bool = False) -> None:
        """Raise the timeout a limit calls for (the caller then cancels the job)."""
        limits = self.limits
        now = time.monotonic()
        name = self.backend
        if self.running_since is None:
            waited = now - self.submitted
            if waited > _COLD_START_NOTE_S and not self._noted_queue:
                self._noted_queue = True
                log.info(
                    "runpod job %s still queued after %.0f s: waiting for a worker to start "
                    "(gives up after cold_start_timeout_s=%g s)",
                    self.id,
                    waited,
                    limits.cold_start_timeout_s,
                )
            if waited > limits.cold_start_timeout_s:
                raise JobTimeout(
                    name,
                    f"job {self.id} waited in the queue longer than cold_start_timeout_s="
                    f"{limits.cold_start_timeout_s:g} s (no worker picked it up); cancelled",
                )
            return
        timeouts = limits.timeouts
        if now - self.running_since > timeouts.total_s:
            raise JobTimeout(
                name, f"job {self.id} ran longer than {timeouts.total_s:g} s; cancelled"
            )
        if not streaming:
            return
        if self.last_output is None:
            if now - self.running_since > timeouts.first_byte_s:
                raise JobStalled(
                    name,
                    f"job {self.id} produced no output within {timeouts.first_byte_s:g} s "
                    "of starting; cancelled",
                )
        elif now - self.last_output > timeouts.idle_s:
            raise JobStalled(
                name, f"job {self.id} produced no output for {timeouts.idle_s:g} s; cancelled"
            )

    def next_delay(self, interval: float | None = None) -> float:
        """Seconds until the next poll: `interval` when given, else the backoff."""
        if interval is None:
            interval = self.delay
            self.delay = min(self.delay * 2, self.limits.poll_max_s)
        return max(0.0, interval)

    def pace(self, seconds: float) -> float:
        """`seconds`, cut short so that a queued job's wait never sleeps past its limit."""
        if self.running_since is None:
            left = self.submitted + self.limits.cold_start_timeout_s - time.monotonic()
            seconds = min(seconds, max(left, 0.0) + 0.001)
        return seconds


# -- replies and outputs -------------------------------------------------------------------


def output_items(backend: str, output: Any) -> list[Any]:
    """A COMPLETED job's output as a list: bare, JSON text, or the aggregate-stream list."""
    if isinstance(output, str):
        try:
            output = orjson.loads(output)
        except orjson.JSONDecodeError:
            raise ProtocolError(backend, "the job's output is text, not JSON") from None
    if output is None:
        raise ProtocolError(backend, "the job completed without an output")
    return list(output) if isinstance(output, list) else [output]


def stream_outputs(backend: str, job_id: str, reply: dict[str, Any]) -> list[Any]:
    """The outputs of one /stream reply, in order."""
    stream = reply.get("stream")
    if stream is None:
        return []
    if not isinstance(stream, list):
        raise ProtocolError(backend, f"job {job_id}: /stream answered a `stream` that is no list")
    return [item.get("output") if isinstance(item, dict) else item for item in stream]


def cache_verdict(item: dict[str, Any]) -> str | None:
    """The worker's cache verdict on a completion or a stream's first chunk, if it sent one."""
    verdict = CacheVerdict.parse(item.get(CACHE_VERDICT_FIELD))
    return verdict.value if verdict is not None else None


def is_error_output(item: Any) -> bool:
    return isinstance(item, dict) and item.get("error") is not None and "choices" not in item


def is_message(item: Any) -> bool:
    """An Anthropic Messages response (what the worker answers a ``/v1/messages`` job)."""
    return isinstance(item, dict) and item.get("type") == "message"


def active_workers(health: dict[str, Any]) -> int:
    """Workers that can take a job now (idle or running) from a /health reply."""
    workers = health.get("workers")
    if not isinstance(workers, dict):
        return 0
    return _int(workers.get("idle")) + _int(workers.get("running"))


def health_summary(reply: dict[str, Any]) -> tuple[bool, str]:
    """(healthy, a one-line detail) from a /health reply's worker and job counts."""
    given_workers, given_jobs = reply.get("workers"), reply.get("jobs")
    workers = given_workers if isinstance(given_workers, dict) else {}
    jobs = given_jobs if isinstance(given_jobs, dict) else {}
    count = {k: _int(v) for k, v in {**workers, **jobs}.items()}
    active = active_workers(reply)
    detail = (
        f"workers: {count.get('idle', 0)} idle, {count.get('running', 0)} running, "
        f"{count.get('initializing', 0)} initializing"
    )
    for extra in ("throttled", "unhealthy"):
        if count.get(extra):
            detail += f", {count[extra]} {extra}"
    detail += (
        f"; jobs: {count.get('inQueue', 0)} in queue, {count.get('inProgress', 0)} in progress"
    )
    if active == 0 and not count.get("initializing"):
        detail += "; scaled to zero: the first request cold-starts a worker"
    return not (count.get("unhealthy", 0) > 0 and active == 0), detail


# -- errors --------------------------------------------------------------------------------


def job_error(
    backend: str,
    job_id: str | None,
    payload: dict[str, Any],
    *,
    scrub: Callable[[str], str],
    status: str | None = None,
) -> BackendError:
    """The error for a failed job or an error output, chosen by structured code only.

    `scrub` removes the backend's secrets from the worker's text before it goes into the error.
    """
    message, code = decode_job_error(payload.get("error"))
    code = code or opt_str(payload.get("code") or payload.get("error_type"))
    message = scrub(message)[:MAX_MESSAGE]
    which = f"job {job_id}" if job_id is not None else "the job"
    if code == CODE_MODEL_NOT_ALLOWED:
        return UnknownModelError(
            backend,
            f"the worker does not serve this model: {message}; list valid models with "
            f"`ccrelay models --backend {backend}` and set `model` in the config",
            upstream_status=404,
        )
    if code == CODE_PROMPT_TOO_LONG or UpstreamPromptTooLong.said(message):
        # the worker's words alone: Claude Code compacts on them
        return UpstreamPromptTooLong(backend, message, upstream_status=400)
    if code in (CODE_INVALID_INPUT, "invalid_request_error"):
        return UpstreamInvalidRequest(backend, message, upstream_status=400)
    if status == "CANCELLED":
        return JobFailed(backend, f"{which} was cancelled on RunPod" + _detail(message))
    if status == "TIMED_OUT":
        return JobFailed(
            backend,
            f"{which} timed out on RunPod (the endpoint's execution timeout)" + _detail(message),
        )
    return JobFailed(backend, f"{which} failed: {message or '(no error text)'}")


def _detail(message: str) -> str:
    return f": {message}" if message else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
