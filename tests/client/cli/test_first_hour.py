"""A newcomer's first hour: every mistake gets one plain line and README's exit code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ccrelay.cli import main
from tests.client.cli.conftest import ccrelay, use_config
from tests.conftest import free_port
from tests.fakes.providers import FakeAnthropic, FakeOpenAI, Reply

REPO = Path(__file__).resolve().parents[3]
CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]+(Error|Exception)\b|\(OSError\)|\bClient[A-Z]\w+")
IGNORED = "LLM_BACKEND_CONFIG is ignored because ENABLE_MULTI_BACKEND is not true"


def run(
    *argv: str, cwd: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )


def test_a_port_out_of_range_is_one_line_and_exit_2() -> None:
    result = run("-m", "ccrelay.cli", "serve", "--port", "99999")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--port 99999" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["ask", "hi"],
        ["models"],
        ["backends", "--timeout", "2"],
        ["config", "check"],
        ["stats"],
    ],
)
async def test_every_command_says_why_the_config_is_ignored(
    argv: list[str],
    fake_anthropic: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(
        "LLM_BACKEND_CONFIG",
        json.dumps({"backends": {"x": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}}}),
    )
    monkeypatch.setenv("ANTHROPIC_BASE_URL_UPSTREAM", fake_anthropic.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    await ccrelay(*argv)
    assert IGNORED in capsys.readouterr().err


async def test_a_backend_of_an_ignored_config_says_why_it_is_unknown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLM_BACKEND_CONFIG", '{"backends": {"cerebras": {"type": "cerebras"}}}')
    code = await ccrelay("ask", "--backend", "cerebras", "hi")
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown backend 'cerebras'" in err and IGNORED in err.splitlines()[-1]


@pytest.mark.parametrize("value", ["ture", "enabled", "2"])
async def test_a_gate_that_is_not_a_boolean_is_a_config_error(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENABLE_MULTI_BACKEND", value)
    code = await ccrelay("config", "check")
    err = capsys.readouterr().err
    assert code == 2
    assert "ENABLE_MULTI_BACKEND" in err and "not a recognised boolean" in err


async def test_a_refused_connection_reads_as_words(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()  # nothing listens there
    use_config(
        monkeypatch,
        {
            "backends": {
                "vast": {
                    "type": "openai",
                    "base_url": f"http://127.0.0.1:{port}/v1",
                    "model": "m",
                    "retry": {"max_attempts": 1},
                }
            }
        },
    )
    code = await ccrelay("ask", "hi")
    err = capsys.readouterr().err
    assert code == 1
    assert f"cannot connect to 127.0.0.1:{port}: connection refused" in err
    assert not CLASS_NAME.search(err), err


async def test_a_401_in_plain_anthropic_mode_names_the_variable(
    fake_anthropic: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL_UPSTREAM", fake_anthropic.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-wrong")
    fake_anthropic.push(
        Reply(
            status=401,
            body={
                "type": "error",
                "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            },
        )
    )
    code = await ccrelay("ask", "hi")
    err = capsys.readouterr().err
    assert code == 2  # the key is configuration
    assert "ANTHROPIC_API_KEY" in err and "sk-ant-wrong" not in err


async def test_the_gateway_log_counts_the_attempts_of_a_failed_request(
    fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.client.gateway.conftest import config_env, openai_backend, running_gateway

    retry = {"max_attempts": 3, "initial_backoff_s": 0, "max_backoff_s": 0}
    env = config_env({"vast": openai_backend(fake_openai.base_url, retry=retry)})
    fake_openai.push(*[Reply(status=502, body={"error": {"message": "bad gateway"}})] * 3)
    caplog.set_level("INFO", logger="ccrelay.gateway")
    async with running_gateway(env) as gateway:
        response = await gateway.post(
            "/v1/messages",
            {
                "model": "claude-sonnet-4-5",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
            },
        )
        assert response.status == 502  # the upstream failed
        assert response.headers["x-ccrelay-attempts"] == "3"
    lines = [r.getMessage() for r in caplog.records if "POST /v1/messages" in r.getMessage()]
    assert lines and "attempts=3" in lines[-1], lines


def test_the_handler_help_puts_its_own_settings_first_and_logs_nothing() -> None:
    result = run("-m", "ccrelay_handler", "--help")
    assert result.returncode == 0 and result.stderr == ""
    out = result.stdout
    sdk = out.index("runpod SDK's flags")
    for variable in ("REDIS_URL", "OLLAMA_HOST", "CCRELAY_CACHE_TTL", "CCRELAY_LOCK_WAIT"):
        assert out.index(variable) < sdk
    assert "--rp_serve_api" in out[sdk:]


def test_bench_help_is_whole(tmp_path: Path) -> None:
    """The benchmarks are the checkout's (`python -m bench`); no `ccrelay bench` pretends to
    find them from an installed package."""
    result = run("-m", "bench", "--help")
    assert result.returncode == 0
    assert "print one table" in result.stdout and "Exit codes" in result.stdout
    gone = run("-m", "ccrelay.cli", "bench", "--help", cwd=tmp_path)
    assert gone.returncode == 2 and "invalid choice: 'bench'" in gone.stderr


def test_main_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("ask", "serve", "code", "stats", "deploy", "statusline"):
        assert command in out


async def test_stats_says_where_it_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CCRELAY_STATE_DIR", str(tmp_path))
    assert await ccrelay("stats") == 0
    assert f"read 0 records from {tmp_path} (local JSONL)" in capsys.readouterr().err


# -- issue 24 ----------------------------------------------------------------------------------


def test_version_is_not_a_usage_error() -> None:
    result = run("-m", "ccrelay.cli", "--version")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"ccrelay \d+\.\d+\.\d+\S*\n", result.stdout), result.stdout


def test_every_command_and_option_says_what_it_does() -> None:
    """`statusline --help` said nothing; `ask --max-tokens` and `--temperature` had no help."""
    import argparse

    from ccrelay.cli import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {choice.dest: choice.help for choice in commands._choices_actions}
    missing = []
    for name, sub in commands.choices.items():
        if not helps.get(name):
            missing.append(f"{name} (no help line)")
        for action in sub._actions:
            if action.option_strings and action.help in (None, ""):
                missing.append(f"{name} {action.option_strings[0]}")
    assert missing == []
    statusline = " ".join(commands.choices["statusline"].format_help().split())
    assert "CCRELAY_SESSION" in statusline and "ccrelay code --statusline" in statusline


def test_the_first_readme_command_says_it_is_installing() -> None:
    """It was silent for 40 s (pip -q) before the gateway's first line."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block is not None
    first = next(line for line in block.group(1).splitlines() if line.strip())
    steps = [step.strip() for step in first.split("&&")]
    install = next(i for i, step in enumerate(steps) if step.startswith("pip install"))
    assert any(step.startswith("echo ") for step in steps[:install]), first
    assert steps[-1] == "ccrelay serve"
