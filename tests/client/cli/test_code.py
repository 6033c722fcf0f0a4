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
from tests.fakes.providers import FakeOpenAI, Reply, openai_completion

REPO = Path(__file__).resolve().parents[3]

STUB = """\
#!{python}
import json, os, sys, time, urllib.error, urllib.request

url = os.environ["ANTHROPIC_BASE_URL"]
custom = dict(
    line.split(": ", 1) for line in os.environ.get("ANTHROPIC_CUSTOM_HEADERS", "").splitlines()
)
token = custom.pop("x-ccrelay-token")  # Claude Code sends these lines as headers
api_key = os.environ.get("ANTHROPIC_API_KEY")
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

if os.environ.get("STUB_ENV_ONLY"):  # no request: say what claude was given, then linger
    print("stub started", file=sys.stderr, flush=True)
    keys = ("CLAUDE_CODE_AUTO_COMPACT_WINDOW", "CCRELAY_SESSION")
    with open(os.environ["STUB_REPORT"], "w") as out:
        json.dump({{"env": {{k: os.environ.get(k) for k in keys}}, "args": sys.argv[1:]}}, out)
    time.sleep(float(os.environ["STUB_ENV_ONLY"]))
    sys.exit(0)

report = {{
    "url": url,
    "token_length": len(token),
    "api_key": api_key,
    "auth_token": os.environ.get("ANTHROPIC_AUTH_TOKEN"),
    "custom": custom,
    "args": sys.argv[1:],
    "own_header": post({{"x-ccrelay-token": token, "x-api-key": api_key or ""}}),
    "bearer": post({{"authorization": "Bearer " + token}}),
    "x_api_key": post({{"x-api-key": token}}),
    "no_token": post({{"x-api-key": api_key or ""}}),
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


def session_log(stderr_lines: list[str]) -> Path:
    """The gateway log file `ccrelay code` said it writes (once, before claude started)."""
    (said,) = [line for line in stderr_lines if line.startswith("ccrelay: gateway log: ")]
    return Path(said.removeprefix("ccrelay: gateway log: "))


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
    # Claude Code keeps its own credential; the gateway's token is a header of its own
    assert report["api_key"] == "sk-ant-users-own-key"
    assert report["auth_token"] is None
    status, reply = report["own_header"]
    assert status == 200
    assert reply["content"][0]["text"] == "Hello from fake"
    assert report["bearer"][0] == 200  # clients that cannot add a header may still use these
    assert report["x_api_key"][0] == 200
    assert report["no_token"][0] == 401  # the user's key alone does not open the gateway
    assert report["no_token"][1]["error"]["type"] == "authentication_error"
    assert port_is_closed(report["url"])  # the gateway stopped with claude
    assert len(fake_openai.requests) == 3
    for sent in fake_openai.requests:  # no other backend type ever gets the user's key
        assert "sk-ant-users-own-key" not in json.dumps(sent.headers)


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
    def parts(argv: list[str]) -> tuple[object, ...]:
        o = split_argv(argv)
        return o.claude_bin, o.claude_args, o.help, o.statusline, o.warm

    assert parts(["-p", "x"]) == (None, ["-p", "x"], False, False, True)
    assert parts(["--claude-bin", "/c", "-p"]) == ("/c", ["-p"], False, False, True)
    assert parts(["--claude-bin=/c", "--", "--claude-bin", "y"]) == (
        "/c",
        ["--claude-bin", "y"],
        False,
        False,
        True,
    )
    assert parts(["--help"]) == (None, [], True, False, True)
    assert parts(["--", "--help"]) == (None, ["--help"], False, False, True)
    assert parts(["--statusline", "--no-warm", "-p", "x"]) == (
        None,
        ["-p", "x"],
        False,
        True,
        False,
    )


def test_claude_environ_keeps_claude_s_credential_and_adds_the_token_header() -> None:
    env = claude_environ(
        {"ANTHROPIC_API_KEY": "k", "HOME": "/h", "ANTHROPIC_CUSTOM_HEADERS": "x-team: a"},
        "http://127.0.0.1:5",
        "tok",
    )
    assert env == {
        "HOME": "/h",
        "ANTHROPIC_API_KEY": "k",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:5",
        "ANTHROPIC_CUSTOM_HEADERS": "x-team: a\nx-ccrelay-token: tok",
        "CCRELAY_GATEWAY_URL": "http://127.0.0.1:5",
        "CLAUDE_CODE_GATEWAY_HINT_HEADERS": "1",
        "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1",
        "CLAUDE_CODE_TOTAL_TOKENS_REMINDER": "off",
        "CLAUDE_CODE_ATTRIBUTION_HEADER": "0",
    }
    # a stale token line (a nested `ccrelay code`) is replaced, never repeated
    nested = claude_environ(env, "http://127.0.0.1:6", "new")
    assert nested["ANTHROPIC_CUSTOM_HEADERS"] == "x-team: a\nx-ccrelay-token: new"


def test_claude_environ_without_a_credential_of_its_own_gets_the_token_to_start() -> None:
    env = claude_environ({"HOME": "/h"}, "http://x", "tok", own_credential=False)
    assert env["ANTHROPIC_AUTH_TOKEN"] == "tok"
    assert env["ANTHROPIC_CUSTOM_HEADERS"] == "x-ccrelay-token: tok"


def test_claude_environ_sets_the_compact_window_unless_the_user_did() -> None:
    env = claude_environ({}, "http://x", "t", window=126976, session="s1")
    assert env["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] == "126976"
    assert env["CCRELAY_SESSION"] == "s1"
    mine = claude_environ(
        {"CLAUDE_CODE_AUTO_COMPACT_WINDOW": "9000"}, "http://x", "t", window=126976
    )
    assert mine["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] == "9000"
    assert "CLAUDE_CODE_AUTO_COMPACT_WINDOW" not in claude_environ({}, "http://x", "t")
    # under Claude Code 2.1.332's 100k minimum it would only be read as 100k, with a warning
    small = claude_environ({}, "http://x", "t", window=28672)
    assert "CLAUDE_CODE_AUTO_COMPACT_WINDOW" not in small


async def test_claude_that_cannot_run(tmp_path: Path) -> None:
    not_executable = tmp_path / "claude"
    not_executable.write_text("not a program")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    process = await ccrelay("--claude-bin", str(not_executable), "-p", "x", env=env)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert "cannot run" in err.decode()


# -- issue 12: what a session is given -------------------------------------------------------


async def test_a_runpod_backend_is_warmed_while_claude_starts(
    fake_openai: FakeOpenAI, tmp_path: Path, stub: Path
) -> None:
    from tests.fakes.runpod_jobs import FakeRunPod

    fake = await FakeRunPod(cold_start_s=1.5).start()
    config = {
        "backends": {
            "rp": {
                "type": "runpod",
                "endpoint_url": fake.endpoint_url,
                "api_key": fake.api_key,
                "poll_initial_s": 0.05,
                "poll_max_s": 0.1,
            }
        }
    }
    env = {
        **ccrelay_env(fake_openai, tmp_path, stub, STUB_ENV_ONLY="2.5"),
        "LLM_BACKEND_CONFIG": json.dumps(config),
    }
    try:
        process = await ccrelay("--claude-bin", str(stub), env=env)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        await fake.close()
    lines = err.decode().splitlines()
    assert process.returncode == 0, lines
    warming = next(i for i, line in enumerate(lines) if "warming runpod endpoint rp" in line)
    started = lines.index("stub started")
    assert warming < started  # said before claude took the terminal
    # claude did not wait for the cold start: the worker was ready after claude started, and
    # that was said in the session's log, not on the terminal claude draws on
    assert not any("worker ready" in line for line in lines)
    log = session_log(lines)
    assert "rp: worker ready after" in log.read_text()
    (submission,) = fake.submissions()
    assert submission.body == {"input": {"ccrelay_warmup": True}}
    report = read_report(tmp_path)
    # the image's default window (32768) is under Claude Code's 100k minimum: not set
    assert report["env"]["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] is None
    assert report["env"]["CCRELAY_SESSION"]


async def test_no_warm_sends_no_job(fake_openai: FakeOpenAI, tmp_path: Path, stub: Path) -> None:
    from tests.fakes.runpod_jobs import FakeRunPod

    fake = await FakeRunPod().start()
    config = {"backends": {"rp": {"type": "runpod", "endpoint_url": fake.endpoint_url}}}
    env = {
        **ccrelay_env(fake_openai, tmp_path, stub, STUB_ENV_ONLY="0"),
        "LLM_BACKEND_CONFIG": json.dumps(config),
        "RUNPOD_API_KEY": fake.api_key,
    }
    try:
        process = await ccrelay("--no-warm", "--claude-bin", str(stub), env=env)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        await fake.close()
    assert process.returncode == 0, err
    assert b"warming" not in err
    assert fake.submissions() == []


async def test_the_status_line_reads_the_session_s_own_records(
    fake_openai: FakeOpenAI, tmp_path: Path, stub: Path
) -> None:
    state = tmp_path / "state"
    env = ccrelay_env(fake_openai, tmp_path, stub, CCRELAY_STATE_DIR=str(state))
    for _ in range(3):  # the stub's three authorised requests
        fake_openai.push(Reply(body=openai_completion("hi", usage=(2000, 100))))
    process = await ccrelay("--statusline", "--claude-bin", str(stub), env=env)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err
    report = read_report(tmp_path)
    assert report["args"][0] == "--settings"  # installed for this session only
    command = json.loads(report["args"][1])["statusLine"]["command"]
    assert command.endswith("-m ccrelay.cli statusline")
    (session,) = {
        json.loads(line)["session"]
        for path in state.glob("*.jsonl")
        for line in path.read_text().splitlines()
    }
    line_env = {**env, "CCRELAY_SESSION": session}
    status = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ccrelay.cli",
        "statusline",
        env=line_env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(status.communicate(b'{"session_id": "claude-s"}'), 30)
    assert status.returncode == 0, err
    (line,) = out.decode().splitlines()
    assert line.startswith("ccrelay · local · fake-model")
    assert "saved $" in line and "(3 requests)" in line, line
    other = {**env, "CCRELAY_SESSION": "someone-else"}
    status = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ccrelay.cli",
        "statusline",
        env=other,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(status.communicate(), 30)
    assert out.decode().strip() == "ccrelay · local · no request yet"


def test_claude_environ_turns_the_gateway_hints_on_and_the_user_s_values_win() -> None:
    """Issue 23: the request class, session and model discovery always; the KV-cache hygiene
    of `ollama launch claude` only for a non-Anthropic backend (Anthropic caches the prompt
    itself, and the attribution header is its own)."""
    anthropic = claude_environ({}, "http://x", "t", anthropic=True)
    assert anthropic["CLAUDE_CODE_GATEWAY_HINT_HEADERS"] == "1"
    assert anthropic["CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY"] == "1"
    assert "CLAUDE_CODE_TOTAL_TOKENS_REMINDER" not in anthropic
    assert "CLAUDE_CODE_ATTRIBUTION_HEADER" not in anthropic
    mine = claude_environ(
        {"CLAUDE_CODE_GATEWAY_HINT_HEADERS": "0", "CLAUDE_CODE_TOTAL_TOKENS_REMINDER": "on"},
        "http://x",
        "t",
    )
    assert mine["CLAUDE_CODE_GATEWAY_HINT_HEADERS"] == "0"
    assert mine["CLAUDE_CODE_TOTAL_TOKENS_REMINDER"] == "on"
    assert mine["CLAUDE_CODE_ATTRIBUTION_HEADER"] == "0"


def test_the_session_log_has_each_line_once(tmp_path: Path) -> None:
    """The `ccrelay` logger and the root write to the same file: a line must not be there
    twice (once through each)."""
    import logging

    from ccrelay.cli.code_log import log_to_file

    env = {"CCRELAY_STATE_DIR": str(tmp_path / "state")}
    with log_to_file(env, "s1", "INFO") as log:
        logging.getLogger("ccrelay.gateway").info("POST /v1/messages 200 once")
        logging.getLogger("aiohttp.access").warning("a library's line")
    text = log.path.read_text()
    assert text.count("POST /v1/messages 200 once") == 1
    assert text.count("a library's line") == 1
    assert logging.getLogger("ccrelay").propagate is True  # put back as it was
