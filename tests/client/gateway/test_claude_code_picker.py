"""Issue 23 (b) in the interactive CLI: Claude Code 2.1.332's ``/model`` picker, under
`ccrelay code`, lists the configured backends (model discovery is on), and picking one sends
the session's next prompt to that backend and model.

Claude Code's TUI runs in a tmux pane of a private tmux server (its own socket in the test's
temp dir, killed after); the test types as a user would and reads the screen. HOME is
pre-seeded the way Claude Code stores a finished onboarding, a trusted folder and an approved
API key (``~/.claude.json``), so the prompt comes up at once. Skips without tmux.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ccrelay.routing.rules import picker_id
from tests.claude_code_hints import CURRENT, offline_env, request_records
from tests.fakes.openai_compat import Answer, ProfiledServer

pytestmark = [pytest.mark.claude_cli, pytest.mark.slow]

API_KEY = "sk-ant-users-own-key"
SCREEN_WAIT_S = 30.0
VLLM_MODEL = "Qwen/Qwen3-Coder-30B-A3B-Instruct"
FROM_SECOND = "Hello from the second backend"


class Pane:
    """One tmux session on a private server: type into it, wait for text on its screen."""

    def __init__(self, socket: Path) -> None:
        self.tmux = shutil.which("tmux") or pytest.skip("tmux is not installed")
        self.socket = str(socket)

    def _run(self, *args: str) -> str:
        return self._done(*args).stdout

    def _done(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.tmux, "-S", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )

    def start(self, command: str) -> None:
        self._run("new-session", "-d", "-s", "cc", "-x", "200", "-y", "50", command)

    def screen(self) -> str:
        return self._run("capture-pane", "-p", "-t", "cc")

    def keys(self, *keys: str) -> None:
        self._run("send-keys", "-t", "cc", *keys)

    async def wait_for(self, text: str) -> str:
        deadline = asyncio.get_running_loop().time() + SCREEN_WAIT_S
        while asyncio.get_running_loop().time() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            await asyncio.sleep(0.2)
        pytest.fail(f"{text!r} did not appear within {SCREEN_WAIT_S:g} s; screen:\n{self.screen()}")

    async def wait_gone(self, text: str) -> None:
        deadline = asyncio.get_running_loop().time() + SCREEN_WAIT_S
        while text in self.screen():
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"{text!r} still on the screen; screen:\n{self.screen()}")
            await asyncio.sleep(0.2)

    async def wait_exit(self) -> None:
        """Until the command in the pane has exited (`ccrelay code` writes its records)."""
        deadline = asyncio.get_running_loop().time() + SCREEN_WAIT_S
        while self._done("has-session", "-t", "cc").returncode == 0:
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"claude did not exit; screen:\n{self.screen()}")
            await asyncio.sleep(0.2)

    def kill(self) -> None:
        self._run("kill-server")


def seed_home(home: Path, workdir: Path) -> None:
    """What Claude Code writes once onboarding, the folder's trust dialog and the "use this API
    key?" question are done (its ``~/.claude.json``; the key by its last 20 characters)."""
    state = {
        "hasCompletedOnboarding": True,
        "theme": "dark",
        "customApiKeyResponses": {"approved": [API_KEY[-20:]], "rejected": []},
        "projects": {
            str(workdir): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}
        },
    }
    (home / ".claude.json").write_text(json.dumps(state))


async def test_the_model_picker_lists_the_backends_and_switches_to_one(
    claude_release: Any, tmp_path: Path, profiled: Any
) -> None:
    claude = claude_release(CURRENT)
    workdir, home = tmp_path / "work", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    seed_home(home, workdir)
    local: ProfiledServer = await profiled("vllm", lambda body: Answer(text="Hello from local"))
    second: ProfiledServer = await profiled("openai", lambda body: Answer(text=FROM_SECOND))
    config = {
        "active": "local",
        "backends": {
            "local": {"type": "openai", "base_url": local.base_url, "model": VLLM_MODEL},
            "second": {"type": "openai", "base_url": second.base_url, "model": "fake-model"},
        },
    }
    env = offline_env(home, config, TERM="xterm-256color", API_KEY=API_KEY)
    env["ANTHROPIC_API_KEY"] = API_KEY
    code = shlex.join([sys.executable, "-m", "ccrelay.cli", "code", "--claude-bin", str(claude)])
    assignments = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
    pane = Pane(tmp_path / "tmux.sock")
    try:
        pane.start(f"cd {shlex.quote(str(workdir))} && exec env -i {assignments} {code}")
        await pane.wait_for("Claude Code v2.1.332")
        pane.keys("/model")
        await asyncio.sleep(0.5)  # the command list opens as it is typed
        pane.keys("Enter")
        screen = await pane.wait_for("fake-model on second")
        # listed from GET /v1/models: display name and description, one line per backend
        lines = [line for line in screen.splitlines() if "ccrelay: " in line]
        assert [line.split("ccrelay: ")[1].strip() for line in lines] == [
            f"local,{VLLM_MODEL}",
            "second,fake-model",
        ], screen
        number = re.search(r"(\d+)\.\s", next(line for line in lines if "second" in line))
        assert number is not None, screen
        pane.keys(number.group(1))  # the picker takes an item's number
        await asyncio.sleep(0.5)
        pane.keys("Enter")
        await pane.wait_gone("Select model")
        pane.keys("Say hello.")
        await asyncio.sleep(0.5)
        pane.keys("Enter")
        await pane.wait_for(FROM_SECOND)
        pane.keys("/exit")
        await asyncio.sleep(0.5)
        pane.keys("Enter")
        await pane.wait_exit()
    finally:
        pane.kill()
    records = [r for r in request_records(home / "state") if r["request_class"] == "main"]
    assert records, request_records(home / "state")
    (last,) = records[-1:]
    assert last["requested_model"] == picker_id("second", "fake-model")
    assert (last["route"], last["backend"], last["model"]) == ("explicit", "second", "fake-model")
    assert second.requests and all(b["model"] == "fake-model" for b in second.requests)
