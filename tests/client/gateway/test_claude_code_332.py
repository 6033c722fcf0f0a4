"""Issue 23 with the real Claude Code 2.1.332 (and 2.1.197 as the older client).

- What the gateway's code relies on, captured as the CLI sends it (a `Tap` in front of an
  in-process gateway, claude given the environment `ccrelay code` builds): the session id
  header and ``metadata.user_id``, the request class, the beta list, ``context_management``,
  no billing line, the model-discovery call. 2.1.197 sends no class and no discovery call, and
  its session still completes.
- (a) ``routing.classes``: a ``/compact`` (``-p "/compact" --continue``, which 2.1.332 runs in
  print mode) is sent as ``x-claude-code-request-class: compaction`` and served by the backend
  the class names; the session's main requests stay on the active one (a compaction forced
  by a small window: tests/client/gateway/test_claude_code_context_editing.py).
- (b) model discovery: the gateway's picker ids (``claude-via-<backend>-<model>``) are fetched
  and kept by 2.1.332 (its ``~/.claude/cache/gateway-models.json`` is what ``/model`` lists),
  and a session started on one with ``--model`` is served by that backend and model (the
  interactive ``/model`` picker: tests/client/gateway/test_claude_code_picker.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ccrelay.cli.code import claude_environ
from ccrelay.routing.rules import picker_id
from tests.claude_code_hints import (
    CURRENT,
    OLDER,
    Tap,
    ccrelay_code,
    offline_env,
    request_records,
)
from tests.claude_code_runner import run_claude
from tests.client.gateway.conftest import config_env, running_gateway
from tests.fakes.openai_compat import Answer, ProfiledServer

pytestmark = [pytest.mark.claude_cli, pytest.mark.slow]

COMPACTION_PROMPT = "CRITICAL: Respond with TEXT ONLY"
SUMMARY = "Summary: notes.txt was read. COMPACTED-SESSION"
MARKER = "ccrelay-notes-marker"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
VLLM_MODEL = "Qwen/Qwen3-Coder-30B-A3B-Instruct"


def tool_names(body: dict[str, Any]) -> set[str]:
    return {t["function"]["name"] for t in body.get("tools") or []}


def has_tool_result(body: dict[str, Any]) -> bool:
    return any(m["role"] == "tool" for m in body["messages"])


class NotesReader:
    """The fake model: Read notes.txt once, then say what it holds; a compaction is answered
    with a summary; anything else (side requests) with a short text."""

    def __init__(self, workdir: Path) -> None:
        self.notes = str(workdir / "notes.txt")

    def __call__(self, body: dict[str, Any]) -> Answer:
        text = json.dumps(body["messages"])
        if COMPACTION_PROMPT in text:
            return Answer(text=SUMMARY)
        if "Read" not in tool_names(body):
            return Answer(text="Side request answered.")
        if has_tool_result(body):
            return Answer(text=f"The notes say {MARKER}.")
        return Answer(tool_calls=[("Read", json.dumps({"file_path": self.notes}))])


def workspace(tmp_path: Path, name: str) -> tuple[Path, Path]:
    workdir, home = tmp_path / f"work-{name}", tmp_path / f"home-{name}"
    workdir.mkdir()
    home.mkdir()
    (workdir / "notes.txt").write_text(f"The notes hold {MARKER}.\n")
    return workdir, home


def backend(server: ProfiledServer, model: str) -> dict[str, Any]:
    return {
        "type": "openai",
        "base_url": server.base_url,
        "model": model,
        "retry": {"max_attempts": 1},
    }


# -- what the CLI sends, at the gateway -----------------------------------------------------


async def run_tapped(
    claude: Path, workdir: Path, home: Path, server: ProfiledServer
) -> tuple[Tap, str, str]:
    """claude -p (one Read round trip) with `ccrelay code`'s environment, through a `Tap` in
    front of a gateway with one backend; (the tap, claude's stdout, the gateway's token)."""
    token = "gateway-token-0123456789"
    env = config_env({"local": backend(server, VLLM_MODEL)})
    async with running_gateway(env, auth_token=token) as gateway:
        tap = await Tap(gateway.url).start()
        try:
            child = claude_environ(offline_env(home, {}), tap.url, token, session="ccrelay-session")
            prompt = "What do the notes in notes.txt say?"
            run = await run_claude(claude, workdir, child, prompt, allowed_tools="Read")
        finally:
            await tap.close()
    assert run.returncode == 0, f"stdout: {run.stdout}\nstderr: {run.stderr}"
    return tap, run.stdout, token


@pytest.mark.parametrize("version", [CURRENT, OLDER])
async def test_what_claude_code_sends_is_what_the_gateway_relies_on(
    claude_release: Any, tmp_path: Path, profiled: Any, version: str
) -> None:
    claude = claude_release(version)
    workdir, home = workspace(tmp_path, version)
    server: ProfiledServer = await profiled("vllm", NotesReader(workdir))
    tap, stdout, token = await run_tapped(claude, workdir, home, server)
    assert MARKER in stdout  # the Read round trip went through the gateway
    main = [r for r in tap.messages() if "Read" in {t["name"] for t in r.body.get("tools", [])}]
    assert len(main) == 2, [r.headers.get("x-claude-code-request-class") for r in tap.messages()]
    sessions = set()
    for request in main:
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = request.body
        assert request.query == {"beta": "true"}
        assert headers["user-agent"].startswith(f"claude-cli/{version} ")
        assert headers["x-ccrelay-token"] == token  # ANTHROPIC_CUSTOM_HEADERS
        assert headers["x-api-key"] == "sk-ant-users-own-key"  # the user's, untouched
        # the session: a header, and the same id inside metadata.user_id (a JSON string)
        session = headers["x-claude-code-session-id"]
        assert UUID.match(session), session
        assert json.loads(body["metadata"]["user_id"])["session_id"] == session
        sessions.add(session)
        assert "context-management-2025-06-27" in headers["anthropic-beta"].split(",")
        assert body["context_management"] == {
            "edits": [{"type": "clear_thinking_20251015", "keep": "all"}]
        }
        assert body["stream"] is True
        if version == CURRENT:
            assert headers["x-claude-code-request-class"] == "main"
            # CLAUDE_CODE_ATTRIBUTION_HEADER=0: no per-session billing line in the prompt
            assert "x-anthropic-billing-header" not in json.dumps(body["system"])
        else:
            assert "x-claude-code-request-class" not in headers
    assert len(sessions) == 1
    # model discovery: 2.1.332 asks (even with non-essential traffic off); 2.1.197 does not
    listings = [r for r in tap.seen if r.method == "GET" and r.path == "/v1/models"]
    if version == CURRENT:
        (listing,) = listings
        assert listing.query == {"limit": "1000"}
        headers = {k.lower(): v for k, v in listing.headers.items()}
        assert headers["user-agent"] == f"claude-code/{version}"
        assert headers["x-ccrelay-token"] == token
    else:
        assert listings == []
    # the engine got the whole loop, the session's main requests through one route
    assert [has_tool_result(b) for b in server.requests if "Read" in tool_names(b)] == [
        False,
        True,
    ]


# -- (a) a compaction routed by its class ---------------------------------------------------


async def test_a_compaction_goes_to_the_backend_its_class_names(
    claude_release: Any, tmp_path: Path, profiled: Any
) -> None:
    claude = claude_release(CURRENT)
    workdir, home = workspace(tmp_path, "compact")
    reader = NotesReader(workdir)
    main_server: ProfiledServer = await profiled("vllm", reader)
    summarizer: ProfiledServer = await profiled("openai", reader)
    config = {
        "active": "local",
        "backends": {
            "local": backend(main_server, VLLM_MODEL),
            "summarizer": backend(summarizer, "fake-model"),
        },
        "routing": {"classes": {"compaction": {"backend": "summarizer"}}},
    }
    first = await ccrelay_code(
        claude, workdir, home, config, "-p", "What do the notes say?", "--allowedTools", "Read"
    )
    assert first.returncode == 0, f"stdout: {first.stdout}\nstderr: {first.stderr}"
    assert MARKER in first.stdout
    before = len(request_records(home / "state"))
    compact = await ccrelay_code(claude, workdir, home, config, "-p", "/compact", "--continue")
    assert compact.returncode == 0, f"stdout: {compact.stdout}\nstderr: {compact.stderr}"
    # the engines: every compaction on the summarizer, none on the main backend
    compactions = [b for b in summarizer.requests if COMPACTION_PROMPT in json.dumps(b)]
    assert compactions, [json.dumps(b)[:200] for b in summarizer.requests]
    assert len(compactions) == len(summarizer.requests)
    assert all(b["model"] == "fake-model" for b in compactions)
    assert MARKER in json.dumps(compactions[0]["messages"])  # the session it summarised
    assert not [b for b in main_server.requests if COMPACTION_PROMPT in json.dumps(b)]
    assert main_server.requests  # the session itself ran there
    # the gateway's records name the class and the rule
    records = request_records(home / "state")
    session_runs = records[:before]
    assert {(r["request_class"], r["route"], r["backend"]) for r in session_runs} == {
        ("main", "default", "local")
    }
    compacting = [r for r in records[before:] if r["request_class"] == "compaction"]
    assert len(compacting) == len(compactions)
    assert {(r["route"], r["backend"], r["outcome"]) for r in compacting} == {
        ("class:compaction", "summarizer", "ok")
    }


# -- (b) the backends in /model, with discovery on ------------------------------------------


async def test_the_gateway_s_picker_ids_are_kept_and_served(
    claude_release: Any, tmp_path: Path, profiled: Any
) -> None:
    claude = claude_release(CURRENT)
    workdir, home = workspace(tmp_path, "picker")
    main_server: ProfiledServer = await profiled("vllm", NotesReader(workdir))
    second: ProfiledServer = await profiled("openai", NotesReader(workdir))
    config = {
        "active": "local",
        "backends": {
            "local": backend(main_server, VLLM_MODEL),
            "second": backend(second, "fake-model"),
        },
    }
    first = await ccrelay_code(claude, workdir, home, config, "-p", "Say hello.")
    assert first.returncode == 0, f"stdout: {first.stdout}\nstderr: {first.stderr}"
    # what /model lists: Claude Code's discovery cache, kept only for ids it accepts
    cache = json.loads((home / ".claude" / "cache" / "gateway-models.json").read_text())
    assert cache["baseUrl"].startswith("http://127.0.0.1:")
    kept = {model["id"] if isinstance(model, dict) else model for model in cache["models"]}
    local_id, second_id = picker_id("local", VLLM_MODEL), picker_id("second", "fake-model")
    assert {local_id, second_id} <= kept, kept
    assert VLLM_MODEL not in kept and "fake-model" not in kept  # no "claude": dropped
    assert not second.requests  # nothing went there yet
    # a session started on the picked id is served by that backend and model
    picked = await ccrelay_code(
        claude,
        workdir,
        home,
        config,
        "--model",
        second_id,
        "-p",
        "What do the notes say?",
        "--allowedTools",
        "Read",
    )
    assert picked.returncode == 0, f"stdout: {picked.stdout}\nstderr: {picked.stderr}"
    assert MARKER in picked.stdout
    assert [has_tool_result(b) for b in second.requests if "Read" in tool_names(b)] == [
        False,
        True,
    ]
    assert all(b["model"] == "fake-model" for b in second.requests)
    records = [r for r in request_records(home / "state") if r["requested_model"] == second_id]
    assert len(records) == 2
    assert {(r["route"], r["backend"], r["model"]) for r in records} == {
        ("explicit", "second", "fake-model")
    }
