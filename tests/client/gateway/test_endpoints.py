"""count_tokens, /v1/models, /health, and secrets kept out of every reply, header and log."""

from __future__ import annotations

import json

import pytest

from ccrelay_translate import estimate_tokens
from tests.client.gateway.conftest import (
    BASH_TOOL,
    SECRET,
    Gateway,
    config_env,
    openai_backend,
    running_gateway,
    simple_request,
)
from tests.fakes.providers import FakeAnthropic, FakeOpenAI, Reply


def count_request() -> dict:
    request = simple_request(tools=[BASH_TOOL], system="You are terse.")
    del request["max_tokens"]  # count_tokens does not take it
    return request


async def test_count_tokens_estimates_for_openai_backends(
    gateway: Gateway, fake_openai: FakeOpenAI
) -> None:
    request = count_request()
    response = await gateway.post("/v1/messages/count_tokens?beta=true", request)
    assert response.status == 200
    assert await response.json() == {"input_tokens": estimate_tokens(request)}
    assert response.headers["x-ccrelay-token-count"] == "estimate"
    assert response.headers["x-ccrelay-backend"] == "openai"
    assert fake_openai.requests == []  # no upstream call for an estimate


async def test_count_tokens_validates(gateway: Gateway) -> None:
    response = await gateway.post("/v1/messages/count_tokens", {"model": "m"})
    assert response.status == 400
    assert "messages" in (await response.json())["error"]["message"]


async def test_count_tokens_is_exact_through_the_anthropic_backend(
    fake_anthropic: FakeAnthropic,
) -> None:
    env = config_env(
        {
            "anthropic": {
                "type": "anthropic",
                "base_url": fake_anthropic.url,
                "retry": {"max_attempts": 1},
                "forward_credentials": True,  # a stand-in for Anthropic: trusted in so many words
            }
        }
    )
    async with running_gateway(env) as gateway:
        response = await gateway.post(
            "/v1/messages/count_tokens",
            count_request(),
            headers={"x-api-key": "sk-ant-caller", "anthropic-beta": "token-counting-2024-11-01"},
        )
        assert response.status == 200
        assert await response.json() == {"input_tokens": 42}
        assert response.headers["x-ccrelay-token-count"] == "exact"
        sent = fake_anthropic.requests[-1]
        assert sent.path == "/v1/messages/count_tokens"
        assert sent.body == count_request()
        assert sent.headers["x-api-key"] == "sk-ant-caller"
        assert sent.headers["anthropic-beta"] == "token-counting-2024-11-01"

        # upstream trouble: an estimate rather than a failure
        fake_anthropic.push(Reply(status=503, body={"error": {"message": "busy"}}))
        fallback = await gateway.post(
            "/v1/messages/count_tokens", count_request(), headers={"x-api-key": "sk-ant-caller"}
        )
        assert fallback.status == 200
        assert fallback.headers["x-ccrelay-token-count"] == "estimate"
        # the caller's own mistake is passed on
        fake_anthropic.push(
            Reply(
                status=400,
                body={
                    "type": "error",
                    "error": {"type": "invalid_request_error", "message": "bad tools"},
                },
            )
        )
        bad = await gateway.post(
            "/v1/messages/count_tokens", count_request(), headers={"x-api-key": "sk-ant-caller"}
        )
        assert bad.status == 400
        assert "bad tools" in (await bad.json())["error"]["message"]


async def test_models_list_in_anthropic_shape(fake_openai: FakeOpenAI) -> None:
    backends = {
        "openai": openai_backend(
            fake_openai.base_url,
            models={"claude-sonnet-4-5": "big-model", "claude-*haiku*": "small-model"},
        ),
        "spare": openai_backend(fake_openai.base_url, model="spare-model"),
    }
    async with running_gateway(config_env(backends, fallback=["spare"])) as gateway:
        response = await gateway.client.get(gateway.url + "/v1/models")
        body = await response.json()
        assert response.status == 200
        assert [m["id"] for m in body["data"]] == [
            "claude-sonnet-4-5",
            "fake-model",
            "spare-model",
            # picker ids: what Claude Code's /model keeps (ids with "claude") to switch backend
            "claude-via-openai-fake-model",
            "claude-via-openai-big-model",
            "claude-via-openai-small-model",
            "claude-via-spare-spare-model",
        ]
        assert body["has_more"] is False
        assert body["first_id"] == "claude-sonnet-4-5"
        assert body["last_id"] == "claude-via-spare-spare-model"
        first = body["data"][0]
        assert first["type"] == "model"
        assert first["display_name"] == "claude-sonnet-4-5 -> big-model (openai)"
        assert first["created_at"].endswith("Z")
        assert first["lifecycle"] == "active"
        picker = next(m for m in body["data"] if m["id"] == "claude-via-openai-big-model")
        assert picker["display_name"] == "big-model on openai"
        assert picker["description"] == "ccrelay: openai,big-model"
        one = await gateway.client.get(gateway.url + "/v1/models/spare-model")
        assert (await one.json())["id"] == "spare-model"
        missing = await gateway.client.get(gateway.url + "/v1/models/claude-opus-9")
        assert missing.status == 404
        assert (await missing.json())["error"]["type"] == "not_found_error"


async def test_health_reports_circuits_and_deep_checks(fake_openai: FakeOpenAI) -> None:
    env = config_env(
        {"openai": openai_backend(fake_openai.base_url, circuit={"failure_threshold": 1})}
    )
    async with running_gateway(env) as gateway:
        health = await gateway.client.get(gateway.url + "/health")
        body = await health.json()
        assert health.status == 200
        assert body["status"] == "ok"
        assert body["chain"] == ["openai"]
        assert body["backends"]["openai"]["circuit"] == "closed"
        assert body["backends"]["openai"]["type"] == "openai"

        deep = await (await gateway.client.get(gateway.url + "/health?deep=1")).json()
        assert deep["backends"]["openai"]["ok"] is True
        assert deep["backends"]["openai"]["detail"] == "2 models"

        fake_openai.push(Reply(status=500, body={"error": {"message": "down"}}))
        failed = await gateway.post("/v1/messages", simple_request())
        assert failed.status == 502  # the upstream failed, not the gateway
        after = await gateway.client.get(gateway.url + "/health")
        assert after.status == 503
        body = await after.json()
        assert body["status"] == "unavailable"
        assert body["backends"]["openai"]["circuit"] == "open"
        # an open circuit answers at once, without calling the backend
        calls = len(fake_openai.requests)
        refused = await gateway.post("/v1/messages", simple_request())
        assert refused.status == 503
        assert (await refused.json())["error"]["type"] == "api_error"
        assert len(fake_openai.requests) == calls


async def test_secrets_never_reach_replies_headers_or_logs(
    fake_openai: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level("DEBUG")
    env = config_env({"openai": openai_backend(fake_openai.base_url)})
    seen: list[str] = []
    async with running_gateway(env) as gateway:
        # providers echo keys back in their errors; the backend scrubs them
        echo = {"error": {"message": f"Incorrect API key provided: {SECRET}", "code": "bad_key"}}
        fake_openai.push(
            Reply(status=401, body=echo),
            Reply(status=429, body=echo),
            Reply(status=500, body=echo),
        )
        for _ in range(3):
            response = await gateway.post("/v1/messages", simple_request())
            seen += [await response.text(), json.dumps(dict(response.headers))]
        fake_openai.push(Reply(status=401, body=echo))
        streamed = await gateway.post("/v1/messages", simple_request(stream=True))
        assert streamed.status == 401
        seen += [await streamed.text(), json.dumps(dict(streamed.headers))]
        ok = await gateway.post("/v1/messages", simple_request())
        seen += [await ok.text(), json.dumps(dict(ok.headers))]
        for path in ("/health", "/health?deep=1", "/v1/models"):
            response = await gateway.client.get(gateway.url + path)
            seen += [await response.text(), json.dumps(dict(response.headers))]
    captured = capsys.readouterr()
    seen += [caplog.text, captured.out, captured.err]
    assert "Incorrect API key provided: ***" in seen[0]
    for text in seen:
        assert SECRET not in text


async def test_the_official_sdk_reads_the_model_list_under_strict_validation(
    fake_openai: FakeOpenAI,
) -> None:
    """anthropic 2.16's ModelInfo requires `lifecycle`; strict validation refuses a list
    without it."""
    import anthropic

    backends = {"openai": openai_backend(fake_openai.base_url, models={"claude-x": "big"})}
    async with running_gateway(config_env(backends)) as gateway:
        client = anthropic.AsyncAnthropic(
            base_url=gateway.url, api_key="unused", _strict_response_validation=True
        )
        async with client:
            page = await client.models.list(limit=1000)
            ids = [model.id async for model in page]
            one = await client.models.retrieve("claude-via-openai-big")
    assert "claude-via-openai-big" in ids
    assert one.display_name == "big on openai"


async def test_a_picker_id_reaches_its_backend_as_its_model(
    fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    backends = {
        "anthropic": {"type": "anthropic", "base_url": fake_anthropic.url},
        "openai": openai_backend(fake_openai.base_url, models={"claude-*": "big-model"}),
    }
    async with running_gateway(config_env(backends, active="anthropic")) as gateway:
        request = simple_request(model="claude-via-openai-big-model")
        response = await gateway.post("/v1/messages", request)
        assert response.status == 200
        assert response.headers["x-ccrelay-backend"] == "openai"
        assert response.headers["x-ccrelay-route"] == "explicit"
        assert fake_openai.requests[-1].body["model"] == "big-model"
        assert fake_anthropic.requests == []
