"""Run the real Claude Code CLI through `ccrelay code`, offline, in a throwaway HOME.

The binary comes from the ``claude_binary`` fixture (tests/conftest.py). Non-essential traffic
is off, so the only server Claude Code can reach is the gateway ccrelay starts for it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

RUN_TIMEOUT_S = 120


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


async def run_ccrelay_code(
    claude: Path,
    workdir: Path,
    home: Path,
    config: dict[str, Any] | Path,
    prompt: str,
    *,
    allowed_tools: str,
    extra_env: dict[str, str] | None = None,
    timeout_s: float = RUN_TIMEOUT_S,
) -> Run:
    """``ccrelay code --claude-bin CLAUDE -p PROMPT --allowedTools ...`` in `workdir` (which,
    like `home`, the caller has made). `config`: a document (sent inline as JSON) or a file.

    The environment is only this: no credential of the machine's own reaches Claude Code; a
    test gives it one through `extra_env` (``ANTHROPIC_API_KEY``) or a login in `home`."""
    env = offline_env(
        home,
        ENABLE_MULTI_BACKEND="true",
        LLM_BACKEND_CONFIG=str(config) if isinstance(config, Path) else json.dumps(config),
        CCRELAY_STATE_DIR=str(home / "state"),
        **(extra_env or {}),
    )
    argv = [*ccrelay_code_argv(claude), "-p", prompt, "--allowedTools", allowed_tools]
    return await run_process(argv, workdir, env, timeout_s)


def ccrelay_code_argv(claude: Path) -> list[str]:
    """``ccrelay code --claude-bin CLAUDE``, from this interpreter; claude's arguments follow."""
    return [sys.executable, "-m", "ccrelay.cli", "code", "--claude-bin", str(claude)]


def offline_env(home: Path, **more: str) -> dict[str, str]:
    """Claude Code's environment, offline, in `home`: nothing but `more` besides."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        **more,
    }


async def run_claude(
    claude: Path,
    workdir: Path,
    env: dict[str, str],
    prompt: str,
    *,
    allowed_tools: str,
    timeout_s: float = RUN_TIMEOUT_S,
) -> Run:
    """``claude -p PROMPT --allowedTools ...`` itself (no ``ccrelay code``), with `env` only
    (`offline_env` plus where it points: ``ANTHROPIC_BASE_URL`` and a credential)."""
    argv = [str(claude), "-p", prompt, "--allowedTools", allowed_tools]
    return await run_process(argv, workdir, env, timeout_s)


async def run_process(
    argv: list[str], cwd: Path, env: dict[str, str], timeout_s: float = RUN_TIMEOUT_S
) -> Run:
    """Run to the end within `timeout_s` (killed and failed past it); nothing on stdin. It
    runs in a process group of its own, so a timeout also ends what it started (the claude
    that ``ccrelay code`` runs)."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        pytest.fail(f"claude did not finish within {timeout_s:g} s")
    assert process.returncode is not None
    return Run(process.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
