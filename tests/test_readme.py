"""README's promises stay true: its config example validates, its two commands stay at the top."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ccrelay.factory import load_client_config

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
