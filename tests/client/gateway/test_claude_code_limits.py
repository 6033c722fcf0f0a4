"""The real Claude Code CLI at the limits: a context window it must compact for, and an upstream
that is down for good (issue 12).

- Window: the worker's Ollama would silently drop the oldest messages of a prompt past its
  context. Through the gateway, a session whose history outgrows a small ``context_window`` is
  refused in the words Claude Code compacts on (or compacts first, told the window by
  ``CLAUDE_CODE_AUTO_COMPACT_WINDOW``), and completes; Ollama never gets a prompt to cut.
- Down: the gateway spends its own retries, then answers with ``x-should-retry: false``, so
  Claude Code does not multiply them by its own ten.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.claude_code_runner import run_ccrelay_code
from tests.fakes.openai_compat import Answer, ProfiledServer
from tests.fakes.providers import LoopbackServer

pytestmark = pytest.mark.claude_cli

COMPACTION = "CRITICAL: Respond with TEXT ONLY"
DONE = "Finished after compaction."


def tool_names(body: dict[str, Any]) -> set[str]:
    return {t["function"]["name"] for t in body.get("tools") or []}


def text_of(body: dict[str, Any]) -> str:
    return json.dumps(body["messages"])


class GrowingSession:
    """Each step prints a big file again, until the history no longer fits; after the
    compaction, the summary says so and the model finishes."""

    def __init__(self, big: Path) -> None:
        self.big = str(big)
        self.compactions = 0

    def __call__(self, body: dict[str, Any]) -> Answer:
        text = text_of(body)
        if COMPACTION in text:
            self.compactions += 1
            return Answer(text="Summary: the big file was printed several times. COMPACTED-SESSION")
        if "Bash" not in tool_names(body):
            return Answer(text="Side request answered.")
        if "COMPACTED-SESSION" in text:
            return Answer(text=DONE)
        return Answer(
            tool_calls=[
                ("Bash", json.dumps({"command": f"cat {self.big}", "description": "Print"}))
            ]
        )


async def test_a_session_past_a_small_window_compacts_instead_of_failing(
    claude_binary: Path, tmp_path: Path, profiled: Any
) -> None:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    big = work / "big.txt"
    big.write_text("".join(f"line {n}: some log output that goes on and on\n" for n in range(600)))
    session = GrowingSession(big)
    window = 40_000
    server: ProfiledServer = await profiled("ollama", session, context_length=window)
    backend = {"type": "ollama", "base_url": server.base_url, "context_window": window}
    run = await run_ccrelay_code(
        claude_binary,
        work,
        home,
        {"backends": {"local": backend}},
        "Print big.txt with Bash until you have seen it enough, then say you are done.",
        allowed_tools="Bash(cat:*)",
    )
    assert run.returncode == 0, f"stdout: {run.stdout}\nstderr: {run.stderr}"
    assert DONE in run.stdout, run.stdout
    assert session.compactions >= 1  # Claude Code compacted
    assert server.profile.truncated == 0  # Ollama never had to cut a prompt silently
    limit = window - window // 8
    from ccrelay_translate.tokens import estimate_text

    for body in server.requests:  # every prompt sent fitted (by the OpenAI body's own size)
        assert estimate_text(json.dumps(body["messages"])) < limit * 1.5


class DownUpstream(LoopbackServer):
    """Every chat request answered 503, counted."""

    def __init__(self) -> None:
        super().__init__()
        self.main = 0
        self.side = 0
        self.app.router.add_post("/v1/chat/completions", self._chat)
        self.app.router.add_get("/v1/models", self._chat)

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        if {"Bash", "Read"} & tool_names(body or {}):
            self.main += 1
        else:
            self.side += 1
        return web.json_response({"error": {"message": "no healthy upstream"}}, status=503)


async def test_with_the_upstream_down_claude_code_gives_up_after_the_gateway_s_attempts(
    claude_binary: Path, tmp_path: Path
) -> None:
    upstream = await DownUpstream().start()
    (tmp_path / "work").mkdir()
    (tmp_path / "home").mkdir()
    attempts = 3
    backend = {
        "type": "openai",
        "base_url": upstream.url + "/v1",
        "model": "m",
        "retry": {"max_attempts": attempts, "initial_backoff_s": 0.05, "max_backoff_s": 0.1},
    }
    started = time.monotonic()
    try:
        run = await run_ccrelay_code(
            claude_binary,
            tmp_path / "work",
            tmp_path / "home",
            {"backends": {"down": backend}},
            "Say hello.",
            allowed_tools="Read",
        )
    finally:
        await upstream.close()
    elapsed = time.monotonic() - started
    assert run.returncode != 0
    assert upstream.main <= attempts, (upstream.main, upstream.side)  # one Claude Code request
    assert elapsed < 30, elapsed  # not minutes of Claude Code's own retries
    print(f"upstream down: {upstream.main} main + {upstream.side} side requests, {elapsed:.1f} s")
