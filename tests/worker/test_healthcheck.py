"""`python -m ccrelay_worker.healthcheck` (the image's HEALTHCHECK) against loopback servers."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from ccrelay_worker.healthcheck import check, main
from tests.conftest import free_port
from tests.fakes.harness import LoopbackServer
from tests.fakes.ollama import FakeOllama

HEALTH_STATUS = web.AppKey("health_status", dict)


@pytest.fixture
def health_server() -> Iterator[LoopbackServer]:
    state = {"status": 200}

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"}, status=state["status"])

    app = web.Application()
    app.router.add_get("/health", health)
    app[HEALTH_STATUS] = state
    server = LoopbackServer(app).start_in_thread()
    try:
        yield server
    finally:
        server.stop_thread()


def ollama_host(fake: FakeOllama) -> str:
    return urlsplit(fake.url).netloc


def test_healthy_when_ollama_answers(ollama_native_server: FakeOllama) -> None:
    assert check({"OLLAMA_HOST": ollama_host(ollama_native_server)}) is None
    assert main({"OLLAMA_HOST": ollama_host(ollama_native_server)}) == 0


def test_unhealthy_when_ollama_is_down(capsys: pytest.CaptureFixture[str]) -> None:
    env = {"OLLAMA_HOST": f"127.0.0.1:{free_port()}"}
    assert "/api/version failed" in (check(env) or "")
    assert main(env) == 1
    assert "unhealthy:" in capsys.readouterr().err


def test_http_mode_also_needs_health(
    ollama_native_server: FakeOllama, health_server: LoopbackServer
) -> None:
    env = {
        "OLLAMA_HOST": ollama_host(ollama_native_server),
        "CCRELAY_WORKER_MODE": "http",
        "CCRELAY_HTTP_PORT": str(health_server.port),
    }
    assert check(env) is None
    health_server.app[HEALTH_STATUS]["status"] = 503
    assert check(env) == f"GET http://127.0.0.1:{health_server.port}/health answered HTTP 503"
