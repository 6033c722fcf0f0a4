"""Issue 21's done-when: two interleaved Claude Code sessions on a load-balanced endpoint with
two workers, and every request after a session's first one lands on that session's worker.

One gateway (built as `ccrelay serve` builds it) with a ``runpod`` backend (``endpoint_type:
load_balancer``) at the fake load balancer (tests/fakes/runpod_balancer/), in front of two
already-started workers running this repository's worker in HTTP mode (a real redis-server and
the fake Ollama behind them). Two real Claude Code CLIs run at once; the fake model answers each
with a Read tool call a few times, then text. The balancer's record says which worker served
each request, and the session comes from the request itself: Claude Code's
``metadata.user_id`` carries the same session id as its ``X-Claude-Code-Session-Id`` header,
which the gateway receives and pins by.

The counterfactual (affinity off, the same balancer: a session is spread over both workers)
is shown with the official SDK through the same gateway, cheaper than the CLI.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.claude_code_runner import offline_env, run_claude
from tests.client.gateway.conftest import Gateway, config_env, running_gateway
from tests.fakes.openai_compat import Answer
from tests.fakes.runpod_balancer import FakeLoadBalancer, Routed, http_mode_worker

READS = 3
SESSION_HEADER = "X-Claude-Code-Session-Id"


def runpod_backend(balancer: FakeLoadBalancer, affinity: str) -> dict[str, Any]:
    return {
        "type": "runpod",
        "endpoint_type": "load_balancer",
        "endpoint_url": balancer.url,
        "api_key": balancer.api_key,
        "retry": {"max_attempts": 1, "initial_backoff_s": 0},
        "cold_start": {"affinity": {"mode": affinity}},
    }


@asynccontextmanager
async def endpoint(
    make_settings: Any, affinity: str
) -> AsyncIterator[tuple[FakeLoadBalancer, Gateway]]:
    """Two started workers behind the fake load balancer, and a gateway in front of it."""
    worker_app = http_mode_worker(lambda: make_settings(OLLAMA_CONTEXT_LENGTH="131072"))
    balancer = await FakeLoadBalancer(worker_app, max_workers=2).start()
    try:
        await balancer.start_workers(2)
        env = config_env({"runpod": runpod_backend(balancer, affinity)})
        async with running_gateway(env) as gateway:
            yield balancer, gateway
    finally:
        await balancer.close()


def session_of(routed: Routed) -> str | None:
    """The Claude Code session a request belongs to: ``metadata.user_id`` (a JSON string
    holding ``session_id``), as Claude Code sends it and the gateway passes it on."""
    body = routed.body if isinstance(routed.body, dict) else {}
    user = (body.get("metadata") or {}).get("user_id")
    try:
        session = json.loads(user).get("session_id") if isinstance(user, str) else None
    except ValueError:
        return None
    return session if isinstance(session, str) else None


def workers_by_session(balancer: FakeLoadBalancer) -> dict[str | None, list[str | None]]:
    by_session: dict[str | None, list[str | None]] = defaultdict(list)
    for routed in balancer.routed:
        if routed.path == "/v1/messages":
            by_session[session_of(routed)].append(routed.worker)
    return dict(by_session)


class ReadLoop:
    """The fake model: Read the session's notes file `READS` times, then say it is done.
    Which session a request is from shows in its prompt (Claude Code names its working
    directory); side requests without tools get a short text."""

    def __init__(self, workdirs: dict[str, Path]) -> None:
        self.workdirs = workdirs

    def __call__(self, body: dict[str, Any]) -> Answer:
        tools = {t["function"]["name"] for t in body.get("tools") or []}
        text = json.dumps(body)
        name = next((n for n, path in self.workdirs.items() if str(path) in text), None)
        if "Read" not in tools or name is None:
            return Answer(text="Side request answered.")
        reads = sum(1 for m in body["messages"] if m["role"] == "tool")
        if reads < READS:
            path = str(self.workdirs[name] / "notes.txt")
            return Answer(tool_calls=[("Read", json.dumps({"file_path": path}))])
        return Answer(text=f"Session {name} is done.")


async def claude_at(claude: Path, url: str, workdir: Path, home: Path) -> tuple[int, str]:
    """Claude Code, offline (tests/claude_code_runner.py), at the gateway."""
    env = offline_env(home, ANTHROPIC_BASE_URL=url, ANTHROPIC_API_KEY="sk-ant-test-affinity")
    prompt = f"Read notes.txt {READS} times, then say you are done."
    run = await run_claude(claude, workdir, env, prompt, allowed_tools="Read")
    return run.returncode, run.stdout + run.stderr


@pytest.mark.claude_cli
@pytest.mark.slow
async def test_two_interleaved_claude_code_sessions_each_keep_their_worker(
    claude_binary: Path, tmp_path: Path, make_settings: Any, ollama_server: Any
) -> None:
    workdirs, homes = {}, {}
    for name in ("a", "b"):
        workdirs[name] = tmp_path / f"work-{name}"
        homes[name] = tmp_path / f"home-{name}"
        workdirs[name].mkdir()
        homes[name].mkdir()
        (workdirs[name] / "notes.txt").write_text(f"Notes of session {name}.\n")
    ollama_server.responder = ReadLoop(workdirs)
    async with endpoint(make_settings, "soft") as (balancer, gateway):
        runs = await asyncio.gather(
            *(claude_at(claude_binary, gateway.url, workdirs[n], homes[n]) for n in ("a", "b"))
        )
    for name, (code, said) in zip(("a", "b"), runs, strict=True):
        assert code == 0, said
        assert f"Session {name} is done." in said, said
    by_session = workers_by_session(balancer)
    assert None not in by_session, by_session  # every request names its session
    assert len(by_session) == 2, by_session
    for session, workers in by_session.items():
        assert len(workers) >= READS + 1, (session, workers)  # the tool loop went through
        assert set(workers[1:]) == {workers[0]}, (session, workers)
    assert {workers[0] for workers in by_session.values()} == {w.id for w in balancer.workers}


@pytest.mark.parametrize("affinity", ["soft", "off"])
async def test_the_gateway_pins_by_claude_code_s_session_header(
    make_settings: Any, ollama_server: Any, affinity: str
) -> None:
    """Two sessions through the gateway with the official SDK, two requests each in turn
    (a a b b a a b b): pinned, each stays on one worker; with affinity off the same balancer's
    round robin spreads each over both. The body's ``metadata`` names the session as Claude
    Code's does, for the record only: the gateway pins by the header."""
    async with endpoint(make_settings, affinity) as (balancer, gateway):
        clients = {
            name: anthropic.AsyncAnthropic(
                base_url=gateway.url,
                api_key="sk-ant-test",
                default_headers={SESSION_HEADER: f"session-{name}"},
                max_retries=0,
            )
            for name in ("a", "b")
        }
        for turn in range(4):
            for name, client in clients.items():
                for step in range(2):
                    await client.messages.create(
                        model="claude-sonnet-4-5",
                        max_tokens=64,
                        messages=[{"role": "user", "content": f"{name} {turn} {step}"}],
                        metadata={"user_id": json.dumps({"session_id": f"session-{name}"})},
                    )
        for client in clients.values():
            await client.close()
    by_session = workers_by_session(balancer)
    assert sorted(by_session) == ["session-a", "session-b"]
    spread = [set(workers) for workers in by_session.values()]
    if affinity == "soft":
        assert [len(s) for s in spread] == [1, 1] and spread[0] != spread[1], by_session
    else:
        assert [len(s) for s in spread] == [2, 2], by_session
