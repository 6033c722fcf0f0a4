"""Shared parts of the fault-injection suite: a scriptable loopback server, the configuration
every backend type gets (tiny timeouts, two attempts, one distinctive key), the faults
themselves, an attempt recorder and a witness that searches every output for the key.

Every server is a real aiohttp app on 127.0.0.1 (or a bound port that refuses connections);
nothing in ccrelay is patched. Retries sleep through an injected no-op that remembers the delays.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from typing import Any

import pytest

from ccrelay.errors import (
    BackendConnectError,
    BackendError,
    CcrelayError,
    ConnectionLost,
    FirstByteTimeout,
    JobFailed,
    JobStalled,
    ProtocolError,
    ReplyCutOff,
    StreamStalled,
    SubmitUncertain,
    UpstreamOverloaded,
    UpstreamRateLimited,
)
from ccrelay.latency.observer import Attempt
from ccrelay_config.models import CcrelayConfig
from tests.fakes.providers import (
    FakeProvider,
    Recorded,
    Reply,
    anthropic_text_events,
    openai_text_chunks,
    sse,
)
from tests.fakes.runpod_jobs import Script, anthropic_sse

SECRET = "sk-FAULTS-9d1e7c4b2a-SECRET"
"""The key every backend is configured with: it must show up nowhere but in the request."""

KINDS = ("anthropic", "cerebras", "openai", "runpod", "runpod_poll")
"""Backend kinds under test. ``runpod`` streams over the endpoint's OpenAI route (SSE, the
default); ``runpod_poll`` is a ``runpod`` backend with ``stream_mode: poll`` (``/run`` +
``/stream``)."""


def backend_type(kind: str) -> str:
    return "runpod" if kind.startswith("runpod") else kind


TIMEOUTS = {"connect_s": 1.0, "first_byte_s": 0.6, "idle_s": 0.6, "total_s": 4}
STALL_S = 1.2
"""How long a stalling server holds on: past every timeout above, short enough to clean up.

The timeouts leave room for a loaded 2-core CI machine: a reset must not read as a stall."""

REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}

# Faults before any byte of a reply was passed on: retried, then the classed error.
PRE_STREAM = ("429", "503", "refused", "reset", "stall_headers", "malformed_json")
# Faults after a stream started: never retried, the stream ends with an error.
MID_STREAM = ("stall_mid_stream", "truncated_sse", "malformed_event")

# fault -> (exception class raised, attempts made)
EXPECTED: dict[str, tuple[type[BackendError], int]] = {
    "429": (UpstreamRateLimited, 2),
    "503": (UpstreamOverloaded, 2),
    "refused": (BackendConnectError, 2),
    "reset": (ConnectionLost, 2),
    "stall_headers": (FirstByteTimeout, 2),
    "malformed_json": (ProtocolError, 1),
}
# mid-stream fault -> the error the attempt record keeps (the caller gets StreamInterrupted)
RECORDED: dict[str, type[BackendError]] = {
    "stall_mid_stream": StreamStalled,
    "truncated_sse": ReplyCutOff,  # the connection closed mid-stream: a transport failure
    "malformed_event": ProtocolError,
}
# RunPod streaming by polling: its mid-stream faults are the job's own
RECORDED_RUNPOD: dict[str, type[BackendError]] = {
    "stall_mid_stream": JobStalled,
    "truncated_sse": JobFailed,  # the job ended COMPLETED before message_stop: never resubmitted
    "malformed_event": ProtocolError,
}


def recorded(kind: str, fault: str) -> type[BackendError]:
    """The error a mid-stream fault's attempt record keeps."""
    return (RECORDED_RUNPOD if kind == "runpod_poll" else RECORDED)[fault]


RUNSYNC_HOLD_S = 1.0 + TIMEOUTS["first_byte_s"]
"""RunPod's /runsync may hold a request for its `wait` (1 s at least) plus first_byte_s."""
BOUND_S = 2 * (RUNSYNC_HOLD_S + TIMEOUTS["connect_s"]) + 1.0
"""No fault may take longer than both attempts' timeouts plus slack."""


def expected(kind: str, fault: str, call: str) -> tuple[type[BackendError], int]:
    """The error a fault before the reply ends in, and how many attempts it takes."""
    if fault == "malformed_json" and call == "open_stream" and kind != "runpod_poll":
        # a 200 that is no event stream: the provider ignored `stream`; retrying won't help
        return ProtocolError, 1
    if fault in ("stall_headers", "reset") and kind.startswith("runpod"):
        # a submission that timed out may have queued a job: resubmitting could run it twice
        # (on the OpenAI route as with /run and /runsync)
        return SubmitUncertain, 1
    return EXPECTED[fault]


class FaultServer(FakeProvider):
    """Answers every path with the next queued `Reply` (404 when none is queued)."""

    def __init__(self) -> None:
        super().__init__()
        self.app.router.add_route("*", "/{tail:.*}", self._handle)

    def default_reply(self, request: Recorded) -> Reply:
        return Reply(
            status=404, body={"error": {"message": f"nothing scripted for {request.path}"}}
        )


def leaky_error(status: int) -> dict[str, Any]:
    """A provider error body that quotes the key, as real providers sometimes do."""
    message = f"request with key {SECRET} failed with {status}"
    return {"type": "error", "error": {"type": "api_error", "message": message}}


def pre_stream_reply(fault: str, stall_s: float = STALL_S) -> Reply:
    """One reply carrying `fault` (`refused` is a port, not a reply)."""
    return {
        "429": Reply(status=429, body=leaky_error(429), headers={"Retry-After": "0.01"}),
        "503": Reply(status=503, body=leaky_error(503)),
        "reset": Reply(abort=True),
        "stall_headers": Reply(delay_before=stall_s, body={}),
        "malformed_json": Reply(raw=b'{"id": "broken", "choices": [', headers={}),
    }[fault]


def started_stream(kind: str) -> list[bytes]:
    """The first events of a good stream in `kind`'s wire protocol (no end): Anthropic's for
    the pass-through and for RunPod (the worker speaks Messages), OpenAI's for the rest."""
    if kind == "anthropic" or kind.startswith("runpod"):
        events, names = anthropic_text_events(["Hel", "lo"])
        return sse(events[:4], event_names=names[:4])
    return sse(openai_text_chunks(["Hel", "lo"])[:3])


def mid_stream_reply(kind: str, fault: str) -> Reply:
    first = started_stream(kind)
    if fault == "stall_mid_stream":
        return Reply(chunks=first, stall_after_chunks=STALL_S)
    if fault == "truncated_sse":
        return Reply(chunks=[*first, b'data: {"choices": [{"delta": {"content": "cut'], abort=True)
    assert fault == "malformed_event"
    return Reply(chunks=[*first, b"event: content_block_delta\ndata: {not json\n\n"])


def backend_config(kind: str, url: str, **fields: Any) -> dict[str, Any]:
    """One backend of `kind` at `url` (a server root), with the suite's timeouts and retries."""
    common: dict[str, Any] = {
        "type": backend_type(kind),
        "api_key": "${FAULT_KEY}",
        "retry": {"max_attempts": 2, "initial_backoff_s": 0.01, "max_backoff_s": 0.01},
        "timeouts": TIMEOUTS,
        "circuit": {"failure_threshold": 100},
    }
    if kind.startswith("runpod"):
        return {
            **common,
            "stream_mode": "poll" if kind == "runpod_poll" else "openai",
            "cold_start_timeout_s": 0.1,  # the OpenAI route waits this for a worker
            "endpoint_url": f"{url}/v2/faults",
            "poll_initial_s": 0.01,
            "poll_max_s": 0.02,
            "stream_poll_s": 0.01,
            "runsync_wait_ms": 1000,
            **fields,
        }
    if kind == "anthropic":
        return {**common, "base_url": url, **fields}
    return {**common, "base_url": f"{url}/v1", "model": "fake-model", **fields}


def environ(kind: str, url: str, **fields: Any) -> dict[str, str]:
    document = {"active": kind, "backends": {kind: backend_config(kind, url, **fields)}}
    return {
        "ENABLE_MULTI_BACKEND": "true",
        "LLM_BACKEND_CONFIG": json.dumps(document),
        "FAULT_KEY": SECRET,
    }


def load(kind: str, url: str, **fields: Any) -> CcrelayConfig:
    from ccrelay.backends.factory import load_client_config

    return load_client_config(environ(kind, url, **fields))


class Sleeps:
    """The retry policy's sleep: returns at once and keeps the delays asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Records:
    """An `AttemptObserver` that keeps every attempt."""

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []

    def on_attempt(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)

    def outcomes(self) -> list[tuple[int, str]]:
        return [(a.attempt, a.outcome) for a in self.attempts]


@dataclass
class Witness:
    """Everything ccrelay said, as text, to search for the key at the end."""

    texts: list[str] = field(default_factory=list)

    def error(self, exc: BaseException) -> None:
        self.texts += [str(exc), repr(exc), *traceback.format_exception(exc)]
        if isinstance(exc, CcrelayError):
            self.texts.append(exc.message)
        for inner in getattr(exc, "errors", None) or []:
            self.error(inner)

    def add(self, *values: object) -> None:
        self.texts += [v if isinstance(v, str) else repr(v) for v in values]

    def assert_clean(self, caplog: pytest.LogCaptureFixture) -> None:
        for record in caplog.records:
            self.texts += [record.getMessage(), repr(record.args), record.exc_text or ""]
            if record.exc_info and record.exc_info[1] is not None:
                self.texts += traceback.format_exception(record.exc_info[1])
        self.texts.append(caplog.text)
        leaks = [text for text in self.texts if SECRET in text]
        assert not leaks, leaks[:3]


def stall_for(kind: str, call: str) -> float:
    """How long a stalling server holds a request: past the limit that applies to it."""
    if kind.startswith("runpod") and call == "complete":
        return RUNSYNC_HOLD_S + 0.5
    return STALL_S


def runpod_script(fault: str) -> Script:
    """A streamed Messages job (the worker yields each event's SSE text) with `fault`."""
    events, _ = anthropic_text_events(["Hel", "lo"])
    chunks: list[Any] = [anthropic_sse(event) for event in events[:4]]
    if fault == "stall_mid_stream":
        return Script(status="COMPLETED", batches=[chunks], running_polls=10_000)
    if fault == "truncated_sse":
        return Script(status="COMPLETED", batches=[chunks])
    broken = "event: content_block_delta\ndata: {not json\n\n"
    return Script(status="COMPLETED", batches=[chunks, [broken]], running_polls=10)
