"""Routing rules and context windows, through a real gateway to profiled fakes (issue 12)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.client.gateway.conftest import config_env, running_gateway, simple_request
from tests.fakes.openai_compat import Answer

CLAUDE_CODE_COMPACTS_ON = re.compile(r"prompt is too long[^0-9]*(\d+)\s*tokens?\s*>\s*(\d+)")


async def three_backends(profiled: Any, **routing: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    servers = {name: await profiled("openai") for name in ("main", "side", "big")}
    for server in servers.values():
        server.profile.models = ("fake-model", "qwen-other", "tiny")
    backends = {
        name: {
            "type": "openai",
            "base_url": server.base_url,
            "model": "fake-model",
            "retry": {"max_attempts": 1},
        }
        for name, server in servers.items()
    }
    return servers, config_env(backends, active="main", routing=routing)


def served(response: Any) -> tuple[str, str, str]:
    return (
        response.headers["x-ccrelay-backend"],
        response.headers["x-ccrelay-route"],
        response.headers["x-ccrelay-model"],
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (simple_request(), ("main", "default", "fake-model")),
        (simple_request(model="side,fake-model"), ("side", "explicit", "fake-model")),
        (simple_request(model="claude-haiku-4-5"), ("side", "background", "fake-model")),
        (simple_request(model="claude-3-5-haiku-20241022"), ("side", "background", "fake-model")),
        (simple_request(thinking={"type": "adaptive"}), ("big", "thinking", "fake-model")),
        (
            simple_request(messages=[{"role": "user", "content": "word " * 4000}]),
            ("big", "long_context", "fake-model"),
        ),
    ],
)
async def test_each_rule_routes(
    profiled: Any, body: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    _, env = await three_backends(
        profiled,
        background={"backend": "side"},
        thinking={"backend": "big"},
        long_context={"backend": "big", "threshold_tokens": 3000},
    )
    async with running_gateway(env) as gateway:
        response = await gateway.post("/v1/messages", body)
        assert response.status == 200, await response.text()
        assert served(response) == expected


async def test_an_explicit_backend_model_reaches_that_backend_as_that_model(profiled: Any) -> None:
    servers, env = await three_backends(profiled)
    async with running_gateway(env) as gateway:
        response = await gateway.post("/v1/messages", simple_request(model="big,qwen-other"))
        assert served(response) == ("big", "explicit", "qwen-other")
        header = await gateway.post(
            "/v1/messages", simple_request(), headers={"x-ccrelay-backend": "side"}
        )
        assert served(header)[:2] == ("side", "header")
    assert servers["big"].requests[-1]["model"] == "qwen-other"
    assert not servers["main"].requests


async def test_a_route_model_applies_to_its_backend_only(profiled: Any) -> None:
    servers, env = await three_backends(profiled, background={"backend": "side", "model": "tiny"})
    async with running_gateway(env) as gateway:
        response = await gateway.post("/v1/messages", simple_request(model="claude-haiku-4-5"))
        assert served(response) == ("side", "background", "tiny")
    assert servers["side"].requests[-1]["model"] == "tiny"


async def test_a_prompt_over_the_window_is_refused_in_the_words_claude_code_compacts_on(
    profiled: Any,
) -> None:
    server = await profiled("ollama", context_length=2048)
    env = config_env(
        {"local": {"type": "ollama", "base_url": server.base_url, "context_window": 2048}}
    )
    body = simple_request(messages=[{"role": "user", "content": "word " * 2000}])
    async with running_gateway(env) as gateway:
        response = await gateway.post("/v1/messages", body)
        error = (await response.json())["error"]
        counted = await gateway.post(
            "/v1/messages/count_tokens", {k: body[k] for k in ("model", "messages")}
        )
        estimate = (await counted.json())["input_tokens"]
        small = await gateway.post("/v1/messages", simple_request())
    assert response.status == 400 and error["type"] == "invalid_request_error"
    match = CLAUDE_CODE_COMPACTS_ON.search(error["message"])
    assert match, error["message"]
    assert int(match.group(1)) == estimate  # count_tokens gives the same estimate
    assert int(match.group(2)) == 2048 - 256  # the window less the output reserve (1/8)
    assert response.headers["x-should-retry"] == "false"
    assert server.requests == [server.requests[-1]]  # only the small prompt was ever sent
    assert server.profile.truncated == 0  # Ollama never had to cut a prompt silently
    assert small.status == 200


async def test_a_prompt_over_the_window_goes_to_the_long_context_route_instead(
    profiled: Any,
) -> None:
    local = await profiled("ollama")
    big = await profiled("openai")
    env = config_env(
        {
            "local": {"type": "ollama", "base_url": local.base_url, "context_window": 2048},
            "big": {"type": "openai", "base_url": big.base_url, "model": "fake-model"},
        },
        active="local",
        routing={"long_context": {"backend": "big", "threshold_tokens": 100_000}},
    )
    body = simple_request(messages=[{"role": "user", "content": "word " * 2000}])
    async with running_gateway(env) as gateway:
        response = await gateway.post("/v1/messages", body)
    assert response.status == 200
    assert response.headers["x-ccrelay-backend"] == "big"
    assert not local.requests


async def test_the_worker_reports_its_window_where_the_backend_can_ask(profiled: Any) -> None:
    """vLLM lists ``max_model_len``, the ccrelay worker ``context_window``: learned, not set."""
    server = await profiled("vllm")
    server.profile.models_body = lambda: {  # type: ignore[method-assign]
        "object": "list",
        "data": [
            {"id": "Qwen/Qwen3-Coder-30B-A3B-Instruct", "object": "model", "max_model_len": 2048}
        ],
    }
    env = config_env(
        {
            "v": {
                "type": "openai",
                "base_url": server.base_url,
                "model": "Qwen/Qwen3-Coder-30B-A3B-Instruct",
            }
        }
    )
    async with running_gateway(env) as gateway:
        backend = gateway.runtime.factory.get("v")
        assert backend.context_window is None
        await backend.list_models()
        assert backend.context_window == 2048
        response = await gateway.post(
            "/v1/messages", simple_request(messages=[{"role": "user", "content": "x " * 5000}])
        )
    assert response.status == 400


async def test_an_error_after_the_gateway_s_own_retries_tells_claude_code_not_to_retry(
    profiled: Any,
) -> None:
    from tests.fakes.providers import Reply  # noqa: F401  (the shape, for the reader)

    server = await profiled("openai")
    env = config_env({"x": {"type": "openai", "base_url": server.base_url, "model": "gone-model"}})
    async with running_gateway(env) as gateway:
        response = await gateway.post("/v1/messages", simple_request())
    assert response.status == 404
    assert response.headers["x-should-retry"] == "false"


def test_routing_names_must_exist(tmp_path: Any) -> None:
    from ccrelay.backends.factory import load_client_config
    from ccrelay_config.errors import ConfigError

    document = {
        "backends": {"a": {"type": "openai", "base_url": "http://h/v1"}},
        "routing": {"thinking": {"backend": "nope"}},
    }
    with pytest.raises(ConfigError) as caught:
        load_client_config(
            {"ENABLE_MULTI_BACKEND": "true", "LLM_BACKEND_CONFIG": json.dumps(document)}
        )
    assert "routing.thinking.backend" in str(caught.value) and "'nope'" in str(caught.value)


async def test_an_answer_keeps_working_under_a_profile(profiled: Any) -> None:
    server = await profiled("openai")
    server.push(Answer(text="ok"))
    env = config_env({"x": {"type": "openai", "base_url": server.base_url, "model": "fake-model"}})
    async with running_gateway(env) as gateway:
        response = await gateway.post("/v1/messages", simple_request())
        assert (await response.json())["content"][0]["text"] == "ok"


HINTS = "x-claude-code-request-class"


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        # Claude Code says what the request is: the class beats the model-name guess
        (simple_request(), {HINTS: "compaction"}, ("big", "class:compaction", "tiny")),
        (
            simple_request(model="claude-haiku-4-5"),
            {HINTS: "main"},
            ("main", "default", "fake-model"),
        ),
        (simple_request(), {HINTS: "auxiliary"}, ("side", "background", "fake-model")),
        (
            simple_request(),
            {HINTS: "subagent", "x-claude-code-agent-type": "Explore"},
            ("side", "agent:Explore", "qwen-other"),
        ),
        (simple_request(), {HINTS: "subagent"}, ("main", "default", "fake-model")),
        # no hint: the old guesses
        (simple_request(model="claude-haiku-4-5"), {}, ("side", "background", "fake-model")),
        # a prompt too big for the window still goes to the long-context backend
        (
            simple_request(messages=[{"role": "user", "content": "word " * 4000}]),
            {HINTS: "compaction"},
            ("big", "long_context", "fake-model"),
        ),
    ],
)
async def test_the_request_class_routes_where_claude_code_says_it(
    profiled: Any, body: dict[str, Any], headers: dict[str, str], expected: tuple[str, str, str]
) -> None:
    _, env = await three_backends(
        profiled,
        background={"backend": "side"},
        long_context={"backend": "big", "threshold_tokens": 3000},
        classes={"compaction": {"backend": "big", "model": "tiny"}},
        agent_types={"Explore": {"backend": "side", "model": "qwen-other"}},
    )
    async with running_gateway(env) as gateway:
        response = await gateway.post("/v1/messages", body, headers=headers)
        assert response.status == 200, await response.text()
        assert served(response) == expected


async def test_an_unknown_request_class_in_the_config_is_refused(profiled: Any) -> None:
    from ccrelay.backends.factory import load_client_config
    from ccrelay_config.errors import ConfigError

    _, env = await three_backends(profiled, classes={"compacting": {"backend": "big"}})
    with pytest.raises(ConfigError, match="compacting"):
        load_client_config(env)
