"""WorkerSettings.from_env: defaults, the volume rule, overrides, and errors naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccrelay_worker.errors import WorkerConfigError
from ccrelay_worker.settings import WorkerSettings, normalize_model_name


def test_defaults_put_the_models_on_the_volume_when_it_exists(tmp_path: Path) -> None:
    volume = tmp_path / "runpod-volume"
    volume.mkdir()
    settings = WorkerSettings.from_env({"CCRELAY_VOLUME_ROOT": str(volume)})
    assert settings.model == "qwen3-coder:30b"
    assert settings.models_dir == volume / "ollama"
    assert settings.models_on_volume
    assert settings.ollama_url == "http://127.0.0.1:11434"
    assert settings.engine_command == ("ollama", "serve")
    assert settings.keep_alive == -1 and settings.warm and settings.mode == "serverless"


def test_without_a_volume_the_models_go_to_a_local_folder(tmp_path: Path) -> None:
    settings = WorkerSettings.from_env(
        {
            "CCRELAY_VOLUME_ROOT": str(tmp_path / "absent"),
            "CCRELAY_STATE_DIR": str(tmp_path / "state"),
        }
    )
    assert settings.models_dir == tmp_path / "state" / "ollama"
    assert not settings.models_on_volume


def test_environment_overrides(tmp_path: Path) -> None:
    settings = WorkerSettings.from_env(
        {
            "OLLAMA_MODELS": str(tmp_path / "models"),
            "OLLAMA_HOST": "127.0.0.1:12345",
            "CCRELAY_MODEL": "qwen3-coder:480b",
            "CCRELAY_OLLAMA_COMMAND": "/opt/ollama/bin/ollama serve --verbose",
            "CCRELAY_KEEP_ALIVE": "30m",
            "CCRELAY_WARM": "off",
            "CCRELAY_WORKER_MODE": "HTTP",
            "CCRELAY_HTTP_PORT": "9000",
        }
    )
    assert settings.models_dir == tmp_path / "models"
    assert (settings.ollama_host, settings.ollama_port) == ("127.0.0.1", 12345)
    assert settings.model == "qwen3-coder:480b"
    assert settings.engine_command == ("/opt/ollama/bin/ollama", "serve", "--verbose")
    assert settings.keep_alive == "30m" and not settings.warm
    assert settings.mode == "http" and settings.http_port == 9000


def test_the_engine_environment_points_ollama_at_the_volume(tmp_path: Path) -> None:
    settings = WorkerSettings.from_env(
        {"OLLAMA_MODELS": str(tmp_path), "OLLAMA_HOST": "127.0.0.1:1234"}
    )
    env = settings.engine_environment({"PATH": "/usr/bin", "OLLAMA_NUM_PARALLEL": "4"})
    assert env["OLLAMA_MODELS"] == str(tmp_path)
    assert env["OLLAMA_HOST"] == "127.0.0.1:1234"
    assert env["OLLAMA_NOPRUNE"] == "1", (
        "a starting worker must not prune another's half-pulled blobs"
    )
    assert env["OLLAMA_NUM_PARALLEL"] == "4" and env["PATH"] == "/usr/bin"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("OLLAMA_HOST", "0.0.0.0:11434", "not a loopback address"),
        ("CCRELAY_OLLAMA_READY_TIMEOUT", "soon", "is not a number"),
        ("CCRELAY_OLLAMA_READY_TIMEOUT", "0", "must be greater than zero"),
        ("CCRELAY_WARM", "maybe", "is not a boolean"),
        ("CCRELAY_WORKER_MODE", "pod", "unknown mode"),
        ("CCRELAY_OLLAMA_COMMAND", "ollama 'serve", "cannot be split"),
    ],
)
def test_bad_values_name_the_variable_and_the_fix(variable: str, value: str, expected: str) -> None:
    with pytest.raises(WorkerConfigError) as caught:
        WorkerSettings.from_env({variable: value})
    assert caught.value.variable == variable
    assert expected in str(caught.value) and "fix:" in str(caught.value)


def test_model_names_without_a_tag_mean_latest() -> None:
    assert normalize_model_name("qwen3-coder") == "qwen3-coder:latest"
    assert normalize_model_name("qwen3-coder:30b") == "qwen3-coder:30b"
    assert normalize_model_name("registry:5000/team/model") == "registry:5000/team/model:latest"


def test_the_default_volume_root_counts_only_when_something_is_mounted_there(
    tmp_path: Path,
) -> None:
    """A first boot without a volume creates /runpod-volume/ollama on the container disk; a
    restart of that container must not take the directory for a volume."""
    from ccrelay_worker.settings import _volume_mounted

    plain = tmp_path / "runpod-volume"
    plain.mkdir()
    assert not _volume_mounted(plain, explicit=False)
    assert _volume_mounted(plain, explicit=True), "a root the user names is taken at its word"
    assert _volume_mounted(Path("/"), explicit=False), "a mount point counts"
    assert not _volume_mounted(tmp_path / "absent", explicit=True)


def test_runpod_is_recognised_by_the_variables_it_sets(tmp_path: Path) -> None:
    base = {"CCRELAY_VOLUME_ROOT": str(tmp_path / "absent"), "OLLAMA_MODELS": str(tmp_path / "m")}
    off = WorkerSettings.from_env(base)
    assert not off.on_runpod and off.volume_refusal() is None
    on = WorkerSettings.from_env({**base, "RUNPOD_WEBHOOK_GET_JOB": "https://api.runpod.ai/x"})
    refusal = on.volume_refusal()
    assert on.on_runpod and refusal is not None
    assert str(tmp_path / "m") in refusal and "CCRELAY_ALLOW_NO_VOLUME" in refusal
    allowed = WorkerSettings.from_env(
        {**base, "RUNPOD_POD_ID": "abc", "CCRELAY_ALLOW_NO_VOLUME": "yes"}
    )
    assert allowed.volume_refusal() is None
    with pytest.raises(WorkerConfigError, match="CCRELAY_ALLOW_NO_VOLUME"):
        WorkerSettings.from_env({**base, "CCRELAY_ALLOW_NO_VOLUME": "maybe"})
