"""Every way a worker stops gives back what it holds: the pull lease, the engine child.

Real subprocesses throughout: `python -m ccrelay_worker` with the fake Ollama as its child.
"""

from __future__ import annotations

import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from ccrelay_worker.pull_lock import LEASE_NAME
from tests.conftest import free_port, process_alive, wait_until
from tests.worker.worker_process import pulls, start_worker, worker_env


def _serve_http(tmp_path: Path, **extra: str) -> tuple[subprocess.Popen[str], int, int]:
    """A worker in HTTP mode, answering /health; (process, its port, the engine's pid)."""
    port = free_port()
    env = worker_env(
        tmp_path,
        FAKE_OLLAMA_SIGNAL_LOG=str(tmp_path / "signals.log"),
        FAKE_OLLAMA_PID_FILE=str(tmp_path / "engine.pid"),
        **extra,
    )
    process = start_worker(env, "--http", "--host", "127.0.0.1", "--port", str(port))

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as reply:
                return reply.status == 200
        except OSError:
            return process.poll() is not None

    assert wait_until(healthy, 30) and process.poll() is None, process.poll()
    return process, port, int((tmp_path / "engine.pid").read_text())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_pull_gives_the_lease_back(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """Before: os._exit from the handler left the lease, and a worker on another host waited
    for it to go stale (120 s)."""
    env = worker_env(
        tmp_path,
        FAKE_OLLAMA_PULL_DELAY="0.5",  # a pull of several seconds
        FAKE_OLLAMA_SIGNAL_LOG=str(tmp_path / "signals.log"),
    )
    lease = tmp_path / "volume" / "ollama" / LEASE_NAME
    process = start_worker(env, "--prepare")
    assert wait_until(lambda: pulls(tmp_path) and lease.exists()), "the pull never started"
    process.send_signal(signum)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 128 + signum, err
    assert (tmp_path / "signals.log").read_text().split() == [signum.name]
    assert f"received {signum.name}; stopping" in err
    assert "released the pull lock" in err
    assert not lease.exists(), "the lease must not outlive the worker"
    assert not list(lease.parent.glob(f"{LEASE_NAME}.*")), "no temp or tomb files either"
    # the next worker takes the lock at once and finishes the pull
    process = start_worker(worker_env(tmp_path), "--prepare")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "another worker" not in err, "nobody waited for a stale lease"


def test_sigterm_exits_143_in_http_mode_too(tmp_path: Path) -> None:
    process, _port, engine = _serve_http(tmp_path)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 143, err
    assert (tmp_path / "signals.log").read_text().split() == ["SIGTERM"]
    assert not process_alive(engine)


def test_a_second_sigterm_while_stopping_still_stops_the_engine(tmp_path: Path) -> None:
    """Before: aiohttp's run_app restored the default handler, so the second SIGTERM killed the
    worker while it waited for Ollama, and Ollama was left running."""
    process, _port, engine = _serve_http(tmp_path, FAKE_OLLAMA_STOP_DELAY="2")
    process.send_signal(signal.SIGTERM)
    assert wait_until(lambda: (tmp_path / "signals.log").exists(), 10), "engine not signalled"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 143, err
    assert "received SIGTERM again while stopping" in err
    assert not process_alive(engine), "the engine outlived the worker"


def test_a_killed_worker_takes_its_engine_with_it(tmp_path: Path) -> None:
    """SIGKILL runs no cleanup at all: the kernel's parent-death signal stops the child."""
    process, _port, engine = _serve_http(tmp_path)
    process.kill()
    process.communicate(timeout=10)  # the engine shares its pipes: this also waits for it
    assert wait_until(lambda: not process_alive(engine), 10), "ollama serve orphaned"
    assert set((tmp_path / "signals.log").read_text().split()) == {"SIGTERM"}, "stopped cleanly"
