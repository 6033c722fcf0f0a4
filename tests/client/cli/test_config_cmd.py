"""`ccrelay config check`: the resolved config, secrets masked, errors as exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ccrelay.cli import main
from tests.client.cli.conftest import use_config

SECRET = "sk-test-SECRET-123456"

CONFIG = """\
active: cerebras
fallback: [local]
backends:
  cerebras:
    type: cerebras
    api_key: ${CEREBRAS_API_KEY}
    model: gpt-oss-120b
  local:
    type: openai
    base_url: http://127.0.0.1:4000/v1
    headers:
      Authorization: Bearer ${CEREBRAS_API_KEY}
      X-Team: infra
"""


def test_prints_the_resolved_config_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ccrelay.yaml"
    path.write_text(CONFIG)
    use_config(monkeypatch, path)
    monkeypatch.setenv("CEREBRAS_API_KEY", SECRET)
    assert main(["config", "check"]) == 0
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    assert f"# source: {path}" in out
    assert "# active backend: cerebras; request order: cerebras -> local" in out
    document = yaml.safe_load(out)
    cerebras = document["backends"]["cerebras"]
    assert cerebras["api_key"] == "********"
    assert cerebras["base_url"] == "https://api.cerebras.ai/v1"
    assert cerebras["model"] == "gpt-oss-120b"
    assert cerebras["retry"]["max_attempts"] == 3
    local = document["backends"]["local"]
    assert local["api_key"] is None
    # every header value is masked (any may be a credential), but a few known-harmless names
    assert local["headers"] == {"Authorization": "********", "X-Team": "********"}
    assert document["fallback"] == ["local"]


def test_disabled_prints_plain_anthropic_and_says_the_file_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLM_BACKEND_CONFIG", str(tmp_path / "whatever.yaml"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    assert main(["config", "check"]) == 0
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    assert "# active backend: anthropic" in out
    document = yaml.safe_load(out)
    assert document["multi_backend_enabled"] is False
    assert document["backends"]["anthropic"]["api_key"] == "********"
    assert "LLM_BACKEND_CONFIG is ignored" in err


def test_errors_exit_2_and_never_show_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ccrelay.yaml"
    path.write_text(f"backends:\n  cerebras:\n    api_key: {SECRET}\n    base_url: nope\n")
    use_config(monkeypatch, path)
    assert main(["--log-level", "DEBUG", "config", "check"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert SECRET not in err
    assert err.startswith("ccrelay: config error: ")
    assert "backends.cerebras.base_url" in err
    assert str(path) in err
