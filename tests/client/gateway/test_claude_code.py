"""The real Claude Code CLI, through `ccrelay code`, on a loopback OpenAI-compatible server.

The test installs ``@anthropic-ai/claude-code`` from npm into a cache directory (reused across
runs; ``$CCRELAY_TEST_CACHE`` or ``~/.cache/ccrelay-tests``) and skips, saying why, only when
node/npm are missing or the install fails (offline). Claude Code runs with a throwaway HOME and
non-essential traffic off; the only server it can reach is the gateway.

The upstream answers the first turn (tools offered, no tool result yet) with a Bash tool call
``echo ccrelay-marker``; once a request carries that tool's result, it answers with final text
naming the marker. Anything else (side requests: titles, summaries, quota checks) gets a short
text reply. So the test proves the whole loop: Claude Code's request translated to OpenAI chat,
the tool call translated back and executed by Claude Code, its result sent back, the final
text printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.fake_providers import (
    LoopbackServer,
    openai_completion,
    openai_text_chunks,
    openai_tool_chunks,
    sse,
)

pytestmark = pytest.mark.claude_cli

REPO = Path(__file__).resolve().parents[3]
MARKER = "ccrelay-marker"
PACKAGE = "@anthropic-ai/claude-code"
INSTALL_TIMEOUT_S = 300
RUN_TIMEOUT_S = 90


def _cache_dir() -> Path:
    root = os.environ.get("CCRELAY_TEST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ccrelay-tests"
    )
    return Path(root) / "claude-code"


def _installed_binary(prefix: Path) -> Path | None:
    """The native binary of the platform package, else the npm bin link."""
    scope = prefix / "node_modules" / "@anthropic-ai"
    for candidate in sorted(scope.glob("claude-code-*/claude")):
        if os.access(candidate, os.X_OK):
            return candidate
    link = prefix / "node_modules" / ".bin" / "claude"
    return link if link.exists() else None


def _works(binary: Path) -> bool:
    try:
        result = subprocess.run(
            [str(binary), "--version"], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and b"Claude Code" in result.stdout


@pytest.fixture(scope="session")
def claude_binary() -> Path:
    prefix = _cache_dir()
    binary = _installed_binary(prefix)
    if binary is not None and _works(binary):
        return binary
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.skip("node/npm are not installed: cannot install the Claude Code CLI")
    prefix.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(
            [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", PACKAGE],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm install {PACKAGE} timed out (offline?)")
    binary = _installed_binary(prefix)
    if result.returncode != 0 or binary is None or not _works(binary):
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        pytest.skip(f"npm install {PACKAGE} failed (offline?): {' | '.join(tail)}")
    return binary


class ScriptedUpstream(LoopbackServer):
    """An OpenAI chat-completions server that drives one tool round trip."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.app.router.add_post("/v1/chat/completions", self.chat)
        self.app.router.add_get("/v1/models", self.models)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake-model"}]})

    def tool_results(self, body: dict[str, Any]) -> list[str]:
        return [str(m.get("content")) for m in body["messages"] if m.get("role") == "tool"]

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        tools = [t["function"]["name"] for t in body.get("tools") or []]
        if any(MARKER in result for result in self.tool_results(body)):
            chunks = openai_text_chunks(["The command printed ", MARKER, ". Done."])
            text = f"The command printed {MARKER}. Done."
        elif "Bash" in tools:
            arguments = json.dumps({"command": f"echo {MARKER}", "description": "Print it"})
            chunks = openai_tool_chunks("", [("call_cc1", "Bash", arguments)])
            text = ""
        else:
            chunks = openai_text_chunks(["Side request answered."])
            text = "Side request answered."
        if not body.get("stream"):
            return web.json_response(openai_completion(text))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in sse(chunks, done=True):
            await response.write(piece)
        await response.write_eof()
        return response


async def test_claude_code_runs_a_tool_through_the_gateway(
    claude_binary: Path, tmp_path: Path
) -> None:
    upstream = await ScriptedUpstream().start()
    home = tmp_path / "home"
    home.mkdir()
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = {
        "backends": {
            "local": {
                "type": "openai",
                "base_url": upstream.base_url,
                "model": "fake-model",
                "retry": {"max_attempts": 1},
            }
        }
    }
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PYTHONPATH": str(REPO),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "ENABLE_MULTI_BACKEND": "true",
        "LLM_BACKEND_CONFIG": json.dumps(config),
        "ANTHROPIC_API_KEY": "sk-ant-must-not-reach-claude",
    }
    prompt = f"Run `echo {MARKER}` with the Bash tool and tell me what it printed."
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ccrelay.cli",
            "code",
            "--claude-bin",
            str(claude_binary),
            "-p",
            prompt,
            "--allowedTools",
            "Bash(echo:*)",
            cwd=workdir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()
            pytest.fail(f"claude did not finish within {RUN_TIMEOUT_S} s")
    finally:
        await upstream.close()
    stdout, stderr = out.decode(), err.decode()
    assert process.returncode == 0, f"stdout: {stdout}\nstderr: {stderr}"
    assert MARKER in stdout and "Done." in stdout, stdout
    # Claude Code ran the tool: its result came back in a later request
    with_result = [r for r in upstream.requests if upstream.tool_results(r)]
    assert with_result, [len(r["messages"]) for r in upstream.requests]
    results = upstream.tool_results(with_result[0])
    assert any(MARKER in r for r in results), results
    first = upstream.requests[0]
    assert first["model"] == "fake-model"
    assert "thinking" not in first and "metadata" not in first
    assert "sk-ant-must-not-reach-claude" not in stdout + stderr
