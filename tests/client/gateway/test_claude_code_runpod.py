"""The real Claude Code CLI on the ccrelay worker as RunPod runs it, with and without the gateway.

The worker is ``python -m ccrelay_handler`` under the runpod SDK's job loop, taking jobs from
the fake RunPod queue (`runpod_sdk`: tests/runpod_sdk_worker.py); its engine is a `FakeOllama`
whose model the test scripts. Claude Code reaches it two ways:

- through the gateway: ``ccrelay code`` with a ``runpod`` backend at the fake endpoint (the
  default stream mode: the endpoint's OpenAI route);
- straight at the endpoint, as docs/deploy.md ("Claude Code straight at the endpoint") says:
  ``ANTHROPIC_BASE_URL=<endpoint>/openai`` and ``ANTHROPIC_AUTH_TOKEN=<RunPod key>``, which
  Claude Code sends as ``Authorization: Bearer`` (the key RunPod checks).

The project's session scenario (test_claude_code_sessions.py: Read, Edit, Bash, a PDF) runs
both ways, with that module's own model and checks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.claude_code_runner import Run, offline_env, run_ccrelay_code, run_claude
from tests.client.gateway.test_claude_code_sessions import (
    SESSION_PROMPT,
    SESSION_TOOLS,
    Session,
    check_session,
    steps_done,
    tool_names,
    workspace,
)
from tests.fakes.openai_compat import Answer
from tests.runpod_sdk_worker import RunPodStack

pytestmark = [pytest.mark.claude_cli, pytest.mark.slow]

WARM_UP = {"ccrelay_warmup": True}
NOTE = "The launch code is 4417, kept in the blue binder."


async def run_claude_at_endpoint(
    claude: Path, workdir: Path, home: Path, stack: RunPodStack, prompt: str, *, allowed_tools: str
) -> Run:
    """``claude -p PROMPT`` pointed straight at the endpoint with the two variables of
    docs/deploy.md, offline (as tests/claude_code_runner.py runs it: no non-essential traffic,
    a throwaway HOME, ``--allowedTools``), with no other credential."""
    env = offline_env(
        home,
        ANTHROPIC_BASE_URL=f"{stack.runpod.endpoint_url}/openai",
        ANTHROPIC_AUTH_TOKEN=stack.runpod.api_key,
    )
    return await run_claude(claude, workdir, env, prompt, allowed_tools=allowed_tools)


async def run_on_worker(
    via: str, claude: Path, workdir: Path, home: Path, stack: RunPodStack, prompt: str, tools: str
) -> Run:
    if via == "endpoint":
        return await run_claude_at_endpoint(
            claude, workdir, home, stack, prompt, allowed_tools=tools
        )
    backend = {
        "type": "runpod",
        "endpoint_url": stack.runpod.endpoint_url,
        "api_key": "${RUNPOD_API_KEY}",
    }
    return await run_ccrelay_code(
        claude,
        workdir,
        home,
        {"backends": {"runpod": backend}},
        prompt,
        allowed_tools=tools,
        extra_env={"RUNPOD_API_KEY": stack.runpod.api_key},
    )


def assert_every_request_was_a_messages_job(stack: RunPodStack, run: Run) -> None:
    """Each request went through RunPod's OpenAI route, with the RunPod key, as a Messages
    job the worker completed; the key never reached the output."""
    runpod = stack.runpod
    routed = [r for r in runpod.requests if r.path.endswith("/openai/v1/messages")]
    assert routed, [r.path for r in runpod.requests]
    assert {r.headers["Authorization"] for r in routed} == {f"Bearer {runpod.api_key}"}
    jobs = list(runpod.jobs.values())
    messages = [job for job in jobs if job.input != WARM_UP]
    assert {job.input["openai_route"] for job in messages} == {"/v1/messages"}
    assert len(jobs) - len(messages) <= 1  # `ccrelay code` warms the worker while one types
    assert {job.status for job in jobs} == {"COMPLETED"}
    assert runpod.api_key not in run.stdout + run.stderr


async def test_claude_code_straight_at_the_endpoint_reads_a_file_through_the_worker(
    claude_binary: Path, runpod_sdk: RunPodStack, tmp_path: Path
) -> None:
    workdir, home = tmp_path / "work", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    note = workdir / "notes.txt"
    note.write_text(NOTE + "\n")

    def model(body: dict[str, Any]) -> Answer:
        if "Read" not in tool_names(body):  # a side request (a title, a summary)
            return Answer(text="Side request answered.")
        if steps_done(body) == 0:
            return Answer(tool_calls=[("Read", json.dumps({"file_path": str(note)}))])
        return Answer(text="The note says where the launch code is kept: the blue binder.")

    runpod_sdk.ollama.responder = model
    run = await run_claude_at_endpoint(
        claude_binary,
        workdir,
        home,
        runpod_sdk,
        "What does notes.txt say?",
        allowed_tools="Read",
    )
    assert run.returncode == 0, f"stdout: {run.stdout}\nstderr: {run.stderr}"
    assert "the blue binder" in run.stdout
    main = [body for body in runpod_sdk.ollama.requests if "Read" in tool_names(body)]
    assert [steps_done(body) for body in main] == [0, 1]
    (result,) = [m for m in main[1]["messages"] if m["role"] == "tool"]
    assert NOTE in json.dumps(result["content"])  # the file reached the model
    assert_every_request_was_a_messages_job(runpod_sdk, run)


@pytest.mark.parametrize("via", ["gateway", "endpoint"])
async def test_a_read_edit_bash_pdf_session_completes_on_the_worker(
    claude_binary: Path, runpod_sdk: RunPodStack, tmp_path: Path, via: str
) -> None:
    workdir, home = workspace(tmp_path, via)
    runpod_sdk.ollama.responder = Session(workdir)
    run = await run_on_worker(
        via, claude_binary, workdir, home, runpod_sdk, SESSION_PROMPT, SESSION_TOOLS
    )
    check_session(run, workdir, runpod_sdk.ollama.requests)
    assert_every_request_was_a_messages_job(runpod_sdk, run)
