"""One `RequestSummary` per client request, across retries and failover, told to the router's
observer: for plain calls, streams that end well, break or are abandoned, and refusals."""

from __future__ import annotations

import aiohttp
import pytest

from ccrelay.backends.factory import BackendFactory
from ccrelay.backends.types import RequestOptions
from ccrelay.errors import AllBackendsFailed, StreamInterrupted, UnknownBackendError
from ccrelay.latency.observer import RequestSummary
from ccrelay.routing.chain import Router
from ccrelay.routing.summary import conversation_key
from tests.client.conftest import REQUEST, Clock, Sleeps
from tests.client.routing.test_chain import broken_after_first_event, busy, config_for
from tests.fakes.providers import FakeOpenAI, Reply, openai_text_chunks, sse


class Summaries:
    """The router's observer in these tests: it keeps what it is told."""

    def __init__(self) -> None:
        self.seen: list[RequestSummary] = []

    def on_request(self, summary: RequestSummary) -> None:
        self.seen.append(summary)


def build(
    session: aiohttp.ClientSession, primary: FakeOpenAI, secondary: FakeOpenAI
) -> tuple[Router, Summaries, Sleeps]:
    sleeps, summaries = Sleeps(), Summaries()
    config = config_for(primary.base_url, secondary.base_url, threshold=5)
    factory = BackendFactory(config, session, sleep=sleeps, rng=lambda: 0.5)
    return Router(factory, clock=Clock(), observer=summaries), summaries, sleeps


async def test_a_request_served_after_failover_is_one_summary(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    router, summaries, sleeps = build(session, fake_openai, secondary)
    fake_openai.push(busy(), busy())
    await router.complete(REQUEST, RequestOptions(request_id="req_1"))
    [summary] = summaries.seen
    assert (summary.request_id, summary.backend, summary.outcome) == ("req_1", "secondary", "ok")
    assert (summary.attempts, summary.failovers, summary.status) == (3, 1, 200)
    assert summary.requested_model == "claude-sonnet-4-5" and summary.model == "m2"
    assert sleeps.delays and summary.backoff_ms == pytest.approx(sum(sleeps.delays) * 1000)
    assert summary.latency_ms > 0 and summary.ttfb_ms is None and not summary.streamed


async def test_a_stream_is_summarised_when_it_ends(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    router, summaries, _ = build(session, fake_openai, secondary)
    fake_openai.push(Reply(chunks=sse(openai_text_chunks(["Hel", "lo"]), done=True)))
    served = await router.open_stream(REQUEST, RequestOptions(request_id="req_2"))
    stream = served.result
    assert summaries.seen == [], "not before it ends"
    async for _event in stream:
        pass
    [summary] = summaries.seen
    assert (summary.outcome, summary.backend, summary.attempts, summary.streamed) == (
        "ok",
        "primary",
        1,
        True,
    )
    assert summary.ttfb_ms is not None and summary.ttfb_ms <= summary.latency_ms
    assert summary.usage.get("output_tokens")


async def test_a_broken_or_abandoned_stream_says_so(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    router, summaries, _ = build(session, fake_openai, secondary)
    fake_openai.push(broken_after_first_event())
    served = await router.open_stream(REQUEST, RequestOptions(request_id="req_3"))
    stream = served.result
    with pytest.raises(StreamInterrupted):
        async for _event in stream:
            pass
    await stream.aclose()
    fake_openai.push(Reply(chunks=sse(openai_text_chunks(["a", "b", "c"]), done=True)))
    served = await router.open_stream(REQUEST, RequestOptions(request_id="req_4"))
    stream = served.result
    await stream.aclose()  # the caller went away after the first event
    outcomes = [(s.request_id, s.outcome) for s in summaries.seen]
    assert outcomes == [("req_3", "reply_cut_off"), ("req_4", "abandoned")]  # what broke it


async def test_refused_requests_are_summarised_too(
    fake_openai: FakeOpenAI, secondary: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    router, summaries, _ = build(session, fake_openai, secondary)
    fake_openai.push(busy(), busy())
    secondary.push(busy(), busy())
    with pytest.raises(AllBackendsFailed):
        await router.complete(REQUEST, RequestOptions(request_id="req_5"))
    with pytest.raises(UnknownBackendError):
        await router.complete(REQUEST, RequestOptions(request_id="req_6"), backend="nope")
    failed, unknown = summaries.seen
    assert (failed.outcome, failed.backend, failed.attempts, failed.failovers) == (
        "all_failed",
        "secondary",
        4,
        1,
    )
    assert failed.status == 503 and failed.backoff_ms > 0
    assert (unknown.outcome, unknown.backend, unknown.attempts) == ("unknown_backend", "", 0)


def test_a_conversation_is_told_apart_without_reading_it() -> None:
    main = {**REQUEST, "metadata": {"user_id": "user_x_session_1"}, "system": "You are Claude."}
    later = {**main, "messages": [*main["messages"], {"role": "assistant", "content": "ok"}]}
    sub_agent = {**main, "tools": [{"name": "Read", "input_schema": {"type": "object"}}]}
    other_session = {**main, "metadata": {"user_id": "user_x_session_2"}}
    assert conversation_key(main) == conversation_key(later)
    assert len({conversation_key(r) for r in (main, sub_agent, other_session)}) == 3
    assert "You are Claude" not in conversation_key(main)
