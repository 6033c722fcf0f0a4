"""The RunPod serverless backend against a loopback server speaking RunPod's API."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr, ValidationError

from ccrelay.backends.runpod import RunPodBackend, RunPodSettings
from ccrelay.backends.types import RequestOptions
from ccrelay.errors import (
    JobFailed,
    JobStalled,
    JobTimeout,
    ProtocolError,
    StreamInterrupted,
    SubmitUncertain,
    UnknownModelError,
    UpstreamAuthError,
    UpstreamInvalidRequest,
    UpstreamStatusError,
)
from ccrelay.latency.observer import Attempt
from ccrelay_config.models import RetrySettings, TimeoutSettings
from ccrelay_translate import anthropic_events_to_response
from tests.fakes.providers import anthropic_message, anthropic_text_events, openai_completion
from tests.fakes.runpod_jobs import FakeRunPod, Script, anthropic_sse
from tests.stream_check import check_stream

REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "Write hello world in Python"}],
}
OPTIONS = RequestOptions(request_id="req_test")


def make_backend(
    fake: FakeRunPod, session: aiohttp.ClientSession, **overrides: Any
) -> RunPodBackend:
    values: dict[str, Any] = {
        "type": "runpod",
        "endpoint_url": fake.endpoint_url,
        "api_key": SecretStr(fake.api_key),
        "poll_initial_s": 0.01,
        "poll_max_s": 0.02,
        "stream_poll_s": 0.01,
        "stream_mode": "poll",  # the /run + /stream tests; the OpenAI route has its own below
        "retry": RetrySettings(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.01),
        **overrides,
    }
    return RunPodBackend("rp", RunPodSettings(**values), session, rng=lambda: 0.0)


TOOL_CLEARING = {
    "context_management": {
        "edits": [
            {
                "type": "clear_tool_uses_20250919",
                # 0.6 of the default window's prompt limit: 32768 less its 4096 reserve
                "trigger": {"type": "input_tokens", "value": 17203},
                "keep": {"type": "tool_uses", "value": 3},
                "clear_at_least": {"type": "input_tokens", "value": 4000},
            }
        ]
    }
}
"""What the backend adds for the worker's default window (ccrelay.backends.context_policy)."""


async def collect(backend: RunPodBackend, request: dict[str, Any] = REQUEST) -> list[dict]:
    stream = await backend.open_stream(dict(request), OPTIONS)
    return [event async for event in stream]


def worker_events(pieces: list[str], *, verdict: str | None = None) -> list[str]:
    """What the ccrelay worker yields for a streamed Messages job: SSE text per event, the
    verdict on message_start's message."""
    events, _ = anthropic_text_events(pieces, model="qwen3-coder:30b")
    if verdict is not None:
        events[0] = {**events[0], "message": {**events[0]["message"], "x_ccrelay_cache": verdict}}
    return [anthropic_sse(event) for event in events]


def tool_events(text: str, call_id: str, name: str, arguments: str) -> list[str]:
    start, _ = anthropic_text_events([text], model="qwen3-coder:30b")
    events = start[:-2]  # up to the text block's stop
    events += [
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": call_id, "name": name, "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": arguments},
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
    ]
    return [anthropic_sse(event) for event in events]


def text_of(events: list[dict]) -> str:
    return "".join(
        e["delta"]["text"]
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "text_delta"
    )


# -- settings -----------------------------------------------------------------------------


def test_settings_default_url_from_endpoint_id() -> None:
    settings = RunPodSettings(type="runpod", endpoint_id="abc123", api_key=SecretStr("k"))
    assert settings.url == "https://api.runpod.ai/v2/abc123"
    assert settings.model == "qwen3-coder:30b"
    assert settings.cold_start_timeout_s == 600


def test_settings_endpoint_url_overrides() -> None:
    settings = RunPodSettings(type="runpod", endpoint_id="abc", endpoint_url="http://h:1/x/")
    assert settings.url == "http://h:1/x"


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({}, "needs endpoint_id"),
        ({"endpoint_id": "abc"}, "needs an api_key"),
        ({"endpoint_id": "a/b", "api_key": "k"}, "endpoint_id"),
        ({"endpoint_url": "ftp://x"}, "http"),
        ({"endpoint_url": "http://h", "runsync_wait_ms": 500_000}, "runsync_wait_ms"),
        ({"endpoint_url": "http://h", "poll_initial_s": 5, "poll_max_s": 1}, "poll_max_s"),
        ({"endpoint_url": "http://h", "stream_mode": "sse"}, "stream_mode"),
        ({"endpoint_url": "http://h", "cache": {"mode": "never"}}, "cache"),
    ],
)
def test_settings_reject(values: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        RunPodSettings(type="runpod", **values)
    assert needle in str(info.value)


def test_registered_and_loaded_from_config() -> None:
    from ccrelay.backends.factory import load_client_config
    from ccrelay.backends.registry import BackendRegistry

    assert BackendRegistry().backend_class("runpod") is RunPodBackend
    document = {"backends": {"rp": {"type": "runpod", "endpoint_id": "abc123", "api_key": "${K}"}}}
    config = load_client_config(
        {"ENABLE_MULTI_BACKEND": "true", "LLM_BACKEND_CONFIG": json.dumps(document), "K": "s3"}
    )
    settings = config.backends["rp"]
    assert isinstance(settings, RunPodSettings)
    assert settings.url == "https://api.runpod.ai/v2/abc123"


def test_config_without_endpoint_names_the_fix() -> None:
    from ccrelay.backends.factory import load_client_config
    from ccrelay_config.errors import ConfigError

    document = {"backends": {"rp": {"type": "runpod", "api_key": "x"}}}
    with pytest.raises(ConfigError) as info:
        load_client_config(
            {"ENABLE_MULTI_BACKEND": "true", "LLM_BACKEND_CONFIG": json.dumps(document)}
        )
    assert "endpoint_id" in str(info.value)
    assert "endpoint_url" in str(info.value)


def test_settings_repr_hides_key() -> None:
    settings = RunPodSettings(type="runpod", endpoint_id="abc", api_key=SecretStr("sekrit-rp"))
    assert "sekrit-rp" not in repr(settings)


# -- non-streamed ---------------------------------------------------------------------------


async def test_runsync_completed(fake_runpod: FakeRunPod, session) -> None:
    backend = make_backend(fake_runpod, session, runsync_wait_ms=45_000)
    completion = await backend.complete(dict(REQUEST), OPTIONS)
    assert completion.response["content"] == [{"type": "text", "text": "Hello from RunPod"}]
    assert completion.response["usage"]["input_tokens"] == 12
    assert completion.model == "qwen3-coder:30b"
    assert completion.cache == "miss"
    assert "x_ccrelay_cache" not in completion.response  # the worker's verdict is taken off
    (submit,) = fake_runpod.submissions()
    assert submit.path.endswith("/runsync")
    assert submit.query == {"wait": "45000"}
    assert submit.headers["Authorization"] == f"Bearer {fake_runpod.api_key}"
    # RunPod's OpenAI-route job shape: Claude Code's request, unchanged but for model and
    # stream, and the tool clearing the worker's default 32768 window calls for
    job_input = submit.body["input"]
    assert job_input["openai_route"] == "/v1/messages"
    sent = job_input["openai_input"]
    assert sent == {**REQUEST, "model": "qwen3-coder:30b", "stream": False, **TOOL_CLEARING}
    assert fake_runpod.polls("status") == []
    assert fake_runpod.cancels == []


async def test_aggregate_list_output_and_cache_verdict(fake_runpod, session) -> None:
    output = [{**anthropic_message("cached answer"), "x_ccrelay_cache": "hit"}]
    fake_runpod.push_job(Script(output=output))
    backend = make_backend(fake_runpod, session, cache={"mode": "no-cache", "ttl": 60})
    completion = await backend.complete(dict(REQUEST), OPTIONS)
    assert completion.response["content"][0]["text"] == "cached answer"
    assert completion.cache == "hit"
    sent = fake_runpod.submissions()[0].body["input"]["openai_input"]
    assert sent["cache"] == {"mode": "no-cache", "ttl": 60}


async def test_an_output_that_is_not_a_message_is_a_protocol_error(fake_runpod, session) -> None:
    """An old worker image answers chat completions: say so rather than guess."""
    fake_runpod.push_job(Script(output=[openai_completion("a chat completion")]))
    with pytest.raises(ProtocolError, match="not a Messages response"):
        await make_backend(fake_runpod, session).complete(dict(REQUEST), OPTIONS)


async def test_cold_start_polls_status_then_succeeds(fake_runpod, session) -> None:
    fake_runpod.push_job(Script(queued_polls=3, running_polls=2))
    backend = make_backend(fake_runpod, session, poll_method="POST")
    completion = await backend.complete(dict(REQUEST), OPTIONS)
    assert completion.response["content"][0]["text"] == "Hello from RunPod"
    polls = fake_runpod.polls("status")
    assert len(polls) == 6
    assert {p.method for p in polls} == {"POST"}
    assert len(fake_runpod.submissions()) == 1
    assert fake_runpod.cancels == []


async def test_caller_gives_up_cancels_the_job(fake_runpod, session, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    fake_runpod.push_job(Script(hang=True))
    backend = make_backend(fake_runpod, session)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(backend.complete(dict(REQUEST), OPTIONS), 0.3)
    (job_id,) = fake_runpod.jobs
    assert fake_runpod.cancels == [job_id]
    assert len(fake_runpod.submissions()) == 1
    assert f"runpod job {job_id}: cancelled" in caplog.text
    assert fake_runpod.api_key not in caplog.text
    await backend.aclose()


async def test_cold_start_timeout_cancels_and_raises_total_timeout(fake_runpod, session) -> None:
    fake_runpod.push_job(Script(hang=True))
    backend = make_backend(fake_runpod, session, cold_start_timeout_s=0.2)
    with pytest.raises(JobTimeout) as info:
        await backend.complete(dict(REQUEST), OPTIONS)
    assert "cold_start_timeout_s" in info.value.message
    assert not info.value.retryable
    assert fake_runpod.cancels == list(fake_runpod.jobs)
    assert len(fake_runpod.submissions()) == 1  # never resubmitted


async def test_failed_job_raises_job_failed_with_scrubbed_message(
    fake_runpod, session, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    key = fake_runpod.api_key
    fake_runpod.push_job(Script(status="FAILED", error=f"engine error (HTTP 500): boom {key}"))
    backend = make_backend(fake_runpod, session)
    with pytest.raises(JobFailed) as info:
        await backend.complete(dict(REQUEST), OPTIONS)
    message = str(info.value)
    assert "engine error (HTTP 500): boom ***" in message
    assert key not in message
    assert key not in caplog.text
    assert len(fake_runpod.submissions()) == 1


async def test_failed_job_with_sdk_traceback_json_keeps_only_the_message(
    fake_runpod, session
) -> None:
    error = json.dumps(
        {
            "error_type": "<class 'RuntimeError'>",
            "error_message": "worker exploded",
            "error_traceback": "Traceback (most recent call last): ...",
        }
    )
    fake_runpod.push_job(Script(status="FAILED", error=error, queued_polls=1))
    with pytest.raises(JobFailed) as info:
        await make_backend(fake_runpod, session).complete(dict(REQUEST), OPTIONS)
    assert "worker exploded" in info.value.message
    assert "Traceback" not in info.value.message


@pytest.mark.parametrize(
    ("status", "needle"), [("TIMED_OUT", "timed out"), ("CANCELLED", "cancelled")]
)
async def test_timed_out_and_cancelled_jobs(fake_runpod, session, status, needle) -> None:
    fake_runpod.push_job(Script(status=status, running_polls=1))
    with pytest.raises(JobFailed) as info:
        await make_backend(fake_runpod, session).complete(dict(REQUEST), OPTIONS)
    assert needle in info.value.message
    assert fake_runpod.cancels == []


@pytest.mark.parametrize(
    ("output", "error_cls"),
    [
        ([{"error": "model 'x' is not allowed", "code": "model_not_allowed"}], UnknownModelError),
        ({"error": "invalid input: messages", "code": "invalid_input"}, UpstreamInvalidRequest),
        ([{"error": '{"message": "nope", "code": "model_not_allowed"}'}], UnknownModelError),
        # no structured code: never decided from the text, however it reads
        ([{"error": "invalid input: model: model 'x' is not allowed"}], JobFailed),
    ],
)
async def test_error_outputs_map_by_structured_code(fake_runpod, session, output, error_cls):
    fake_runpod.push_job(Script(output=output))
    with pytest.raises(error_cls) as info:
        await make_backend(fake_runpod, session).complete(dict(REQUEST), OPTIONS)
    assert type(info.value) is error_cls
    assert len(fake_runpod.submissions()) == 1


async def test_retry_on_503_before_the_job_exists(fake_runpod, session) -> None:
    fake_runpod.push_failure(503)
    fake_runpod.push_failure(429, headers={"Retry-After": "0"})
    completion = await make_backend(fake_runpod, session).complete(dict(REQUEST), OPTIONS)
    assert completion.attempts == 3
    assert len(fake_runpod.submissions()) == 3
    assert len(fake_runpod.jobs) == 1


async def test_submission_timeout_is_never_resubmitted(fake_runpod, session) -> None:
    # /runsync may wait runsync_wait_ms plus first_byte_s; past that the job may exist.
    fake_runpod.push_job(Script(submit_delay=1.5))
    backend = make_backend(
        fake_runpod,
        session,
        runsync_wait_ms=1_000,
        timeouts=TimeoutSettings(first_byte_s=0.1, total_s=5),
    )
    with pytest.raises(SubmitUncertain) as info:
        await backend.complete(dict(REQUEST), OPTIONS)
    assert not info.value.retryable
    assert len(fake_runpod.submissions()) == 1


async def test_stream_submission_timeout_is_never_resubmitted(fake_runpod, session) -> None:
    fake_runpod.push_job(Script(submit_delay=0.5))
    backend = make_backend(fake_runpod, session, timeouts=TimeoutSettings(first_byte_s=0.1))
    with pytest.raises(SubmitUncertain):
        await collect(backend)
    assert len(fake_runpod.submissions()) == 1


async def test_poll_errors_are_polled_again_not_resubmitted(fake_runpod, session) -> None:
    fake_runpod.push_job(Script(queued_polls=1))
    fake_runpod.poll_failures = [503, 502, 429]
    completion = await make_backend(fake_runpod, session).complete(dict(REQUEST), OPTIONS)
    assert completion.attempts == 1
    assert len(fake_runpod.submissions()) == 1
    assert len(fake_runpod.polls("status")) == 5


async def test_stream_poll_errors_are_polled_again(fake_runpod, session) -> None:
    fake_runpod.poll_failures = [500]
    events = await collect(make_backend(fake_runpod, session))
    assert text_of(events) == "Hello from RunPod"
    assert len(fake_runpod.submissions()) == 1


async def test_wrong_key_is_an_auth_error_without_the_key(fake_runpod, session, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    backend = make_backend(fake_runpod, session, api_key=SecretStr("rp-wrong-key-42"))
    with pytest.raises(UpstreamAuthError) as info:
        await backend.complete(dict(REQUEST), OPTIONS)
    assert "rp-wrong-key-42" not in str(info.value)
    assert "rp-wrong-key-42" not in caplog.text
    assert "rp-wrong-key-42" not in repr(backend)
    assert len(fake_runpod.submissions()) == 1


async def test_unknown_endpoint_says_check_endpoint_id(fake_runpod, session) -> None:
    backend = make_backend(fake_runpod, session, endpoint_url=fake_runpod.url + "/v2/nope")
    with pytest.raises(UpstreamStatusError) as info:
        await backend.complete(dict(REQUEST), OPTIONS)
    assert "endpoint_id" in info.value.message
    assert not isinstance(info.value, UnknownModelError)


# -- streamed (poll mode) -------------------------------------------------------------------


async def test_stream_reads_the_worker_s_events_in_poll_batches(fake_runpod, session) -> None:
    texts = worker_events(["Hel", "lo", " wor", "ld"])
    # one event split over two outputs, as batches may cut the worker's text anywhere
    cut = texts[3][:9], texts[3][9:]
    batches = [[*texts[:3], cut[0]], [], [cut[1], *texts[4:6]], texts[6:]]
    fake_runpod.push_job(Script(queued_polls=2, batches=batches))
    events = await collect(make_backend(fake_runpod, session))
    assert text_of(events) == "Hello world"
    check_stream(events)
    (submit,) = fake_runpod.submissions()
    assert submit.path.endswith("/run")
    assert submit.body["input"]["openai_route"] == "/v1/messages"
    assert submit.body["input"]["openai_input"]["stream"] is True
    # 2 queued and 4 batches: message_stop ends it, with the job COMPLETED (no cancel)
    assert len(fake_runpod.polls("stream")) == 6
    assert {p.method for p in fake_runpod.polls("stream")} == {"GET"}
    assert fake_runpod.cancels == []
    response = anthropic_events_to_response(events)
    assert response["usage"]["output_tokens"] == 6


async def test_chunks_that_come_with_and_after_completed_are_not_lost(fake_runpod, session) -> None:
    chunks = worker_events(["Hel", "lo", " wor", "ld"])
    # the status reads COMPLETED from the second batch on; two batches are still to come
    batches = [chunks[:2], chunks[2:3], chunks[3:5], chunks[5:]]
    fake_runpod.push_job(Script(batches=batches, late_batches=2))
    events = await collect(make_backend(fake_runpod, session))
    assert text_of(events) == "Hello world"
    assert events[-1]["type"] == "message_stop"
    assert len(fake_runpod.polls("stream")) == 4  # 4 batches: message_stop ends it
    assert fake_runpod.cancels == []


async def test_stream_relays_tool_calls(fake_runpod, session) -> None:
    chunks = tool_events("Let me look.", "call_1", "read_file", json.dumps({"path": "a.py"}))
    fake_runpod.push_job(Script(batches=[chunks[:3], chunks[3:]]))
    events = await collect(make_backend(fake_runpod, session))
    response = anthropic_events_to_response(events)
    assert response["content"][0] == {"type": "text", "text": "Let me look."}
    tool = response["content"][1]
    assert (tool["type"], tool["id"], tool["name"]) == ("tool_use", "call_1", "read_file")
    assert tool["input"] == {"path": "a.py"}
    assert response["stop_reason"] == "tool_use"


async def test_stream_failed_midway_raises_with_the_worker_message(fake_runpod, session) -> None:
    chunks = worker_events(["partial"])
    fake_runpod.push_job(
        Script(status="FAILED", error="engine error: out of memory", batches=[chunks[:4], []])
    )
    stream = await make_backend(fake_runpod, session).open_stream(dict(REQUEST), OPTIONS)
    with pytest.raises(StreamInterrupted) as info:
        async for _event in stream:
            pass
    assert "out of memory" in info.value.message
    assert fake_runpod.cancels == []


async def test_stream_failed_before_output_fetches_error_from_status(fake_runpod, session):
    fake_runpod.push_job(
        Script(status="FAILED", error="invalid input: x", batches=[], stream_error_field=False)
    )
    with pytest.raises(JobFailed) as info:
        await collect(make_backend(fake_runpod, session))
    assert "invalid input: x" in info.value.message
    assert len(fake_runpod.submissions()) == 1  # a failed job is not retried


async def test_stream_error_output_maps_by_code(fake_runpod, session) -> None:
    fake_runpod.push_job(
        Script(batches=[[{"error": "no such model", "code": "model_not_allowed"}]])
    )
    with pytest.raises(UnknownModelError):
        await collect(make_backend(fake_runpod, session))


async def test_stream_caller_gives_up_while_queued_cancels(fake_runpod, session) -> None:
    fake_runpod.push_job(Script(hang=True))
    backend = make_backend(fake_runpod, session)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(backend.open_stream(dict(REQUEST), OPTIONS), 0.3)
    assert fake_runpod.cancels == list(fake_runpod.jobs)


async def test_stream_closed_early_cancels_the_job(fake_runpod, session) -> None:
    chunks = worker_events(["a", "b", "c"])
    fake_runpod.push_job(Script(batches=[chunks[:4]] + [[]] * 50 + [chunks[4:]]))
    backend = make_backend(fake_runpod, session)
    stream = await backend.open_stream(dict(REQUEST), OPTIONS)
    async for event in stream:
        if event["type"] == "content_block_delta":
            break
    await stream.aclose()
    assert fake_runpod.cancels == list(fake_runpod.jobs)


async def test_stream_stalls_after_first_output_cancels(fake_runpod, session) -> None:
    chunks = worker_events(["a"])
    fake_runpod.push_job(Script(batches=[chunks[:4]] + [[]] * 500))
    backend = make_backend(fake_runpod, session, timeouts=TimeoutSettings(idle_s=0.2))
    stream = await backend.open_stream(dict(REQUEST), OPTIONS)
    with pytest.raises(StreamInterrupted) as info:
        async for _event in stream:
            pass
    assert isinstance(info.value.__cause__, JobStalled)
    assert fake_runpod.cancels == list(fake_runpod.jobs)


async def test_stream_retries_submission_on_503(fake_runpod, session) -> None:
    fake_runpod.push_failure(503)
    events = await collect(make_backend(fake_runpod, session))
    assert text_of(events) == "Hello from RunPod"
    assert len(fake_runpod.submissions()) == 2


# -- streamed (runsync mode) ----------------------------------------------------------------


async def test_stream_mode_runsync_replays_the_completion(fake_runpod, session) -> None:
    fake_runpod.push_job(Script(queued_polls=1))
    events = await collect(make_backend(fake_runpod, session, stream_mode="runsync"))
    assert text_of(events) == "Hello from RunPod"
    assert events[0]["type"] == "message_start"
    assert events[-1]["type"] == "message_stop"
    (submit,) = fake_runpod.submissions()
    assert submit.path.endswith("/runsync")
    assert submit.body["input"]["openai_input"]["stream"] is False


class Attempts:
    def __init__(self) -> None:
        self.seen: list[Attempt] = []

    def on_attempt(self, attempt: Attempt) -> None:
        self.seen.append(attempt)


async def test_stream_poll_mode_reports_the_workers_cache_verdict(fake_runpod, session) -> None:
    chunks = worker_events(["Hel", "lo"], verdict="hit")  # on message_start's message
    fake_runpod.push_job(Script(batches=[[], chunks[:2], chunks[2:]]))
    backend = make_backend(fake_runpod, session)
    backend.observer = observer = Attempts()
    stream = await backend.open_stream(dict(REQUEST), OPTIONS)
    assert stream.cache == "hit"  # known when open_stream returns: the gateway's header
    events = [event async for event in stream]
    assert text_of(events) == "Hello"
    assert all("type" in e for e in events)  # the marker is never passed on
    assert "x_ccrelay_cache" not in events[0]["message"]  # nor the worker's field
    assert [(a.cache, a.streamed, a.outcome) for a in observer.seen] == [("hit", True, "ok")]


async def test_stream_poll_mode_without_a_verdict(fake_runpod, session) -> None:
    fake_runpod.push_job(Script(batches=[worker_events(["Hi"])]))
    stream = await make_backend(fake_runpod, session).open_stream(dict(REQUEST), OPTIONS)
    assert text_of([event async for event in stream]) == "Hi"
    assert stream.cache is None


async def test_stream_mode_runsync_reports_the_cache_verdict(fake_runpod, session) -> None:
    output = [{**anthropic_message("cached answer"), "x_ccrelay_cache": "miss"}]
    fake_runpod.push_job(Script(output=output))
    backend = make_backend(fake_runpod, session, stream_mode="runsync")
    backend.observer = observer = Attempts()
    stream = await backend.open_stream(dict(REQUEST), OPTIONS)
    assert stream.cache == "miss"
    assert text_of([event async for event in stream]) == "cached answer"
    assert [(a.cache, a.streamed) for a in observer.seen] == [("miss", True)]


# -- health and models ----------------------------------------------------------------------


async def test_health_scaled_to_zero_is_healthy(fake_runpod, session) -> None:
    report = await make_backend(fake_runpod, session).health()
    assert report.ok
    assert "scaled to zero" in report.detail
    assert "cold-starts" in report.detail


async def test_health_with_workers(fake_runpod, session) -> None:
    fake_runpod.health_body = {
        "jobs": {"inQueue": 2, "inProgress": 1},
        "workers": {"idle": 1, "running": 1},
    }
    report = await make_backend(fake_runpod, session).health()
    assert report.ok
    assert "1 idle, 1 running" in report.detail
    assert "2 in queue" in report.detail
    assert "scaled to zero" not in report.detail


async def test_health_bad_key_is_not_ok(fake_runpod, session) -> None:
    backend = make_backend(fake_runpod, session, api_key=SecretStr("rp-bad-key"))
    report = await backend.health()
    assert not report.ok
    assert "rp-bad-key" not in report.detail


async def test_list_models_scaled_to_zero_never_wakes_a_worker(fake_runpod, session) -> None:
    fake_runpod.models_body = {"data": [{"id": "other:7b"}]}
    models = await make_backend(fake_runpod, session).list_models()
    assert [m.id for m in models] == ["qwen3-coder:30b"]
    assert not [r for r in fake_runpod.requests if "openai" in r.path]


async def test_list_models_asks_a_running_worker(fake_runpod, session) -> None:
    fake_runpod.health_body = {"workers": {"idle": 1, "running": 0}, "jobs": {}}
    fake_runpod.models_body = {"data": [{"id": "qwen3-coder:30b"}, {"id": "qwen3:8b"}]}
    models = await make_backend(fake_runpod, session).list_models()
    assert [m.id for m in models] == ["qwen3-coder:30b", "qwen3:8b"]


# -- warm starts (issue 12) -------------------------------------------------------------------


async def test_a_warm_up_waits_out_the_cold_start_and_learns_the_worker_s_window(session) -> None:
    fake = await FakeRunPod(cold_start_s=0.4).start()
    fake.context_window = 16384
    try:
        backend = make_backend(fake, session)
        assert backend.context_window == 32768  # the image's default until the worker says
        elapsed = await backend.warm_up()
    finally:
        await fake.close()
    assert 0.3 < elapsed < 3.0
    assert backend.context_window == 16384
    (submission,) = fake.submissions()
    assert submission.body == {"input": {"ccrelay_warmup": True}}  # no inference asked for


# -- streamed through the endpoint's OpenAI route (the default) -------------------------------


async def test_the_default_stream_reads_the_openai_route_with_no_polling(
    fake_runpod, session
) -> None:
    backend = RunPodBackend(
        "rp",
        RunPodSettings(
            type="runpod",
            endpoint_url=fake_runpod.endpoint_url,
            api_key=SecretStr(fake_runpod.api_key),
        ),
        session,
    )
    events = await collect(backend)
    assert text_of(events) == "Hello from RunPod"
    assert events[-1]["type"] == "message_stop"
    (body,) = fake_runpod.openai_requests
    assert body == {**REQUEST, "model": "qwen3-coder:30b", "stream": True, **TOOL_CLEARING}
    route = [r.path for r in fake_runpod.requests]
    assert route == [f"/v2/{fake_runpod.endpoint_id}/openai/v1/messages"]
    assert fake_runpod.submissions() == [] and fake_runpod.polls("stream") == []


async def test_the_openai_route_relays_the_real_handler_s_sse_and_its_verdict(
    session, service
) -> None:
    from ccrelay_handler.runpod_handler import RunPodHandler

    handler = RunPodHandler(service.settings, service=service)

    async def worker(job_input):
        async for item in handler.handle({"id": "job-1", "input": job_input}):
            yield item

    fake = await FakeRunPod(worker=worker).start()
    try:
        backend = make_backend(fake, session, stream_mode="openai")
        stream = await backend.open_stream(dict(REQUEST), OPTIONS)
        events = [event async for event in stream]
        again = await backend.open_stream(dict(REQUEST), OPTIONS)
        [event async for event in again]
    finally:
        await fake.close()
    assert "Echo:" in text_of(events)
    assert (stream.cache, again.cache) == ("miss", "hit")


async def test_a_cold_start_on_the_openai_route_is_waited_out(session) -> None:
    fake = await FakeRunPod(cold_start_s=0.3).start()
    try:
        events = await collect(make_backend(fake, session, stream_mode="openai"))
    finally:
        await fake.close()
    assert text_of(events) == "Hello from RunPod"


async def test_a_route_that_breaks_before_the_first_token_is_not_resubmitted(session) -> None:
    async def dies(job_input):
        yield {"error": "engine died"}

    fake = await FakeRunPod(worker=dies).start()
    try:
        with pytest.raises(JobFailed, match="ended before message_stop"):
            await collect(make_backend(fake, session, stream_mode="openai"))
    finally:
        await fake.close()
    assert len(fake.openai_requests) == 1  # a job may exist: never sent twice


async def test_live_jobs_stream_through_poll_mode_too(session) -> None:
    from tests.fakes.runpod_jobs import paced_worker

    fake = await FakeRunPod(worker=paced_worker(["a", "b", "c"], interval_s=0.02)).start()
    try:
        events = await collect(make_backend(fake, session))
    finally:
        await fake.close()
    assert text_of(events) == "abc"


async def test_an_openai_route_with_no_first_token_in_time_is_final(session) -> None:
    async def hangs(job_input):
        await asyncio.sleep(1)  # past the deadlines below
        yield anthropic_sse({"type": "message_stop"})

    fake = await FakeRunPod(worker=hangs).start()
    timeouts = TimeoutSettings(connect_s=1, first_byte_s=0.2, idle_s=0.2, total_s=5)
    try:
        backend = make_backend(
            fake, session, stream_mode="openai", timeouts=timeouts, cold_start_timeout_s=0.1
        )
        with pytest.raises(SubmitUncertain, match="not submitted again"):
            await collect(backend)
    finally:
        await fake.close()
    assert len(fake.openai_requests) == 1
