"""`ccrelay backends`: type, endpoint, model, live health and circuit state of each backend."""

from __future__ import annotations

import json
import time

import aiohttp
import orjson
import pytest

from ccrelay.backends.factory import load_client_config
from ccrelay.cli.backends import public_url
from ccrelay.gateway import GatewayServer, build_app
from ccrelay.runtime import Runtime
from tests.client.cli.conftest import ccrelay, use_config
from tests.fakes.providers import FakeAnthropic, FakeOpenAI, Reply

SECRET = "sk-test-SECRET-123456"
TOKEN = "gateway-token-987654"


def document(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> dict:
    slow = {"timeouts": {"first_byte_s": 5, "total_s": 10}, "retry": {"max_attempts": 1}}
    return {
        "active": "cerebras",
        "fallback": ["claude"],
        "backends": {
            "cerebras": {
                "type": "cerebras",
                "model": "gpt-oss-120b",
                "base_url": fake_openai.base_url,
                "api_key": "${CEREBRAS_API_KEY}",
                "circuit": {"failure_threshold": 1},
                **slow,
            },
            "claude": {
                "type": "anthropic",
                "base_url": fake_anthropic.url,
                "api_key": "${CEREBRAS_API_KEY}",
                **slow,
            },
        },
    }


@pytest.fixture
def configured(
    fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> dict:
    config = document(fake_openai, fake_anthropic)
    use_config(monkeypatch, config)
    monkeypatch.setenv("CEREBRAS_API_KEY", SECRET)
    return config


async def test_table_with_health_and_local_circuits(
    configured: dict,
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = await ccrelay("backends")
    out, err = capsys.readouterr()
    assert code == 0, err
    assert SECRET not in out + err
    lines = out.splitlines()
    assert lines[0].startswith("# source: LLM_BACKEND_CONFIG (inline JSON)")
    assert lines[1] == "# request order: cerebras -> claude"
    assert lines[2].split() == ["NAME", "TYPE", "ENDPOINT", "MODEL", "HEALTH", "CIRCUIT"]
    cerebras = next(line for line in lines if line.startswith("cerebras *"))
    assert fake_openai.base_url in cerebras
    assert "gpt-oss-120b" in cerebras
    assert "ok: 2 models" in cerebras
    assert cerebras.endswith("closed (this process)")
    claude = next(line for line in lines if line.startswith("claude "))
    assert fake_anthropic.url in claude
    assert "(the request's)" in claude
    assert "ok: 1 models" in claude
    assert fake_openai.requests[-1].headers["Authorization"] == f"Bearer {SECRET}"


async def test_json_and_a_failing_health_check_exits_1(
    configured: dict, fake_anthropic: FakeAnthropic, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_anthropic.push(
        Reply(
            status=401,
            body={
                "type": "error",
                "error": {"type": "authentication_error", "message": f"bad key {SECRET}"},
            },
        )
    )
    code = await ccrelay("backends", "--json")
    out, err = capsys.readouterr()
    assert code == 1
    assert SECRET not in out + err
    payload = orjson.loads(out)
    assert payload["active"] == "cerebras"
    assert payload["chain"] == ["cerebras", "claude"]
    assert payload["circuits_from"] == "this process"
    rows = {row["name"]: row for row in payload["backends"]}
    assert rows["cerebras"]["health"]["ok"] is True
    assert rows["cerebras"]["type"] == "cerebras"
    assert rows["cerebras"]["circuit"] == "closed"
    assert rows["cerebras"]["active"] is True
    assert rows["claude"]["health"]["ok"] is False
    assert "HTTP 401" in rows["claude"]["health"]["detail"]
    assert "api_key" not in rows["claude"]


async def test_health_checks_run_concurrently_within_the_timeout(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    slow = {"type": "openai", "base_url": fake_openai.base_url, "timeouts": {"first_byte_s": 5}}
    names = [f"proxy{i}" for i in range(6)]
    use_config(monkeypatch, {"backends": {name: slow for name in names}})
    fake_openai.push(*[Reply(delay_before=1.0) for _ in names])
    started = time.perf_counter()
    code = await ccrelay("backends", "--json", "--timeout", "0.3")
    elapsed = time.perf_counter() - started
    assert code == 1
    rows = orjson.loads(capsys.readouterr().out)["backends"]
    assert [row["name"] for row in rows] == names
    assert [row["health"]["detail"] for row in rows] == ["no answer within 0.3 s"] * 6
    assert elapsed < 1.2  # six 0.3 s waits side by side, not 1.8 s one after the other


async def test_circuit_states_from_a_running_gateway(
    configured: dict,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {
        "ENABLE_MULTI_BACKEND": "true",
        "LLM_BACKEND_CONFIG": json.dumps(configured),
        "CEREBRAS_API_KEY": SECRET,
    }
    async with aiohttp.ClientSession() as session:
        runtime = Runtime(load_client_config(env), session)
        breaker = runtime.router.breakers["cerebras"]
        breaker.record_failure(breaker.allow())  # type: ignore[arg-type]  # threshold 1: open
        async with GatewayServer(build_app(runtime, auth_token=TOKEN)) as gateway:
            monkeypatch.setenv("CCRELAY_AUTH_TOKEN", TOKEN)
            code = await ccrelay("backends", "--json", "--gateway", gateway.url + "/")
            out, err = capsys.readouterr()
            assert code == 0, err
            payload = orjson.loads(out)
            assert payload["circuits_from"] == f"gateway {gateway.url}"
            assert payload["circuits_problem"] is None
            rows = {row["name"]: row for row in payload["backends"]}
            assert rows["cerebras"]["circuit"] == "open"
            assert rows["claude"]["circuit"] == "closed"

            code = await ccrelay("backends", "--gateway", gateway.url)
            out, err = capsys.readouterr()
            line = next(row for row in out.splitlines() if row.startswith("cerebras"))
            assert line.endswith("open")
            assert "this process" not in out

            # Without the gateway's token the states are unknown, and stderr says why.
            monkeypatch.delenv("CCRELAY_AUTH_TOKEN")
            code = await ccrelay("backends", "--json", "--gateway", gateway.url)
            out, err = capsys.readouterr()
            rows = {row["name"]: row for row in orjson.loads(out)["backends"]}
            assert rows["cerebras"]["circuit"] == "unknown"
            assert "answered HTTP 401 without backend states" in err
            assert TOKEN not in out + err


async def test_unreachable_gateway(
    configured: dict, capsys: pytest.CaptureFixture[str], unused_tcp_port: int
) -> None:
    code = await ccrelay("backends", "--gateway", f"http://127.0.0.1:{unused_tcp_port}")
    out, err = capsys.readouterr()
    assert code == 0
    assert "unknown" in out
    assert "circuit states unknown: cannot reach gateway http://127.0.0.1:" in err


async def test_config_error_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_config(monkeypatch, '{"backends": {"x": {"type": "nope"}}}')
    assert await ccrelay("backends") == 2
    assert "unknown backend type 'nope'" in capsys.readouterr().err


def test_public_url_drops_credentials() -> None:
    assert public_url("https://user:pw@proxy.example:8443/v1") == "https://proxy.example:8443/v1"
    assert public_url("http://127.0.0.1:4000/v1") == "http://127.0.0.1:4000/v1"


async def test_a_backend_that_picks_from_its_catalog_shows_the_pick(
    configured: dict,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 24: Cerebras' model read `(the request's)`, though Cerebras picks one from its
    catalog (GET /models) and never sends the Claude model name on."""
    del configured["backends"]["cerebras"]["model"]
    use_config(monkeypatch, configured)
    assert await ccrelay("backends") == 0
    lines = capsys.readouterr().out.splitlines()
    cerebras = next(line for line in lines if line.startswith("cerebras *"))
    assert "gpt-oss-120b (from its catalog)" in cerebras
    assert "(the request's)" not in cerebras
    claude = next(line for line in lines if line.startswith("claude "))
    assert "(the request's)" in claude  # the pass-through does send the request's model
    assert await ccrelay("backends", "--json") == 0
    rows = {row["name"]: row for row in orjson.loads(capsys.readouterr().out)["backends"]}
    assert (rows["cerebras"]["model_source"], rows["cerebras"]["model_picked"]) == (
        "catalog",
        "gpt-oss-120b",
    )
    assert rows["claude"]["model_source"] == "request"
