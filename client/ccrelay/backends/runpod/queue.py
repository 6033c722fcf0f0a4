"""A queue endpoint's API: jobs through ``/run``, ``/runsync``, ``/status``, ``/stream`` and
``/cancel``, the OpenAI route, and ``/health``.

Time limits. A job may sit ``IN_QUEUE`` for ``cold_start_timeout_s`` (a worker booting from
zero loads Ollama and the model); once ``IN_PROGRESS`` it may run ``timeouts.total_s``, and a
streamed job must produce its first output within ``timeouts.first_byte_s`` and then one at
least every ``timeouts.idle_s``. Past a limit the job is cancelled (``POST /cancel/{id}``).
A caller that gives up (``CancelledError``, or a stream closed early) also cancels the job:
shielded, bounded by ``cancel_timeout_s``, best effort. During the ``/runsync`` wait itself
there is no job id yet, so a caller giving up then cannot cancel the job; ``runsync_wait_ms``
bounds that window.

Retries (the backend's) never resubmit a job that may exist: a submission is retried only
when RunPod answered 429/5xx or the connection failed; a timeout while submitting, and every
error once a job id is known, is final. A poll that fails with a retryable error is simply
polled again, within the limits above.

The OpenAI route (``/openai/v1/...``) holds the HTTP request while the job waits for a
(cold) worker, so its first-byte deadline is ``cold_start_timeout_s`` plus
``timeouts.first_byte_s``. A stream closed early closes the connection; whether RunPod then
cancels the job is not documented (the worker's output is simply dropped).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, Literal

from ccrelay.backends.runpod.jobs import (
    COMPLETED,
    FAILED_STATES,
    RUNNING,
    TERMINAL_STATES,
    Job,
    JobLimits,
    after_submission,
    job_error,
    stream_outputs,
)
from ccrelay.backends.runpod.settings import RunPodSettings
from ccrelay.errors import (
    BackendError,
    BackendTimeout,
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

if TYPE_CHECKING:
    from ccrelay.backends.base import Backend

__all__ = ["QueueEndpoint"]

Waited = Callable[[float], None]
"""Told how many seconds a job sat in the queue waiting for a worker."""

log = logging.getLogger("ccrelay.backends.runpod")


class QueueEndpoint:
    """One queue endpoint's API, on the backend's shared session and secrets."""

    def __init__(self, backend: Backend[RunPodSettings]) -> None:
        settings = backend.settings
        self.name = backend.name
        self.settings = settings
        self.upstream = backend.upstream_client(settings.url)
        # /runsync holds the request open for up to `wait` before it answers.
        wait_s = settings.runsync_wait_ms / 1000
        self._runsync = backend.upstream_client(
            settings.url,
            timeouts=settings.timeouts.model_copy(
                update={"first_byte_s": wait_s + settings.timeouts.first_byte_s}
            ),
        )
        # The OpenAI route holds the request while the job waits for a (cold) worker.
        self.route = backend.upstream_client(
            settings.url + "/openai/v1",
            timeouts=settings.timeouts.model_copy(
                update={
                    "first_byte_s": settings.cold_start_timeout_s + settings.timeouts.first_byte_s,
                    "total_s": settings.cold_start_timeout_s + settings.timeouts.total_s,
                }
            ),
        )
        self._runsync_timeout_s = min(wait_s + settings.timeouts.first_byte_s, 3600.0)
        self.poll_timeout_s = min(settings.timeouts.first_byte_s, 30.0)
        self._cancels: set[asyncio.Task[None]] = set()
        self._limits = JobLimits(
            cold_start_timeout_s=settings.cold_start_timeout_s,
            poll_initial_s=settings.poll_initial_s,
            poll_max_s=settings.poll_max_s,
            timeouts=settings.timeouts,
        )

    # -- jobs ----------------------------------------------------------------------------

    async def run_job(
        self, job_input: dict[str, Any], model: str, *, waited: Waited | None = None
    ) -> Any:
        """Submit with /runsync and follow the job until it ends; its COMPLETED output.
        `waited` is told how long the job sat in the queue, when it did."""
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
        _report_queued(job, waited)
        if job.status != COMPLETED:
            raise await self._failure(job, reply)
        return reply.get("output")

    async def stream_job(
        self, job_input: dict[str, Any], model: str, *, waited: Waited | None = None
    ) -> AsyncGenerator[Any, None]:
        """Submit with /run and yield the job's outputs as ``/stream`` polls hand them out."""
        submitted = await self._submit(self.upstream, "/run", {"input": job_input}, model)
        job = Job(self.name, self._limits, submitted)
        completed = False
        try:
            while True:
                if not job.terminal:
                    job.check_limits(streaming=True)
                reply = await self._poll(job, "stream")
                batch: list[Any] = []
                if reply is not None:
                    batch = stream_outputs(self.name, job.id, reply)
                    if batch:
                        _report_queued(job, waited)
                        waited = None  # once
                    for output in batch:
                        job.last_output = time.monotonic()
                        yield output
                    # As the SDK reads /stream: done when the status is final AND the batch
                    # is empty; outputs may still come with or after COMPLETED. Once COMPLETED
                    # was seen, any final empty reply ends it: the SDK's local server forgets
                    # a job after its last batch ("FAILED", "Job ID not found").
                    completed = completed or job.status == COMPLETED
                    if completed and job.status in TERMINAL_STATES and not batch:
                        return
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

    def job_error(
        self, job_id: str | None, payload: dict[str, Any], *, status: str | None = None
    ) -> BackendError:
        return job_error(self.name, job_id, payload, scrub=self.upstream.scrub, status=status)

    # -- health ----------------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        reply = await self.upstream.request_json("GET", "/health", timeout_s=self.poll_timeout_s)
        if not isinstance(reply, dict):
            raise ProtocolError(self.name, "GET /health did not return a JSON object")
        return reply

    async def models(self) -> Any:
        """The worker's ``/v1/models`` through the OpenAI route (runs a job: only ask a warm
        endpoint)."""
        return await self.upstream.request_json(
            "GET", "/openai/v1/models", timeout_s=self.poll_timeout_s
        )

    async def aclose(self) -> None:
        if self._cancels:
            await asyncio.wait(set(self._cancels), timeout=self.settings.cancel_timeout_s)

    # -- the wire ---------------------------------------------------------------------------

    def uncertain(self, exc: BackendError) -> SubmitUncertain:
        """What a timeout or lost connection is once a job may have been queued."""
        return SubmitUncertain(
            self.name,
            f"{exc.message.removeprefix(self.name + ': ')}; RunPod may have queued the job, "
            "so it is not submitted again",
        )

    async def _submit(
        self, client: UpstreamClient, path: str, body: dict[str, Any], model: str
    ) -> dict[str, Any]:
        """POST a job. Retryable only when no job can exist (429/5xx, connection failed)."""
        timeout_s = self._runsync_timeout_s if client is self._runsync else self.poll_timeout_s
        try:
            reply = await client.request_json("POST", path, body, model=model, timeout_s=timeout_s)
        except (BackendTimeout, ConnectionLost) as exc:
            if isinstance(exc, ConnectTimeout):
                raise  # never connected: no job can exist
            # The request may have reached RunPod and queued a job: resubmitting could run
            # the inference twice.
            raise self.uncertain(exc) from None
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
                self.settings.poll_method, f"/{kind}/{job.id}", timeout_s=self.poll_timeout_s
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

    async def _failure(self, job: Job, reply: dict[str, Any]) -> BackendError:
        error = reply.get("error")
        if error is None and job.status != "CANCELLED":
            # /stream replies may leave the error out; /status has it.
            try:
                status = await self.upstream.request_json(
                    self.settings.poll_method, f"/status/{job.id}", timeout_s=self.poll_timeout_s
                )
                if isinstance(status, dict):
                    error = status.get("error")
            except BackendError:
                pass
        return self.job_error(job.id, {"error": error}, status=job.status)


def _report_queued(job: Job, waited: Waited | None) -> None:
    """How long a job seen queued waited before it ran: a worker's pick-up, or (longer than
    a few seconds) a cold start. A job never seen queued reports nothing (a /runsync that
    answered whole cannot tell its queue time from its run time)."""
    if waited is not None and job.queued_polls and job.running_since is not None:
        waited(job.running_since - job.submitted)
