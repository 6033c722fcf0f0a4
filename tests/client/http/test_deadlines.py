"""Every wait of an attempt has a deadline, and every reply a size limit (issue 13, items 1, 4, 6).

Against real loopback servers with tiny timeouts: each case costs a fraction of a second.
Backoff sleeps are injected and recorded, never slept.
"""

from __future__ import annotations

import time

import aiohttp
import pytest

from ccrelay.backends.types import RequestOptions
from ccrelay.errors import (
    FirstByteTimeout,
    ReplyCutOff,
    ReplyTooLarge,
    StreamStalled,
    TotalTimeout,
)
from tests.client.conftest import REQUEST, Sleeps
from tests.client.http.test_client import TINY, cerebras
from tests.fakes.providers import FakeOpenAI, Reply, openai_completion, openai_text_chunks, sse


async def test_a_streamed_error_whose_body_stalls_fails_within_first_byte(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    """502 headers, then the body never comes: the error body is read under first_byte_s."""
    stall = Reply(status=502, chunks=[b'{"error": {"mess'], stall_after_chunks=1.0)
    fake_openai.push(stall, stall)
    backend = cerebras(session, fake_openai, Sleeps(), retry={"max_attempts": 1})
    started = time.monotonic()
    with pytest.raises(FirstByteTimeout) as caught:
        await backend.open_stream(REQUEST, RequestOptions())
    assert time.monotonic() - started < TINY["first_byte_s"] + 0.5
    assert "HTTP 502 arrived, but not its body" in caught.value.message


async def test_a_non_streamed_body_that_stalls_fails_after_idle_not_total(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    """Headers at once, then half a body and silence: idle_s, per attempt, bounds it."""
    timeouts = {**TINY, "idle_s": 0.2, "total_s": 30}
    stall = Reply(chunks=[b'{"id": "x", ', b'"choices": ['], stall_after_chunks=1.0)
    fake_openai.push(stall, stall, stall)
    sleeps = Sleeps()
    backend = cerebras(session, fake_openai, sleeps, timeouts=timeouts, retry={"max_attempts": 3})
    started = time.monotonic()
    with pytest.raises(StreamStalled) as caught:
        await backend.complete(REQUEST, RequestOptions())
    elapsed = time.monotonic() - started
    assert elapsed < 3 * (timeouts["idle_s"] + 0.3)  # never max_attempts x total_s
    assert caught.value.attempts == 3
    assert "no data for 0.2 s" in caught.value.message


async def test_the_total_deadline_bounds_a_trickling_body(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    pieces = [b" "] * 20  # JSON allows leading whitespace: a body that trickles forever
    fake_openai.push(Reply(chunks=pieces, chunk_delay=0.1))
    backend = cerebras(
        session,
        fake_openai,
        Sleeps(),
        timeouts={**TINY, "idle_s": 1, "total_s": 0.5},
        retry={"max_attempts": 1},
    )
    with pytest.raises(TotalTimeout):
        await backend.complete(REQUEST, RequestOptions())


async def test_a_reset_in_the_middle_of_a_non_streamed_body_is_retried(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    """Nothing reached the caller yet: a body cut off is retried like any transport failure."""
    body = b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"ind'
    fake_openai.push(
        Reply(chunks=[body], abort=True, headers={"Content-Type": "application/json"}),
        Reply(body=openai_completion(text="second time lucky")),
    )
    sleeps = Sleeps()
    backend = cerebras(session, fake_openai, sleeps, retry={"max_attempts": 2})
    completion = await backend.complete(REQUEST, RequestOptions())
    assert completion.attempts == 2
    assert completion.response["content"][0]["text"] == "second time lucky"
    assert len(sleeps.delays) == 1


async def test_a_cut_off_body_on_the_last_attempt_says_so(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    fake_openai.push(Reply(chunks=[b'{"id": "x"'], abort=True))
    backend = cerebras(session, fake_openai, Sleeps(), retry={"max_attempts": 1})
    with pytest.raises(ReplyCutOff) as caught:
        await backend.complete(REQUEST, RequestOptions())
    assert caught.value.retryable and caught.value.status == 502


async def test_a_reply_over_the_size_limit_is_a_clear_502(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    huge = openai_completion(text="x" * 5000)
    fake_openai.push(Reply(body=huge), Reply(chunks=[b"{" + b" " * 3000]))
    backend = cerebras(
        session, fake_openai, Sleeps(), limits={"max_reply_bytes": 2048, "max_event_bytes": 2048}
    )
    for _ in range(2):  # one with Content-Length, one chunked without
        with pytest.raises(ReplyTooLarge) as caught:
            await backend.complete(REQUEST, RequestOptions())
        assert caught.value.status == 502 and not caught.value.retryable
        assert "max_reply_bytes=2048" in caught.value.message
    assert len(fake_openai.requests) == 2  # never retried


async def test_one_streamed_event_over_the_limit_ends_the_attempt(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    endless = b"data: " + b"y" * 5000  # one event that never ends
    fake_openai.push(Reply(chunks=[endless]))
    backend = cerebras(
        session, fake_openai, Sleeps(), limits={"max_reply_bytes": 2048, "max_event_bytes": 2048}
    )
    with pytest.raises(ReplyTooLarge) as caught:
        await backend.open_stream(REQUEST, RequestOptions())
    assert "max_event_bytes=2048" in caught.value.message


async def test_streams_within_the_limits_pass(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    fake_openai.push(Reply(chunks=sse(openai_text_chunks(["a" * 1500, "b"]), done=True)))
    backend = cerebras(
        session, fake_openai, Sleeps(), limits={"max_reply_bytes": 2048, "max_event_bytes": 2048}
    )
    stream = await backend.open_stream(REQUEST, RequestOptions())
    events = [event async for event in stream]
    assert events[-1]["type"] == "message_stop"


class Attempts:
    def __init__(self) -> None:
        self.seen: list = []

    def on_attempt(self, attempt) -> None:  # type: ignore[no-untyped-def]
        self.seen.append(attempt)


async def test_records_carry_a_status_only_when_an_http_answer_came(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession, unused_tcp_port: int
) -> None:
    from ccrelay.backends.cerebras import CerebrasBackend, CerebrasSettings
    from ccrelay.errors import BackendConnectError, UpstreamOverloaded

    observer = Attempts()

    def backend(url: str) -> CerebrasBackend:
        settings = CerebrasSettings.model_validate(
            {
                "type": "cerebras",
                "model": "gpt-oss-120b",
                "base_url": url,
                "api_key": "k",
                "timeouts": TINY,
                "retry": {"max_attempts": 1},
            }
        )
        return CerebrasBackend("c", settings, session, observer=observer, sleep=Sleeps())

    with pytest.raises(BackendConnectError):
        await backend(f"http://127.0.0.1:{unused_tcp_port}/v1").complete(REQUEST, RequestOptions())
    fake_openai.push(Reply(status=503, body={"error": {"message": "busy"}}))
    with pytest.raises(UpstreamOverloaded):
        await backend(fake_openai.base_url).complete(REQUEST, RequestOptions())
    refused, busy = observer.seen
    assert (refused.outcome, refused.status) == ("connect_failed", None)  # no answer: no status
    assert (busy.outcome, busy.status) == ("overloaded", 503)
