"""`ccrelay models`: what a backend offers, with the configured default marked."""

from __future__ import annotations

import orjson
import pytest

from tests.client.cli.conftest import ccrelay, use_config
from tests.fakes.providers import FakeAnthropic, FakeOpenAI, Reply


def use_fake_backends(monkeypatch: pytest.MonkeyPatch, fake: FakeOpenAI, **extra: object) -> None:
    document = {
        "backends": {
            "cerebras": {
                "type": "cerebras",
                "model": "gpt-oss-120b",
                "base_url": fake.base_url,
                "api_key": "csk-models-1",
                **extra,
            },
            "local": {"type": "openai", "base_url": fake.base_url, "model": "fake-model"},
        }
    }
    use_config(monkeypatch, document)


async def test_lists_models_and_marks_the_configured_default(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_fake_backends(monkeypatch, fake_openai)
    code = await ccrelay("models")
    out, err = capsys.readouterr()
    assert code == 0
    assert out.splitlines() == ["fake-model", "gpt-oss-120b  (configured default)"]
    assert err == ""
    sent = fake_openai.requests[-1]
    assert (sent.method, sent.path) == ("GET", "/v1/models")


async def test_backend_flag(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_fake_backends(monkeypatch, fake_openai)
    assert await ccrelay("models", "--backend", "local") == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["fake-model  (configured default)", "gpt-oss-120b"]


async def test_json(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_fake_backends(monkeypatch, fake_openai)
    assert await ccrelay("models", "--json") == 0
    assert orjson.loads(capsys.readouterr().out) == [
        {"id": "fake-model", "owned_by": "fake"},
        {"id": "gpt-oss-120b", "owned_by": "fake"},
    ]


async def test_warns_when_the_configured_model_is_not_offered(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_fake_backends(monkeypatch, fake_openai, model="qwen-3-coder-retired")
    assert await ccrelay("models") == 0
    out, err = capsys.readouterr()
    assert "(configured default)" not in out
    assert "'qwen-3-coder-retired' is not offered by cerebras" in err


async def test_anthropic_models(
    fake_anthropic: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_config(
        monkeypatch,
        {
            "backends": {
                "claude": {
                    "type": "anthropic",
                    "base_url": fake_anthropic.url,
                    "api_key": "sk-ant-test-0123456789",
                }
            }
        },
    )
    assert await ccrelay("models") == 0
    assert capsys.readouterr().out.splitlines() == ["claude-sonnet-4-5"]


async def test_a_refused_key_exits_2(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_fake_backends(monkeypatch, fake_openai)
    fake_openai.push(Reply(status=401, body={"error": {"message": "Invalid API key"}}))
    assert await ccrelay("models") == 2  # the key is configuration
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "ccrelay: error: cerebras: HTTP 401: Invalid API key; check the backend's api_key"
    ]


async def test_backend_failure_exits_1(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_fake_backends(monkeypatch, fake_openai)
    fake_openai.push(*[Reply(status=500, body={"error": {"message": "boom"}})] * 3)
    assert await ccrelay("models") == 1


async def test_unknown_backend_exits_2(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_fake_backends(monkeypatch, fake_openai)
    assert await ccrelay("models", "--backend", "nope") == 2
    assert "known backends: cerebras, local" in capsys.readouterr().err
