"""A spent overload, answered by Claude Code version, with the real CLIs (issue 23).

Claude Code 2.1.332 drops a 529 that says ``x-should-retry: false``: one request. 2.1.197 reads
``overloaded_error`` (a 529, or that type in the body) before the header and retries it: three
requests (measured with both binaries). So the gateway answers a spent overload 529
``overloaded_error`` to 2.1.332 and later, and 503 ``api_error`` to older versions and unknown
clients, by the User-Agent (`ccrelay.gateway.errors.reply_status`).

The stand-in below answers every Messages request with the reply the gateway builds for a
spent overload (`ccrelay_error_response`, given the request's User-Agent) and counts them; the
CLIs come from the ``claude_release`` fixture (installed once into the test cache).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from ccrelay.errors import UpstreamOverloaded
from ccrelay.gateway.errors import ccrelay_error_response
from tests.claude_code_runner import offline_env, run_claude
from tests.fakes.providers import LoopbackServer

pytestmark = pytest.mark.claude_cli


@dataclass
class Answered:
    user_agent: str
    status: int


@dataclass
class SpentOverload(LoopbackServer):
    """Every Messages request gets the gateway's reply to an overload it already retried.
    `as_if`: answer every client as if it sent this User-Agent (None: its own)."""

    as_if: str | None = None
    answered: list[Answered] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()
        self.app.router.add_post("/v1/messages", self.messages)
        self.app.router.add_route("*", "/", self.root)  # 2.1.197 opens with `HEAD /`

    async def root(self, request: web.Request) -> web.Response:
        return web.json_response({"service": "stand-in"})

    async def messages(self, request: web.Request) -> web.Response:
        await request.read()
        user_agent = request.headers.get("User-Agent", "")
        error = UpstreamOverloaded("cerebras", "HTTP 529: Overloaded", upstream_status=529)
        error.attempts = 3
        reply = ccrelay_error_response(
            error, f"req_{len(self.answered)}", user_agent=self.as_if or user_agent
        )
        self.answered.append(Answered(user_agent, reply.status))
        return reply


async def ask_claude(claude: Path, url: str, home: Path) -> tuple[int, str]:
    await asyncio.to_thread(home.mkdir)
    env = offline_env(home, ANTHROPIC_BASE_URL=url, ANTHROPIC_API_KEY="sk-ant-test-overload")
    run = await run_claude(claude, home, env, "say hi", allowed_tools="Read")
    return run.returncode, run.stdout + run.stderr


@pytest.mark.parametrize(("version", "status"), [("2.1.332", 529), ("2.1.197", 503)])
async def test_each_version_gets_the_answer_it_does_not_retry(
    claude_release: Callable[[str], Path], tmp_path: Path, version: str, status: int
) -> None:
    claude = claude_release(version)
    gateway = await SpentOverload().start()
    try:
        code, said = await ask_claude(claude, gateway.url, tmp_path / "home")
    finally:
        await gateway.close()
    assert code != 0
    assert [a.status for a in gateway.answered] == [status], said  # one request, not retried
    assert gateway.answered[0].user_agent.startswith(f"claude-cli/{version} ")
    assert f"API Error: {status}" in said, said


async def test_the_older_cli_would_retry_a_529_whatever_the_header_says(
    claude_release: Callable[[str], Path], tmp_path: Path
) -> None:
    """Why 2.1.197 gets a 503: given the 529 2.1.332 gets, it tries three times."""
    claude = claude_release("2.1.197")
    gateway = await SpentOverload(as_if="claude-cli/2.1.332 (external, cli)").start()
    try:
        code, said = await ask_claude(claude, gateway.url, tmp_path / "home")
    finally:
        await gateway.close()
    assert code != 0
    assert [a.status for a in gateway.answered] == [529, 529, 529], said
