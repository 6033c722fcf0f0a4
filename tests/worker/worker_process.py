"""Running `python -m ccrelay_worker` as a subprocess, with the fake Ollama
(tests/fakes/ollama/, run as `python -m tests.fakes.ollama`) as its engine child, on a volume under ``tmp_path``."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
FAKE_ENGINE = f"{shlex.quote(sys.executable)} -m tests.fakes.ollama"
MODEL = "qwen3-coder:30b"


def worker_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment for one worker on the shared volume ``tmp_path / 'volume'``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CCRELAY_", "OLLAMA_", "RUNPOD_", "FAKE_OLLAMA_"))
    }
    volume = tmp_path / "volume"
    volume.mkdir(exist_ok=True)
    env.update(
        {
            "CCRELAY_VOLUME_ROOT": str(volume),
            "OLLAMA_MODELS": str(volume / "ollama"),
            "OLLAMA_HOST": f"127.0.0.1:{free_port()}",
            "CCRELAY_OLLAMA_COMMAND": FAKE_ENGINE,
            "CCRELAY_MODEL": MODEL,
            "CCRELAY_PULL_LOG_INTERVAL": "0",
            "CCRELAY_OLLAMA_READY_TIMEOUT": "20",
            "CCRELAY_OLLAMA_STOP_GRACE": "5",
            "FAKE_OLLAMA_PULL_LOG": str(tmp_path / "pulls.log"),
            "CCRELAY_STATE_DIR": str(tmp_path / "state"),
        }
    )
    env.update(extra)
    return env


def start_worker(env: Mapping[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ccrelay_worker", *args],
        cwd=REPO,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_worker(env: Mapping[str, str], *args: str, timeout: float = 30) -> tuple[int, str]:
    process = start_worker(env, *args)
    _, err = process.communicate(timeout=timeout)
    return process.returncode, err


def pulls(tmp_path: Path) -> list[str]:
    log = tmp_path / "pulls.log"
    return log.read_text().splitlines() if log.exists() else []
