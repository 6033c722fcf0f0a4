"""The backend registry (entry points), the factory sharing one session, and the runtime."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint
from typing import Any

import aiohttp
import pytest

from ccrelay.backends.anthropic import AnthropicBackend
from ccrelay.backends.base import Backend
from ccrelay.backends.cerebras import CerebrasBackend
from ccrelay.backends.factory import BackendFactory, load_client_config
from ccrelay.backends.openai import OpenAIBackend
from ccrelay.backends.registry import BackendRegistry
from ccrelay.backends.types import ModelInfo, RequestOptions
from ccrelay.errors import UnknownBackendError
from ccrelay.runtime import Runtime
from ccrelay_config.errors import UnknownBackendTypeError
from ccrelay_config.models import BackendSettings
from tests.fakes.providers import FakeOpenAI


class EchoSettings(BackendSettings):
    greeting: str = "hello"


class EchoBackend(Backend):
    """A plugin backend, registered at runtime the way an entry point would provide it."""

    type_name = "echo"
    Settings = EchoSettings

    async def _complete_once(
        self, request: dict[str, Any], model: str, options: RequestOptions
    ) -> tuple[dict[str, Any], str | None]:
        assert isinstance(self.settings, EchoSettings)
        text = self.settings.greeting
        return {"type": "message", "content": [{"type": "text", "text": text}], "usage": {}}, None

    async def _stream_once(self, request: dict[str, Any], model: str, options: RequestOptions):  # type: ignore[override]
        yield {"type": "message_stop"}

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo("echo-1")]


def environ(document: dict) -> dict[str, str]:
    return {"ENABLE_MULTI_BACKEND": "true", "LLM_BACKEND_CONFIG": json.dumps(document)}


def test_builtin_types_come_from_entry_points() -> None:
    registry = BackendRegistry()
    assert {"anthropic", "cerebras", "openai"} <= set(registry.known_types())
    assert registry.backend_class("anthropic") is AnthropicBackend
    assert registry.backend_class("openai") is OpenAIBackend
    assert registry.backend_class("nope") is None
    assert registry.settings_for("nope") is None
    assert registry.settings_for("cerebras") is CerebrasBackend.Settings


def test_entry_point_that_is_not_a_backend_is_refused() -> None:
    bogus = EntryPoint(name="bogus", value="json:dumps", group="ccrelay.backends")
    registry = BackendRegistry([bogus])
    assert registry.known_types() == ["bogus"]
    with pytest.raises(TypeError, match="not a Backend subclass"):
        registry.backend_class("bogus")


async def test_plugin_type_gets_its_own_settings_and_fields(session: aiohttp.ClientSession) -> None:
    registry = BackendRegistry([])
    registry.register("echo", EchoBackend)
    config = load_client_config(
        environ({"backends": {"e": {"type": "echo", "greeting": "hi there", "model": "m"}}}),
        registry,
    )
    assert isinstance(config.backends["e"], EchoSettings)
    factory = BackendFactory(config, session, registry=registry)
    completion = await factory.get("e").complete({"messages": []}, RequestOptions())
    assert completion.response["content"][0]["text"] == "hi there"
    with pytest.raises(UnknownBackendTypeError) as caught:
        load_client_config(environ({"backends": {"x": {"type": "cerebras"}}}), registry)
    assert "use one of: echo" in str(caught.value)


async def test_factory_builds_once_and_shares_the_session(
    session: aiohttp.ClientSession, fake_openai: FakeOpenAI
) -> None:
    config = load_client_config(
        environ(
            {
                "backends": {
                    "c": {"type": "cerebras", "base_url": fake_openai.base_url, "api_key": "k"},
                    "o": {"type": "openai", "base_url": fake_openai.base_url},
                }
            }
        )
    )
    factory = BackendFactory(config, session)
    first = factory.get("c")
    assert factory.get("c") is first
    assert isinstance(first, CerebrasBackend)
    backends = factory.all()
    assert [b.name for b in backends] == ["c", "o"]
    assert all(b.session is session for b in backends)
    with pytest.raises(UnknownBackendError) as caught:
        factory.get("nope")
    assert caught.value.known == ["c", "o"]
    await factory.aclose()
    assert factory.get("c") is not first


async def test_runtime_from_environ_owns_and_closes_its_session(fake_openai: FakeOpenAI) -> None:
    env = environ({"backends": {"o": {"type": "openai", "base_url": fake_openai.base_url}}})
    async with Runtime.from_environ(env) as runtime:
        session = runtime.session
        completion = await runtime.router.complete(
            {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
            RequestOptions(),
        )
        assert completion.backend == "o"
    assert session.closed


def test_backend_repr_has_no_settings_dump() -> None:
    settings = BackendSettings(type="openai", api_key="sk-test-SECRET-123456", model="m")  # type: ignore[arg-type]
    assert "SECRET" not in repr(settings)
    assert "**********" in repr(settings)
