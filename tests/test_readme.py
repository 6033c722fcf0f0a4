"""README's promises stay true: its config example validates, its two commands stay at the top."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ccrelay.backends.factory import load_client_config

README = Path(__file__).resolve().parents[1] / "README.md"


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_config_example_validates(tmp_path: Path) -> None:
    config_block = next(b for b in _yaml_blocks() if "backends:" in b)
    extras = [b for b in _yaml_blocks() if b.lstrip().startswith("telemetry:")]
    document = yaml.safe_load(config_block)
    for extra in extras:
        document.update(yaml.safe_load(extra))
    path = tmp_path / "backends.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    env = {
        "ENABLE_MULTI_BACKEND": "true",
        "LLM_BACKEND_CONFIG": str(path),
        "CEREBRAS_API_KEY": "csk-example",
        "RUNPOD_ENDPOINT_ID": "abc123",
        "RUNPOD_API_KEY": "rpa-example",
    }
    config = load_client_config(env)
    assert config.active == "cerebras"
    assert config.chain() == ["cerebras", "runpod", "anthropic"]
    assert set(config.backends) == {"cerebras", "runpod", "vast", "anthropic"}
    assert config.telemetry.s3 is not None and config.telemetry.s3.bucket == "my-ccrelay-logs"
    assert load_client_config({**env, "LLM_BACKEND": "vast"}).active == "vast"


def test_readme_starts_with_exactly_two_setup_commands() -> None:
    text = README.read_text(encoding="utf-8")
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first_block is not None
    commands = [line for line in first_block.group(1).splitlines() if line.strip()]
    assert len(commands) == 2
    assert commands[0].endswith("ccrelay serve")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci.splitlines(), ".ci/run must call README's test command verbatim"


def test_the_claude_code_quickstart_works_with_what_it_exports(tmp_path: Path) -> None:
    """Run README's "Use it from Claude Code" block as written, in a fresh HOME and a bare
    environment, with `npm install` skipped and `ccrelay code` replaced by `ccrelay config check`
    (no network and no claude here): the config it writes must load from what it exports."""
    import os
    import subprocess
    import sys

    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Use it from Claude Code") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    script = block.group(1)
    assert "npm install" in script and "ccrelay code" in script
    script = re.sub(r"^npm install.*$", ":", script, flags=re.M)
    script = re.sub(r"^ccrelay code\b.*$", "ccrelay config check", script, flags=re.M)
    bin_dir = str(Path(sys.executable).parent)
    env = {"HOME": str(tmp_path), "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "active backend: cerebras" in result.stdout
    assert "csk-" not in result.stdout  # the key is masked
