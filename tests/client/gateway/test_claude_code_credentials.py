"""The real Claude Code CLI keeps its own Anthropic credential through `ccrelay code` (issue 24).

README's own example (Cerebras first, plain Anthropic when Cerebras is down) is run as README
writes it: the YAML is read out of README.md. Only the addresses change, since tests talk to
127.0.0.1 alone: Cerebras' ``base_url`` points at a loopback stand-in (or at nothing), and
Anthropic is reached through ``ANTHROPIC_BASE_URL_UPSTREAM``, the user's own word for where
Anthropic is. Two users:

- an API-key user (``ANTHROPIC_API_KEY`` in the environment);
- a Claude Pro/Max user logged in through OAuth (a ``.credentials.json`` in the throwaway HOME,
  no key anywhere): Claude Code sends its own ``Authorization: Bearer`` token.

Before, ``ccrelay code`` removed the key and replaced Claude Code's credential with the
gateway's token, so the Anthropic fallback had nothing to send, and a subscriber could never
be served by it. Now the Anthropic stand-in receives the user's credential unchanged and the
Cerebras stand-in never does; the gateway's log lines go to a file, not into claude's output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.claude_code_runner import Run, run_ccrelay_code
from tests.conftest import free_port, write_claude_login
from tests.fakes.providers import FakeAnthropic, FakeOpenAI, Recorded, Reply

pytestmark = pytest.mark.claude_cli

REPO = Path(__file__).resolve().parents[3]
API_KEY = "sk-ant-api03-user-canary-key"
LOGIN = "sk-ant-oat01-user-canary-login"
CEREBRAS_KEY = "csk-test-own-key"


def readme_config() -> dict[str, Any]:
    """The backends.yaml README's "Use it from Claude Code" block writes, as it writes it."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Use it from Claude Code") :]
    found = re.search(r"<<'EOF'\n(.*?)\nEOF", section, re.S)
    assert found is not None
    document: dict[str, Any] = yaml.safe_load(found.group(1))
    assert document["fallback"] == ["cerebras", "anthropic"]
    assert document["backends"]["anthropic"] == {"type": "anthropic"}  # no key, no base_url
    return document


def headers_of(requests: list[Recorded]) -> str:
    return json.dumps([r.headers for r in requests])


async def run_readme_example(
    claude: Path,
    tmp_path: Path,
    anthropic: FakeAnthropic,
    cerebras_url: str,
    *,
    api_key: str | None,
    login: str | None,
) -> Run:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    if login is not None:
        write_claude_login(home, login)
    document = readme_config()
    document["backends"]["cerebras"]["base_url"] = cerebras_url  # a loopback stand-in
    path = home / ".config" / "ccrelay" / "backends.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    env = {"CEREBRAS_API_KEY": CEREBRAS_KEY, "ANTHROPIC_BASE_URL_UPSTREAM": anthropic.url}
    if api_key is not None:
        env["ANTHROPIC_API_KEY"] = api_key
    return await run_ccrelay_code(
        claude, work, home, path, "Say hello.", allowed_tools="Read", extra_env=env
    )


def assert_served_by_anthropic_with(run: Run, anthropic: FakeAnthropic, credential: str) -> None:
    assert run.returncode == 0, f"stdout: {run.stdout}\nstderr: {run.stderr}"
    assert "Hello from Claude" in run.stdout
    messages = [r for r in anthropic.requests if r.path == "/v1/messages"]
    assert messages, [r.path for r in anthropic.requests]
    for sent in messages:
        lowered = {k.lower(): v for k, v in sent.headers.items()}
        if credential == API_KEY:
            assert lowered["x-api-key"] == API_KEY  # unchanged
            assert "authorization" not in lowered
        else:
            assert lowered["authorization"] == f"Bearer {LOGIN}"  # unchanged
            assert "x-api-key" not in lowered
            assert "oauth-2025-04-20" in lowered["anthropic-beta"]  # Claude Code's own betas
        assert "x-ccrelay-token" not in lowered  # the gateway's token stays with the gateway
    # the gateway's log went to its file, not into claude's terminal
    said = [line for line in run.stderr.splitlines() if line.startswith("ccrelay: gateway log: ")]
    assert len(said) == 1, run.stderr
    assert "trying the next one" not in run.stderr
    log = Path(said[0].removeprefix("ccrelay: gateway log: ")).read_text(encoding="utf-8")
    assert "backend cerebras failed" in log and "trying the next one" in log


@pytest.mark.parametrize("release", [None, "2.1.332"], ids=["claude_binary", "2.1.332"])
@pytest.mark.parametrize(
    ("api_key", "login"), [(API_KEY, None), (None, LOGIN)], ids=["api-key", "oauth"]
)
async def test_readme_example_falls_back_to_anthropic_when_cerebras_is_down(
    claude_binary: Path,
    claude_release: Callable[[str], Path],
    tmp_path: Path,
    fake_anthropic: FakeAnthropic,
    api_key: str | None,
    login: str | None,
    release: str | None,
) -> None:
    claude = claude_binary if release is None else claude_release(release)
    nothing = f"http://127.0.0.1:{free_port()}/v1"  # Cerebras is down: nothing listens
    run = await run_readme_example(
        claude, tmp_path, fake_anthropic, nothing, api_key=api_key, login=login
    )
    assert_served_by_anthropic_with(run, fake_anthropic, api_key or LOGIN)


@pytest.mark.parametrize(
    ("api_key", "login"), [(API_KEY, None), (None, LOGIN)], ids=["api-key", "oauth"]
)
async def test_no_other_backend_ever_gets_the_user_s_credential(
    claude_binary: Path,
    tmp_path: Path,
    fake_anthropic: FakeAnthropic,
    fake_openai: FakeOpenAI,
    api_key: str | None,
    login: str | None,
) -> None:
    """Cerebras answers, with errors: it is sent its own key and nothing of the user's."""
    busy = {"message": "We're experiencing high traffic", "type": "too_many_requests_error"}
    fake_openai.push(*[Reply(status=503, body=busy) for _ in range(20)])
    run = await run_readme_example(
        claude_binary, tmp_path, fake_anthropic, fake_openai.base_url, api_key=api_key, login=login
    )
    assert_served_by_anthropic_with(run, fake_anthropic, api_key or LOGIN)
    assert fake_openai.requests, "Cerebras was never asked"
    seen = headers_of(fake_openai.requests)
    assert API_KEY not in seen and LOGIN not in seen
    assert all(
        {k.lower(): v for k, v in r.headers.items()}["authorization"] == f"Bearer {CEREBRAS_KEY}"
        for r in fake_openai.requests
    )
