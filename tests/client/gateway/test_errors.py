"""Every failure answered in Anthropic's error shape, with its status; streams that break."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import aiohttp
import pytest
from aiohttp import web

from ccrelay.backends.base import Backend
from ccrelay.backends.registry import BackendRegistry
from ccrelay.backends.types import ModelInfo, RequestOptions
from ccrelay.errors import GatewayShuttingDown, UpstreamOverloaded
from ccrelay.gateway.errors import ccrelay_error_response, reply_status
from tests.client.gateway.conftest import (
    Gateway,
    config_env,
    openai_backend,
    running_gateway,
    simple_request,
)
from tests.fakes.harness import LoopbackServer
from tests.fakes.providers import FakeOpenAI, Reply, openai_text_chunks, sse


async def error_of(response: aiohttp.ClientResponse) -> dict[str, Any]:
    body = await response.json()
    assert set(body) == {"type", "error", "request_id"}
    assert body["type"] == "error"
    assert set(body["error"]) == {"type", "message"}
    assert body["request_id"] == response.headers["request-id"]
    return body["error"]


@pytest.mark.parametrize(
    ("upstream", "status", "error_type"),
    [
        (400, 400, "invalid_request_error"),
        (401, 401, "authentication_error"),
        (403, 401, "authentication_error"),
        (404, 404, "not_found_error"),
        (413, 413, "request_too_large"),
        (422, 400, "invalid_request_error"),
        (500, 502, "api_error"),  # an upstream failure, not the gateway's own 500
        # a spent overload is not 529: Claude Code would retry that despite x-should-retry
        (503, 503, "api_error"),
        (529, 503, "api_error"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_errors_map_to_anthropic_statuses(
    gateway: Gateway,
    fake_openai: FakeOpenAI,
    upstream: int,
    status: int,
    error_type: str,
    stream: bool,
) -> None:
    fake_openai.push(Reply(status=upstream, body={"error": {"message": "upstream says no"}}))
    response = await gateway.post("/v1/messages", simple_request(stream=stream))
    assert response.status == status
    assert response.headers["Content-Type"].startswith("application/json")
    error = await error_of(response)
    assert error["type"] == error_type
    assert "upstream says no" in error["message"]
    assert response.headers["x-ccrelay-backend"] == "openai"


@pytest.mark.parametrize("stream", [False, True])
async def test_rate_limit_passes_retry_after_on(
    gateway: Gateway, fake_openai: FakeOpenAI, stream: bool
) -> None:
    fake_openai.push(
        Reply(status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "7"})
    )
    response = await gateway.post("/v1/messages", simple_request(stream=stream))
    assert response.status == 429
    assert response.headers["retry-after"] == "7"
    assert response.headers["retry-after-ms"] == "7000"
    assert (await error_of(response))["type"] == "rate_limit_error"


async def test_unreachable_backend_is_a_gateway_error(fake_openai: FakeOpenAI) -> None:
    await fake_openai.close()
    env = config_env({"openai": openai_backend(fake_openai.base_url)})
    async with running_gateway(env) as gateway:
        response = await gateway.post("/v1/messages", simple_request())
        assert response.status == 502
        error = await error_of(response)
        assert error["type"] == "api_error"
        assert "cannot connect" in error["message"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "must be a JSON object"),
        (json.dumps({"model": "m", "messages": [{"role": "user"}]}).encode(), "max_tokens"),
        (json.dumps({"max_tokens": 5, "messages": [{"role": "user"}]}).encode(), "model"),
        (json.dumps({"model": "m", "max_tokens": 5}).encode(), "messages"),
        (json.dumps({"model": "m", "max_tokens": "5", "messages": [{}]}).encode(), "max_tokens"),
        (json.dumps({"model": "m", "max_tokens": True, "messages": [{}]}).encode(), "max_tokens"),
        (json.dumps({"model": 7, "max_tokens": 5, "messages": [{}]}).encode(), "model"),
        (json.dumps({"model": "m", "max_tokens": 5, "messages": []}).encode(), "messages"),
    ],
)
async def test_bad_requests_are_400(
    gateway: Gateway, fake_openai: FakeOpenAI, body: bytes, problem: str
) -> None:
    response = await gateway.client.post(
        gateway.url + "/v1/messages", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    error = await error_of(response)
    assert error["type"] == "invalid_request_error"
    assert problem in error["message"]
    assert fake_openai.requests == []


async def test_translation_rejects_malformed_content_with_400(
    gateway: Gateway, fake_openai: FakeOpenAI
) -> None:
    request = simple_request(messages=[{"role": "user", "content": [{"type": "tool_use"}]}])
    response = await gateway.post("/v1/messages", request)
    assert response.status == 400
    assert (await error_of(response))["type"] == "invalid_request_error"


async def test_body_over_the_limit_is_413(fake_openai: FakeOpenAI) -> None:
    env = config_env({"openai": openai_backend(fake_openai.base_url)})
    async with running_gateway(env, max_body=64 * 1024) as gateway:
        big = simple_request(messages=[{"role": "user", "content": "x" * 100_000}])
        response = await gateway.post("/v1/messages", big)
        assert response.status == 413
        error = await error_of(response)
        assert error["type"] == "request_too_large"
        # the connection stays usable for the next request
        ok = await gateway.post("/v1/messages", simple_request())
        assert ok.status == 200
    assert len(fake_openai.requests) == 1


def test_default_body_limit_is_anthropics_32_mb() -> None:
    from ccrelay.gateway import MAX_BODY_BYTES

    assert MAX_BODY_BYTES == 32 * 1024 * 1024


async def test_unknown_route_and_method(gateway: Gateway) -> None:
    missing = await gateway.post("/v1/complete", simple_request())
    assert missing.status == 404
    assert (await error_of(missing))["type"] == "not_found_error"
    wrong = await gateway.client.get(gateway.url + "/v1/messages")
    assert wrong.status == 405
    assert (await error_of(wrong))["type"] == "invalid_request_error"


# -- streams that break after they started -------------------------------------------------


def sse_kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events if e["type"] != "ping"]


async def test_mid_stream_disconnect_ends_with_error_event(
    gateway: Gateway, fake_openai: FakeOpenAI
) -> None:
    chunks = sse(openai_text_chunks(["Hello", " wor"]))[:3]  # role, "Hello", " wor"; no finish
    fake_openai.push(Reply(chunks=chunks, abort=True))
    status, events = await gateway.events(simple_request())
    assert status == 200
    kinds = sse_kinds(events)
    assert kinds[0] == "message_start"
    assert kinds[-1] == "error"
    assert "message_stop" not in kinds
    assert "message_delta" not in kinds
    assert events[-1]["event"] == "error"
    assert events[-1]["error"]["type"] in ("api_error", "overloaded_error")
    assert set(events[-1]) == {"event", "type", "error"}


async def test_stream_that_ends_early_is_not_passed_off_as_complete(
    gateway: Gateway, fake_openai: FakeOpenAI
) -> None:
    chunks = sse(openai_text_chunks(["Hello"]))[:2]  # clean EOF, but no finish_reason
    fake_openai.push(Reply(chunks=chunks))
    status, events = await gateway.events(simple_request())
    kinds = sse_kinds(events)
    assert status == 200
    assert kinds[-1] == "error"
    assert "message_stop" not in kinds


async def test_error_object_inside_the_stream(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    chunks = sse(openai_text_chunks(["Hi"]))[:2]
    chunks += sse([{"error": {"message": "model overloaded", "code": 503}}])
    fake_openai.push(Reply(chunks=chunks))
    status, events = await gateway.events(simple_request())
    assert status == 200
    assert sse_kinds(events)[-1] == "error"
    assert events[-1]["error"]["type"] == "overloaded_error"
    assert "model overloaded" in events[-1]["error"]["message"]


async def test_client_disconnect_closes_the_upstream_stream() -> None:
    """The caller hangs up mid-stream: the gateway must stop reading (and close) upstream."""
    closed = asyncio.Event()
    sent = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunks = sse(openai_text_chunks(["tick"] * 1000))
        try:
            for piece in chunks:
                await response.write(piece)
                sent += 1
                await asyncio.sleep(0.02)
        except (ConnectionError, asyncio.CancelledError):
            closed.set()
            raise
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", endless)
    upstream = await LoopbackServer(app).start()
    try:
        env = config_env({"openai": openai_backend(f"{upstream.url}/v1")})
        async with running_gateway(env) as gateway:
            async with gateway.client.post(
                gateway.url + "/v1/messages", json=simple_request(stream=True)
            ) as response:
                assert response.status == 200
                seen = 0
                async for line in response.content:
                    if line.startswith(b"event: content_block_delta"):
                        seen += 1
                        if seen == 3:
                            break
                response.close()  # hang up
            await asyncio.wait_for(closed.wait(), 5)
            assert sent < 100
    finally:
        await upstream.close()


# -- bugs: a generic 500 and a generic stream error, logged without secrets ---------------------


class ExplodingBackend(Backend):
    """A plugin backend with a bug: it raises a non-ccrelay exception naming its key."""

    type_name: ClassVar[str] = "exploding"

    async def _complete_once(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> tuple[dict[str, Any], str | None]:
        raise RuntimeError(f"bug while using key {self.settings.api_key.get_secret_value()}")  # type: ignore[union-attr]

    async def _stream_once(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> AsyncIterator[dict[str, Any]]:
        yield {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 1, "output_tokens": 0},
            },
        }
        raise RuntimeError(f"stream bug, key {self.settings.api_key.get_secret_value()}")  # type: ignore[union-attr]

    async def list_models(self) -> list[ModelInfo]:
        return []


async def test_unexpected_exception_is_a_generic_500_logged_without_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.client.gateway.conftest import SECRET

    registry = BackendRegistry()
    registry.register("exploding", ExplodingBackend)
    env = config_env(
        {
            "boom": {
                "type": "exploding",
                "api_key": SECRET,
                "model": "m",
                "retry": {"max_attempts": 1},
            }
        }
    )
    caplog.set_level("DEBUG", logger="ccrelay")
    async with running_gateway(env, registry=registry) as gateway:
        response = await gateway.post("/v1/messages", simple_request())
        text = await response.text()
        assert response.status == 500
        error = json.loads(text)["error"]
        assert error["type"] == "api_error"
        assert "internal error" in error["message"]
        assert "RuntimeError" not in text and "Traceback" not in text
        status, events = await gateway.events(simple_request())
        assert status == 200
        assert [e["type"] for e in events] == ["message_start", "error"]
        assert events[-1]["error"] == {
            "type": "api_error",
            "message": "internal error in the ccrelay gateway",
        }
    assert "RuntimeError" in caplog.text  # the bug is logged, with its traceback...
    assert "Traceback" in caplog.text
    assert SECRET not in caplog.text  # ...scrubbed of the key
    assert SECRET not in text


# -- a spent overload, by client version (issue 23) ---------------------------------------------

UA_332 = "claude-cli/2.1.332 (external, sdk-cli)"
UA_197 = "claude-cli/2.1.197 (external, cli)"


@pytest.mark.parametrize(
    ("user_agent", "answer"),
    [
        (UA_332, (529, "overloaded_error")),
        ("claude-cli/2.1.400 (external, cli)", (529, "overloaded_error")),
        ("claude-cli/2.2.0 (external, cli)", (529, "overloaded_error")),
        ("claude-cli/3.0.1", (529, "overloaded_error")),
        (UA_197, (503, "api_error")),
        ("claude-cli/2.1.331 (external, cli)", (503, "api_error")),
        ("claude-code/2.1.332", (503, "api_error")),  # its model discovery, not its messages
        ("python-httpx/0.28 anthropic-sdk", (503, "api_error")),
        (None, (503, "api_error")),
    ],
)
def test_a_spent_overload_is_a_529_only_to_clients_that_honour_x_should_retry(
    user_agent: str | None, answer: tuple[int, str]
) -> None:
    """2.1.332 drops a 529 that says x-should-retry: false (1 request); 2.1.197 retries any
    529 or overloaded_error before it reads the header (3 requests): it gets a 503."""
    error = UpstreamOverloaded("cerebras", "HTTP 529: busy", upstream_status=529)
    response = ccrelay_error_response(error, "req_1", user_agent=user_agent)
    body = json.loads(response.body)  # type: ignore[arg-type]
    assert (response.status, body["error"]["type"]) == answer
    assert response.headers["x-should-retry"] == "false"
    assert "HTTP 529" in body["error"]["message"]
    assert reply_status(error, user_agent) == answer


def test_a_draining_gateway_is_a_529_to_every_client() -> None:
    draining = GatewayShuttingDown("shutting down")
    for user_agent in (UA_197, UA_332, None):
        assert reply_status(draining, user_agent) == (529, "overloaded_error")


async def test_every_backend_failing_leads_with_the_refused_key(fake_openai: FakeOpenAI) -> None:
    from tests.conftest import free_port

    cerebras = {**openai_backend(fake_openai.base_url), "type": "cerebras"}
    anthropic = {
        "type": "anthropic",
        "base_url": f"http://127.0.0.1:{free_port()}",
        "retry": {"max_attempts": 1},
    }
    env = config_env(
        {"cerebras": cerebras, "anthropic": anthropic},
        active="cerebras",
        fallback=["cerebras", "anthropic"],
    )
    wrong_key = {
        "message": "Wrong API Key",
        "type": "invalid_request_error",
        "param": "api_key",
        "code": "wrong_api_key",
    }
    fake_openai.push(Reply(status=401, body=wrong_key))
    async with running_gateway(env) as gateway:
        response = await gateway.post("/v1/messages", simple_request())
        error = await error_of(response)
    assert response.status == 401  # the refused key, not the last backend's 502
    assert error["type"] == "authentication_error"
    assert error["message"].startswith("cerebras refused the key (auth_failed): ")
    assert "; then anthropic: cannot connect to 127.0.0.1" in error["message"]
    assert "temporary" not in error["message"]
    assert response.headers["x-should-retry"] == "false"
