"""`ccrelay code` with a stub `claude`: the environment it gets, exit codes, gateway lifetime."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ccrelay.cli.code import claude_environ, split_argv
from tests.fake_providers import FakeOpenAI

REPO = Path(__file__).resolve().parents[3]

STUB = """\
#!{python}
import json, os, sys, time, urllib.error, urllib.request

url = os.environ["ANTHROPIC_BASE_URL"]
token = os.environ["ANTHROPIC_AUTH_TOKEN"]
body = json.dumps({{
    "model": "claude-sonnet-4-5", "max_tokens": 50,
    "messages": [{{"role": "user", "content": "hi"}}],
}}).encode()

def post(headers):
    request = urllib.request.Request(
        url + "/v1/messages", data=body, headers={{"content-type": "application/json", **headers}}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)

report = {{
    "url": url,
    "token_length": len(token),
    "api_key": os.environ.get("ANTHROPIC_API_KEY"),
    "args": sys.argv[1:],
    "bearer": post({{"authorization": "Bearer " + token}}),
    "x_api_key": post({{"x-api-key": token}}),
    "no_token": post({{}}),
}}
with open(os.environ["STUB_REPORT"], "w") as out:
    json.dump(report, out)
print("stub says hi")
if os.environ.get("STUB_SLEEP"):
    time.sleep(30)
sys.exit(int(os.environ.get("STUB_EXIT", "0")))
"""


@pytest.fixture
def stub(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "claude"
    path.parent.mkdir()
    path.write_text(STUB.format(python=sys.executable))
    path.chmod(0o755)
    return path


def ccrelay_env(fake: FakeOpenAI, tmp_path: Path, stub: Path, **extra: str) -> dict[str, str]:
    config = {
        "backends": {"local": {"type": "openai", "base_url": fake.base_url, "model": "fake-model"}}
    }
    return {
        "PATH": f"{stub.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "ENABLE_MULTI_BACKEND": "true",
        "LLM_BACKEND_CONFIG": json.dumps(config),
        "ANTHROPIC_API_KEY": "sk-ant-users-own-key",
        "STUB_REPORT": str(tmp_path / "report.json"),
        **extra,
    }


async def ccrelay(
    *args: str, env: dict[str, str], new_session: bool = False
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ccrelay.cli",
        "code",
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=new_session,
    )


def port_is_closed(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return False
    except OSError:
        return True


def read_report(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "report.json").read_text())


@pytest.mark.parametrize("exit_code", [0, 3])
async def test_runs_claude_against_the_gateway_and_passes_its_exit_code(
    fake_openai: FakeOpenAI, tmp_path: Path, stub: Path, exit_code: int
) -> None:
    env = ccrelay_env(fake_openai, tmp_path, stub, STUB_EXIT=str(exit_code))
    process = await ccrelay("-p", "hello there", "--model", "x", env=env)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == exit_code, err.decode()
    assert out.decode() == "stub says hi\n"  # claude's stdout passes straight through
    report = read_report(tmp_path)
    assert report["args"] == ["-p", "hello there", "--model", "x"]
    assert report["url"].startswith("http://127.0.0.1:")
    assert report["token_length"] >= 32
    assert report["api_key"] is None  # the user's key is not handed to claude
    status, reply = report["bearer"]
    assert status == 200
    assert reply["content"][0]["text"] == "Hello from fake"
    assert report["x_api_key"][0] == 200
    assert report["no_token"][0] == 401
    assert report["no_token"][1]["error"]["type"] == "authentication_error"
    assert port_is_closed(report["url"])  # the gateway stopped with claude
    assert len(fake_openai.requests) == 2


async def test_claude_bin_option_and_double_dash(
    fake_openai: FakeOpenAI, tmp_path: Path, stub: Path
) -> None:
    env = ccrelay_env(fake_openai, tmp_path, stub)
    env["PATH"] = os.environ.get("PATH", "")  # not on PATH: found through --claude-bin
    process = await ccrelay("--claude-bin", str(stub), "--", "--help", env=env)
    await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    assert read_report(tmp_path)["args"] == ["--help"]


async def test_missing_claude_is_a_clear_error(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    process = await ccrelay("-p", "x", env=env)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2  # README's table: a usage problem
    assert "cannot find claude on PATH" in err.decode()


async def test_ctrl_c_goes_to_claude_and_the_gateway_stops_after(
    fake_openai: FakeOpenAI, tmp_path: Path, stub: Path
) -> None:
    env = ccrelay_env(fake_openai, tmp_path, stub, STUB_SLEEP="1")
    process = await ccrelay("-p", "x", env=env, new_session=True)
    report_file = tmp_path / "report.json"
    for _ in range(300):
        if report_file.exists() and report_file.stat().st_size:
            break
        await asyncio.sleep(0.05)
    else:
        process.kill()
        pytest.fail("the stub never ran")
    url = read_report(tmp_path)["url"]
    assert not port_is_closed(url)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal does on Ctrl-C: the whole group
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 128 + signal.SIGINT, err.decode()  # claude's status
    assert port_is_closed(url)


def test_split_argv() -> None:
    assert split_argv(["-p", "x"]) == (None, ["-p", "x"], False)
    assert split_argv(["--claude-bin", "/c", "-p"]) == ("/c", ["-p"], False)
    assert split_argv(["--claude-bin=/c", "--", "--claude-bin", "y"]) == (
        "/c",
        ["--claude-bin", "y"],
        False,
    )
    assert split_argv(["--help"]) == (None, [], True)
    assert split_argv(["--", "--help"]) == (None, ["--help"], False)


def test_claude_environ() -> None:
    env = claude_environ({"ANTHROPIC_API_KEY": "k", "HOME": "/h"}, "http://127.0.0.1:5", "tok")
    assert env == {
        "HOME": "/h",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:5",
        "ANTHROPIC_AUTH_TOKEN": "tok",
    }


async def test_claude_that_cannot_run(tmp_path: Path) -> None:
    not_executable = tmp_path / "claude"
    not_executable.write_text("not a program")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    process = await ccrelay("--claude-bin", str(not_executable), "-p", "x", env=env)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert "cannot run" in err.decode()
