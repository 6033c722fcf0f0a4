"""A real gateway on a loopback port in front of the fake providers of tests/fakes/providers.py.

The gateway is built the way `ccrelay serve` builds it: config from an environment dict
(`ENABLE_MULTI_BACKEND` + inline `LLM_BACKEND_CONFIG`), one `Runtime`, `build_app`, a
`GatewayServer` on 127.0.0.1:0. Tests talk to it over HTTP with aiohttp or the anthropic SDK.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from ccrelay.backends.factory import load_client_config, new_session
from ccrelay.backends.registry import BackendRegistry
from ccrelay.gateway import GatewayServer, build_app
from ccrelay.gateway.app import MAX_BODY_BYTES
from ccrelay.runtime import Runtime
from ccrelay_wire.sse import SSEDecoder
from tests.fakes.providers import FakeOpenAI

SECRET = "sk-upstream-SECRET-7f3a9c51d2"
"""The configured backend key: it must never appear in a reply, a header or a log."""

NO_RETRY = {"max_attempts": 1, "initial_backoff_s": 0}


def openai_backend(base_url: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "openai",
        "base_url": base_url,
        "api_key": SECRET,
        "model": "fake-model",
        "retry": NO_RETRY,
        **fields,
    }


def config_env(backends: dict[str, Any], **top: Any) -> dict[str, str]:
    document = {"backends": backends, **top}
    return {"ENABLE_MULTI_BACKEND": "true", "LLM_BACKEND_CONFIG": json.dumps(document)}


@dataclass
class Gateway:
    url: str
    client: aiohttp.ClientSession
    runtime: Runtime
    server: GatewayServer

    async def post(self, path: str, body: Any, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.client.post(self.url + path, json=body, **kwargs)

    async def events(self, body: dict[str, Any], **kwargs: Any) -> tuple[int, list[dict]]:
        """POST a streamed request; (status, [{"event": name, **data}]) of every SSE event."""
        async with self.client.post(
            self.url + "/v1/messages", json={**body, "stream": True}, **kwargs
        ) as response:
            raw = await response.read()
        decoder = SSEDecoder()
        decoded = decoder.feed(raw) + decoder.flush()
        assert not decoder.truncated
        return response.status, [{"event": e.event, **json.loads(e.data)} for e in decoded]


@asynccontextmanager
async def running_gateway(
    env: dict[str, str],
    *,
    auth_token: str | None = None,
    max_body: int = MAX_BODY_BYTES,
    registry: BackendRegistry | None = None,
) -> AsyncIterator[Gateway]:
    registry = registry or BackendRegistry()
    runtime = Runtime(load_client_config(env, registry), new_session(), registry=registry)
    server = GatewayServer(build_app(runtime, auth_token=auth_token, max_body=max_body))
    await server.start()
    try:
        async with aiohttp.ClientSession() as client:
            yield Gateway(server.url, client, runtime, server)
    finally:
        await server.close()
        await runtime.aclose()


@pytest.fixture
async def gateway(fake_openai: FakeOpenAI) -> AsyncIterator[Gateway]:
    """The gateway with one `openai` backend: the fake OpenAI server."""
    env = config_env({"openai": openai_backend(fake_openai.base_url)})
    async with running_gateway(env) as running:
        yield running


def simple_request(**fields: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Say hello"}],
        **fields,
    }


BASH_TOOL = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}},
        "required": ["command"],
    },
}
