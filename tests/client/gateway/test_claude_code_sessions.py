"""Real Claude Code sessions through the gateway, against fakes of Ollama, Cerebras and vLLM.

The fake's model (a script keyed on how many tool results the request carries) drives one
session: Read a file, Edit it, run Bash, Read a PDF, then answer. The profiles add the real
services' quirks: Ollama repeats its completion ids (narrowed here to one id, the worst case),
keeps one system message and refuses what it cannot decode; Cerebras refuses unknown fields
and schema keywords; vLLM sends ``reasoning_content``. The session must complete, every
request upstream must show the history as it happened (one assistant turn per step, never
merged), the PDF must not end the session, and two sessions must send the same system text.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from tests.claude_code_runner import Run, run_ccrelay_code
from tests.fakes.openai_compat import Answer, ProfiledServer
from tests.pdf_samples import make_pdf

pytestmark = pytest.mark.claude_cli

PDF_FACT = "The audit found 7 open issues"
PROFILES = {
    # profile: (backend type, model, profile knobs)
    "ollama": ("ollama", "qwen3-coder:30b", {"id_pool": 1}),
    "cerebras": ("cerebras", None, {}),
    "vllm": ("openai", "Qwen/Qwen3-Coder-30B-A3B-Instruct", {}),
}


def tool_names(body: dict[str, Any]) -> set[str]:
    return {t["function"]["name"] for t in body.get("tools") or []}


def steps_done(body: dict[str, Any]) -> int:
    return sum(1 for m in body["messages"] if m["role"] == "tool")


class Session:
    """The fake model: what to do next, from the tool results the request carries."""

    def __init__(self, workdir: Path) -> None:
        self.app = str(workdir / "app.py")
        self.pdf = str(workdir / "report.pdf")

    def __call__(self, body: dict[str, Any]) -> Answer:
        if body.get("response_format"):  # Claude Code's session title (output_config.format)
            return Answer(text=json.dumps({"title": "Edit app"}))
        if not {"Read", "Edit", "Bash"} <= tool_names(body):
            return Answer(text="Side request answered.")
        step = steps_done(body)
        call = [
            ("Read", {"file_path": self.app}),
            ("Edit", {"file_path": self.app, "old_string": "VALUE = 1", "new_string": "VALUE = 2"}),
            ("Bash", {"command": f"cat {self.app}", "description": "Show the file"}),
            ("Read", {"file_path": self.pdf}),
        ]
        if step < len(call):
            name, arguments = call[step]
            return Answer(reasoning=f"Step {step + 1}.", tool_calls=[(name, json.dumps(arguments))])
        return Answer(text="All done: VALUE is now 2.")


def assert_history_as_it_happened(body: dict[str, Any]) -> None:
    """One assistant turn per step, each answered by its tool result: never merged."""
    roles = [m["role"] for m in body["messages"] if m["role"] != "system"]
    steps = steps_done(body)
    assistants = [m for m in body["messages"] if m["role"] == "assistant"]
    assert len(assistants) == steps, roles
    for message in assistants:
        assert len(message.get("tool_calls") or []) == 1, roles
    for earlier, later in itertools.pairwise(roles):
        assert not (earlier == later == "assistant"), roles


SESSION_PROMPT = "Change VALUE in app.py to 2, show the file, then read report.pdf."
SESSION_TOOLS = "Read,Edit,Bash(cat:*)"


def check_session(run: Run, workdir: Path, engine_bodies: list[Any]) -> None:
    """The `Session` went as it should: every step ran, the engine (`engine_bodies`: the chat
    requests it received) saw the history as it happened, and the PDF reached it as text.
    Also run against the ccrelay worker (test_claude_code_runpod.py)."""
    assert run.returncode == 0, f"stdout: {run.stdout}\nstderr: {run.stderr}"
    assert "All done" in run.stdout, run.stdout
    assert (workdir / "app.py").read_text() == "VALUE = 2\n"  # the Edit ran
    main = [body for body in engine_bodies if {"Read", "Edit", "Bash"} <= tool_names(body)]
    assert [steps_done(body) for body in main] == [0, 1, 2, 3, 4]
    for body in main:
        assert_history_as_it_happened(body)
    after_pdf = json.dumps(main[-1]["messages"])
    assert PDF_FACT in after_pdf  # the PDF reached the model as its text


def workspace(tmp_path: Path, name: str) -> tuple[Path, Path]:
    workdir = tmp_path / f"work-{name}"
    workdir.mkdir()
    (workdir / "app.py").write_text("VALUE = 1\n")
    (workdir / "report.pdf").write_bytes(make_pdf(["Audit report", PDF_FACT]))
    home = tmp_path / f"home-{name}"
    home.mkdir()
    return workdir, home


@pytest.mark.parametrize("profile", sorted(PROFILES))
async def test_a_read_edit_bash_pdf_session_completes(
    claude_binary: Path, tmp_path: Path, profiled: Any, profile: str
) -> None:
    kind, model, knobs = PROFILES[profile]
    workdir, home = workspace(tmp_path, profile)
    server: ProfiledServer = await profiled(profile, Session(workdir), **knobs)
    backend: dict[str, Any] = {"type": kind, "base_url": server.base_url, "api_key": "k-123456"}
    if model:
        backend["model"] = model
    run = await run_ccrelay_code(
        claude_binary,
        workdir,
        home,
        {"backends": {profile: backend}},
        SESSION_PROMPT,
        allowed_tools=SESSION_TOOLS,
    )
    check_session(run, workdir, server.requests)


async def test_two_sessions_send_byte_identical_system_text(
    claude_binary: Path, tmp_path: Path, profiled: Any
) -> None:
    """No per-session billing line: the prompt prefix (and so the caches) is shared."""
    server: ProfiledServer = await profiled("ollama", lambda body: Answer(text="Hello."))
    backend = {"type": "ollama", "base_url": server.base_url}
    systems = []
    workdir, home = workspace(tmp_path, "same")  # one user, one project: two sessions
    for _ in range(2):
        before = len(server.requests)
        run = await run_ccrelay_code(
            claude_binary,
            workdir,
            home,
            {"backends": {"local": backend}},
            "Say hello.",
            allowed_tools="Read",
        )
        assert run.returncode == 0, run.stderr
        main = [b for b in server.requests[before:] if "Read" in tool_names(b)]
        assert main, [tool_names(b) for b in server.requests[before:]]
        systems.append(main[0]["messages"][0])
    assert systems[0]["role"] == "system"
    assert systems[0]["content"] == systems[1]["content"]
    assert "x-anthropic-billing-header" not in systems[0]["content"]
