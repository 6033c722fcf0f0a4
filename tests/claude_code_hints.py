"""Running Claude Code 2.1.332 (the gateway-hints release) through ccrelay, for the issue 23 tests.

- `ccrelay_code`: ``ccrelay code --claude-bin CLAUDE ARGS...`` offline in a throwaway HOME, as
  tests/claude_code_runner.py does, with any claude arguments (``--continue``, ``--model``);
- `request_records`: the gateway's latency records of such a run (its state dir), which name
  each request's class, route and backend;
- `Tap`: a loopback server in front of a gateway that keeps every request exactly as Claude
  Code sent it (headers, query, body) and passes it on, answer and all: what the gateway's
  code relies on, checked on the real CLI.

Binaries: ``claude_release(CURRENT)`` and ``claude_release(OLDER)`` (tests/conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.claude_code_runner import Run, ccrelay_code_argv, run_process
from tests.claude_code_runner import offline_env as runner_env
from tests.fakes.harness import LoopbackServer, Recorded

CURRENT = "2.1.332"
"""The release that sends the gateway hints (request class, model discovery)."""
OLDER = "2.1.197"
"""An older client that must keep working: no hints, prefix-only model filter."""
RUN_TIMEOUT_S = 120

__all__ = ["CURRENT", "OLDER", "Tap", "ccrelay_code", "offline_env", "request_records"]


def offline_env(home: Path, config: dict[str, Any], **extra: str) -> dict[str, str]:
    """The only environment a run gets (tests/claude_code_runner.py's `offline_env`), with the
    config inline, the state dir in `home` and the user's own key; a test's in `extra`."""
    return runner_env(
        home,
        ENABLE_MULTI_BACKEND="true",
        LLM_BACKEND_CONFIG=json.dumps(config),
        CCRELAY_STATE_DIR=str(home / "state"),
        ANTHROPIC_API_KEY="sk-ant-users-own-key",
        **extra,
    )


async def ccrelay_code(
    claude: Path,
    workdir: Path,
    home: Path,
    config: dict[str, Any],
    *claude_args: str,
    extra_env: dict[str, str] | None = None,
    timeout_s: float = RUN_TIMEOUT_S,
) -> Run:
    """``ccrelay code --claude-bin CLAUDE CLAUDE_ARGS...`` in `workdir` (made by the caller)."""
    argv = [*ccrelay_code_argv(claude), *claude_args]
    env = offline_env(home, config, **(extra_env or {}))
    return await run_process(argv, workdir, env, timeout_s)


def request_records(state: Path) -> list[dict[str, Any]]:
    """The ``request`` latency records under `state` (one per client request), oldest first."""
    found = [
        json.loads(line)
        for path in sorted(state.rglob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return sorted((r for r in found if r["kind"] == "request"), key=lambda r: r["timestamp"])


_HOP_BY_HOP = frozenset(
    {"connection", "content-length", "transfer-encoding", "content-encoding", "host"}
)


class Tap(LoopbackServer):
    """Every request kept as it arrived (`seen`), then sent on to `target`; the answer comes
    back whole (Claude Code reads a buffered SSE body the same way)."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target.rstrip("/")
        self.seen: list[Recorded] = []
        self.app.router.add_route("*", "/{tail:.*}", self._forward)

    def messages(self) -> list[Recorded]:
        return [r for r in self.seen if r.method == "POST" and r.path == "/v1/messages"]

    async def _forward(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.seen.append(
            Recorded(request.method, request.path, dict(request.headers), body, dict(request.query))
        )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with (
            aiohttp.ClientSession(auto_decompress=True) as client,
            client.request(
                request.method,
                self.target + request.path_qs,
                data=raw or None,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=RUN_TIMEOUT_S),
            ) as answer,
        ):
            payload = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=answer.status, body=payload, headers=kept)
