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

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.claude_code_runner import run_ccrelay_code
from tests.fakes.providers import (
    LoopbackServer,
    openai_completion,
    openai_text_chunks,
    openai_tool_chunks,
    sse,
)

pytestmark = pytest.mark.claude_cli

REPO = Path(__file__).resolve().parents[3]
MARKER = "ccrelay-marker"
RUN_TIMEOUT_S = 90


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
    prompt = f"Run `echo {MARKER}` with the Bash tool and tell me what it printed."
    try:
        run = await run_ccrelay_code(
            claude_binary,
            workdir,
            home,
            config,
            prompt,
            allowed_tools="Bash(echo:*)",
            extra_env={"ANTHROPIC_API_KEY": "sk-ant-users-own-key"},
        )
    finally:
        await upstream.close()
    stdout, stderr = run.stdout, run.stderr
    assert run.returncode == 0, f"stdout: {stdout}\nstderr: {stderr}"
    assert MARKER in stdout and "Done." in stdout, stdout
    # Claude Code ran the tool: its result came back in a later request
    with_result = [r for r in upstream.requests if upstream.tool_results(r)]
    assert with_result, [len(r["messages"]) for r in upstream.requests]
    results = upstream.tool_results(with_result[0])
    assert any(MARKER in r for r in results), results
    first = upstream.requests[0]
    assert first["model"] == "fake-model"
    assert "thinking" not in first and "metadata" not in first
    # Claude Code keeps the user's key; it never reaches another backend type, nor the output
    assert "sk-ant-users-own-key" not in stdout + stderr
    assert "sk-ant-users-own-key" not in json.dumps(upstream.requests)
