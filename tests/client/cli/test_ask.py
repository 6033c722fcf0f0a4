"""`ccrelay ask` end to end: config from the environment, a real fake provider, exit codes.

The CLI runs its own event loop (`asyncio.run`), so each in-process call runs in a worker thread
while the test's loop keeps serving the fake provider; one test runs it as a real subprocess.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import sys
from pathlib import Path

import orjson
import pytest

from tests.client.cli.conftest import ccrelay, use_config
from tests.fakes.providers import FakeAnthropic, FakeOpenAI, Reply, openai_text_chunks, sse

ROOT = Path(__file__).resolve().parents[3]
PYTHON = ROOT / ".venv" / "bin" / "python"
SUMMARY = re.compile(
    r"^ccrelay: backend=(\S+) model=(\S+) status=ok latency_ms=\d+ attempts=(\d+)( failovers=\d+)?( cache=\w+)?$"
)


def cerebras_config(fake: FakeOpenAI, **extra: object) -> dict:
    return {
        "backends": {
            "cerebras": {
                "type": "cerebras",
                "model": "gpt-oss-120b",
                "base_url": fake.base_url,
                "api_key": "${CEREBRAS_API_KEY}",
                "retry": {"max_attempts": 1},
                **extra,
            }
        }
    }


async def ask_in_subprocess(env: dict[str, str]) -> tuple[asyncio.subprocess.Process, bytes, bytes]:
    """`python -m ccrelay.cli ask hello` as a real subprocess: the process, its stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        str(PYTHON),
        "-m",
        "ccrelay.cli",
        "ask",
        "hello",
        cwd=str(ROOT),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process, out, err


async def test_streams_text_to_stdout_and_a_summary_to_stderr(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_config(monkeypatch, cerebras_config(fake_openai))
    monkeypatch.setenv("CEREBRAS_API_KEY", "csk-1")
    fake_openai.push(Reply(chunks=sse(openai_text_chunks(["Four", " is", " 2+2"]), done=True)))
    code = await ccrelay("ask", "what", "is", "2+2?")
    out, err = capsys.readouterr()
    assert code == 0
    assert out == "Four is 2+2\n"
    lines = err.strip().splitlines()
    assert len(lines) == 1
    match = SUMMARY.match(lines[0])
    assert match is not None, lines[0]
    assert match.group(1, 2, 3) == ("cerebras", "gpt-oss-120b", "1")
    sent = fake_openai.requests[-1]
    assert sent.body["messages"] == [{"role": "user", "content": "what is 2+2?"}]
    assert sent.body["stream"] is True
    assert sent.headers["Authorization"] == "Bearer csk-1"


async def test_json_prints_the_whole_response(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_config(monkeypatch, cerebras_config(fake_openai))
    monkeypatch.setenv("CEREBRAS_API_KEY", "csk-1")
    code = await ccrelay("ask", "--json", "--system", "be terse", "--max-tokens", "50", "hi")
    out, _ = capsys.readouterr()
    assert code == 0
    response = orjson.loads(out)
    assert response["type"] == "message"
    assert response["role"] == "assistant"
    assert response["content"] == [{"type": "text", "text": "Hello from fake"}]
    assert response["stop_reason"] == "end_turn"
    assert response["usage"]["output_tokens"] == 7
    body = fake_openai.requests[-1].body
    assert body["messages"][0] == {"role": "system", "content": "be terse"}
    assert body["max_tokens"] == 50


async def test_prompt_from_stdin(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_config(monkeypatch, cerebras_config(fake_openai))
    monkeypatch.setenv("CEREBRAS_API_KEY", "csk-1")
    monkeypatch.setattr(sys, "stdin", io.StringIO("  summarise this file\n"))
    code = await ccrelay("ask")
    capsys.readouterr()
    assert code == 0
    assert fake_openai.requests[-1].body["messages"][-1]["content"] == "summarise this file"


async def test_empty_prompt_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("   \n"))
    assert await ccrelay("ask") == 2
    assert "nothing to ask" in capsys.readouterr().err


async def test_backend_flag_picks_a_named_backend(
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    document = cerebras_config(fake_openai)
    document["backends"]["claude"] = {
        "type": "anthropic",
        "base_url": fake_anthropic.url,
        "api_key": "sk-ant-test-0123456789",
    }
    use_config(monkeypatch, document)
    monkeypatch.setenv("CEREBRAS_API_KEY", "csk-1")
    code = await ccrelay("ask", "--backend", "claude", "--model", "claude-haiku-4-5", "hi")
    out, err = capsys.readouterr()
    assert code == 0
    assert out == "Hello from Claude\n"
    assert "backend=claude model=claude-haiku-4-5 " in err
    assert fake_openai.requests == []
    assert fake_anthropic.requests[-1].body["model"] == "claude-haiku-4-5"


async def test_config_error_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("ENABLE_MULTI_BACKEND", "1")
    monkeypatch.setenv("LLM_BACKEND_CONFIG", str(tmp_path / "missing.yaml"))
    code = await ccrelay("ask", "hi")
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("ccrelay: config error: ")
    assert "missing.yaml" in lines[0]
    assert "file not found" in lines[0]


async def test_unknown_backend_flag_exits_2(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_config(monkeypatch, cerebras_config(fake_openai))
    monkeypatch.setenv("CEREBRAS_API_KEY", "csk-1")
    code = await ccrelay("ask", "--backend", "cerebrus", "hi")
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == "ccrelay: unknown backend 'cerebrus'; known backends: cerebras"


async def test_backend_error_exits_1_with_one_line(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_config(monkeypatch, cerebras_config(fake_openai))
    monkeypatch.setenv("CEREBRAS_API_KEY", "csk-1")
    fake_openai.push(Reply(status=500, body={"error": {"message": "the GPU caught fire"}}))
    code = await ccrelay("ask", "hi")
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert lines == ["ccrelay: error: cerebras: HTTP 500: the GPU caught fire"]


async def test_unknown_model_says_how_to_list_models(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_config(monkeypatch, cerebras_config(fake_openai, model="qwen-9"))
    monkeypatch.setenv("CEREBRAS_API_KEY", "csk-1")
    fake_openai.push(
        Reply(
            status=404,
            body={"error": {"message": "no such model", "code": "model_not_found"}},
        )
    )
    code = await ccrelay("ask", "hi")
    err = capsys.readouterr().err
    assert code == 2  # a model the backend does not serve: fix the config
    assert "'qwen-9'" in err
    assert "ccrelay models --backend cerebras" in err


async def test_real_subprocess_against_a_fake_server(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    config = tmp_path / "ccrelay.yaml"
    config.write_text(
        "backends:\n"
        "  local:\n"
        "    type: openai\n"
        "    base_url: ${LOCAL_URL}\n"
        "    model: qwen3-coder\n"
        "    retry: {max_attempts: 1}\n"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LLM_BACKEND", "ENABLE_MULTI_BACKEND"))
    }
    env.update(
        ENABLE_MULTI_BACKEND="true",
        LLM_BACKEND_CONFIG=str(config),
        LOCAL_URL=fake_openai.base_url,
    )
    fake_openai.push(Reply(chunks=sse(openai_text_chunks(["sub", "process"]), done=True)))
    process, out, err = await ask_in_subprocess(env)
    assert process.returncode == 0, err.decode()
    assert out.decode() == "subprocess\n"
    assert SUMMARY.match(err.decode().strip()) is not None, err.decode()
    assert "backend=local model=qwen3-coder" in err.decode()
    assert fake_openai.requests[-1].body["model"] == "qwen3-coder"

    # And a failure: the server is gone, so the subprocess exits 1 with one line.
    await fake_openai.close()
    process, out, err = await ask_in_subprocess(env)
    assert process.returncode == 1
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("ccrelay: error: local: cannot connect to 127.0.0.1")


# -- issue 24 -----------------------------------------------------------------------------------


async def test_a_refused_key_exits_2_even_when_the_fallback_fails_after_it(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """README: 2 for "a key the backend refuses". With a fallback that then failed too, `ask`
    exited 1 and said only what the fallback did."""
    from tests.conftest import free_port

    config = cerebras_config(fake_openai)
    config["fallback"] = ["cerebras", "anthropic"]
    config["backends"]["anthropic"] = {
        "type": "anthropic",
        "base_url": f"http://127.0.0.1:{free_port()}",  # nothing listens: Anthropic is down
        "retry": {"max_attempts": 1},
    }
    use_config(monkeypatch, config)
    monkeypatch.setenv("CEREBRAS_API_KEY", "csk-wrong")
    fake_openai.push(
        Reply(
            status=401,
            body={
                "message": "Wrong API Key",
                "type": "invalid_request_error",
                "param": "api_key",
                "code": "wrong_api_key",
            },
        )
    )
    code = await ccrelay("ask", "hi")
    line = capsys.readouterr().err.strip().splitlines()[-1]  # after the router's failover note
    assert code == 2
    assert line.startswith("ccrelay: error: cerebras refused the key (auth_failed): ")
    assert "; then anthropic: cannot connect to 127.0.0.1" in line
    assert "csk-wrong" not in line


async def test_a_usage_error_writes_no_latency_record(
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """`ask --backend nope` wrote a request record with no backend: a row in `stats` and an
    unnamed block of empty charts at the top of `stats --html`."""
    use_config(monkeypatch, cerebras_config(fake_openai))
    monkeypatch.setenv("CEREBRAS_API_KEY", "csk-1")
    monkeypatch.setenv("CCRELAY_STATE_DIR", str(tmp_path / "state"))
    assert await ccrelay("ask", "--backend", "nope", "hi") == 2
    records = [
        line
        for path in (tmp_path / "state").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert records == []
    assert await ccrelay("ask", "hi") == 0  # a real request still makes its records
    kinds = sorted(
        orjson.loads(line)["kind"]
        for path in (tmp_path / "state").glob("*.jsonl")
        for line in path.read_text().splitlines()
    )
    assert kinds == ["attempt", "request"]
    capsys.readouterr()
