"""The worker's boot through its real subprocess path: `python -m ccrelay_worker` starts a fake Ollama
(tests/fakes/ollama/, speaking the native API on loopback) as its engine child."""

from __future__ import annotations

import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import pytest

from ccrelay_worker.boot import main
from ccrelay_worker.settings import WorkerSettings
from tests.conftest import free_port
from tests.worker.worker_process import MODEL, REPO, pulls, run_worker, start_worker, worker_env


def test_first_boot_pulls_and_a_restart_pulls_nothing(tmp_path: Path) -> None:
    code, err = run_worker(worker_env(tmp_path), "--prepare")
    assert code == 0, err
    assert len(pulls(tmp_path)) == 1
    assert "pulling qwen3-coder:30b: 100.0%" in err
    assert "MB/s" in err and "ETA" in err
    assert "model qwen3-coder:30b is loaded" in err

    code, err = run_worker(worker_env(tmp_path), "--prepare")
    assert code == 0, err
    assert len(pulls(tmp_path)) == 1, "a restart must not download again"
    assert "is already in" in err
    assert "found on the volume" in err
    # the manifest landed on the volume, next to the pull lock; no lease is left behind
    volume = tmp_path / "volume" / "ollama"
    assert (
        volume / "manifests" / "registry.ollama.ai" / "library" / "qwen3-coder" / "30b"
    ).is_file()
    assert not (volume / ".ccrelay-pull.lease").exists()


def test_two_workers_starting_together_pull_once(tmp_path: Path) -> None:
    env_a = worker_env(tmp_path, FAKE_OLLAMA_PULL_DELAY="0.05")
    env_b = worker_env(tmp_path, FAKE_OLLAMA_PULL_DELAY="0.05")
    first, second = start_worker(env_a, "--prepare"), start_worker(env_b, "--prepare")
    _, err_a = first.communicate(timeout=40)
    _, err_b = second.communicate(timeout=40)
    assert first.returncode == 0, err_a
    assert second.returncode == 0, err_b
    assert len(pulls(tmp_path)) == 1, pulls(tmp_path)
    both = err_a + err_b
    assert "appeared in" in both or "is already in" in both


def test_a_failed_pull_exits_non_zero_with_a_clear_message(tmp_path: Path) -> None:
    code, err = run_worker(worker_env(tmp_path, FAKE_OLLAMA_FAIL_PULL="error-line"), "--prepare")
    assert code == 1
    assert "worker boot failed: pulling model 'qwen3-coder:30b' failed: max retries exceeded" in err
    assert "CCRELAY_MODEL" in err  # says what to check
    assert not (tmp_path / "volume" / "ollama" / ".ccrelay-pull.lease").exists(), "lock released"


def test_an_engine_that_exits_early_fails_fast(tmp_path: Path) -> None:
    command = f"{shlex.quote(sys.executable)} -c 'import sys; sys.exit(3)'"
    started = time.monotonic()
    code, err = run_worker(worker_env(tmp_path, CCRELAY_OLLAMA_COMMAND=command), "--prepare")
    assert code == 1
    assert "exited with exit code 3 before answering GET /api/version" in err
    assert time.monotonic() - started < 10, "must not wait for the readiness deadline"


def test_an_engine_that_never_answers_fails_after_the_deadline(tmp_path: Path) -> None:
    env = worker_env(
        tmp_path,
        CCRELAY_OLLAMA_READY_TIMEOUT="1",
        FAKE_OLLAMA_READY_DELAY="60",
        FAKE_OLLAMA_SIGNAL_LOG=str(tmp_path / "signals.log"),
    )
    started = time.monotonic()
    code, err = run_worker(env, "--prepare")
    elapsed = time.monotonic() - started
    assert code == 1
    assert "did not answer GET http://127.0.0.1:" in err and "within 1 s" in err
    assert "CCRELAY_OLLAMA_READY_TIMEOUT" in err
    assert elapsed < 10
    assert (tmp_path / "signals.log").read_text().split() == ["SIGTERM"], "child stopped"


def test_a_missing_engine_binary_is_named(tmp_path: Path) -> None:
    code, err = run_worker(
        worker_env(tmp_path, CCRELAY_OLLAMA_COMMAND="no-such-ollama-binary serve"), "--prepare"
    )
    assert code == 1
    assert "'no-such-ollama-binary' was not found" in err


def test_bad_settings_exit_2(tmp_path: Path) -> None:
    code, err = run_worker(worker_env(tmp_path, OLLAMA_HOST="0.0.0.0:11434"), "--prepare")
    assert code == 2
    assert "OLLAMA_HOST" in err and "loopback" in err


def test_serving_hands_over_and_a_dead_engine_exits_the_worker(tmp_path: Path) -> None:
    """In-process: serve is injected; the engine crashes while serving; the watcher exits 1."""
    env = worker_env(tmp_path)
    exited = threading.Event()
    codes: list[int] = []
    seen: dict[str, object] = {}

    def record_exit(code: int) -> None:
        codes.append(code)
        exited.set()

    def serve(settings: WorkerSettings, handler_env: Mapping[str, str]) -> None:
        seen["settings"] = settings
        seen["env"] = dict(handler_env)
        crash = urllib.request.Request(f"{settings.ollama_url}/__fake__/crash", method="POST")
        urllib.request.urlopen(crash, timeout=5).close()
        assert exited.wait(10), "the watcher did not notice the dead engine"

    assert main([], env, serve=serve, exit_process=record_exit) == 0
    assert codes == [1]
    settings = seen["settings"]
    assert isinstance(settings, WorkerSettings) and settings.mode == "serverless"
    handler_env = seen["env"]
    assert isinstance(handler_env, dict)
    assert handler_env["OLLAMA_HOST"] == f"http://{env['OLLAMA_HOST']}"
    assert handler_env["CCRELAY_MODEL"] == MODEL


def test_http_flags_reach_the_serve_step(tmp_path: Path) -> None:
    env = worker_env(tmp_path)
    seen: list[WorkerSettings] = []
    before = signal.getsignal(signal.SIGTERM)

    def serve(settings: WorkerSettings, _env: Mapping[str, str]) -> None:
        seen.append(settings)

    assert main(["--http", "--host", "127.0.0.1", "--port", "9123"], env, serve=serve) == 0
    assert seen[0].mode == "http"
    assert (seen[0].http_host, seen[0].http_port) == ("127.0.0.1", 9123)
    assert signal.getsignal(signal.SIGTERM) == before, "signal handlers restored"


def test_bad_handler_settings_fail_before_the_boot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = worker_env(tmp_path, OLLAMA_NUM_PARALLEL="0")
    assert main([], env) == 2
    assert "bad handler settings" in caplog.text and "OLLAMA_NUM_PARALLEL" in caplog.text
    assert pulls(tmp_path) == [], "nothing pulled for a worker that cannot serve"


def test_http_mode_serves_health_and_stops_the_engine_on_sigterm(tmp_path: Path) -> None:
    """The whole path: boot, then worker.http_server.run; SIGTERM drains it, then stops Ollama."""
    port = free_port()
    env = worker_env(tmp_path, FAKE_OLLAMA_SIGNAL_LOG=str(tmp_path / "signals.log"))
    process = start_worker(env, "--http", "--host", "127.0.0.1", "--port", str(port))
    try:
        deadline = time.monotonic() + 30
        body = b""
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as reply:
                    body = reply.read()
                    break
            except OSError:
                time.sleep(0.1)
        assert b'"status": "ok"' in body or b'"status":"ok"' in body, process.poll()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, err  # one exit code for SIGTERM in both modes
    assert (tmp_path / "signals.log").read_text().split() == ["SIGTERM"]


def test_an_unusable_models_directory_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    env = worker_env(tmp_path, OLLAMA_MODELS=str(blocker / "ollama"))
    assert main(["--prepare"], env) == 1
    assert f"cannot create the models directory {blocker / 'ollama'}" in caplog.text
    assert "network volume is mounted" in caplog.text


# -- HTTP mode is closed by default (issue 10) ------------------------------------------------


def test_http_mode_off_loopback_without_a_key_refuses_to_start(tmp_path: Path) -> None:
    env = worker_env(tmp_path)
    code, err = run_worker(env, "--http", "--host", "0.0.0.0", "--port", str(free_port()))
    assert code == 2, err
    assert "refusing to serve HTTP mode on 0.0.0.0 without an API key" in err
    assert "CCRELAY_WORKER_API_KEY" in err
    assert pulls(tmp_path) == [], "refused before the boot"


def test_http_mode_defaults_to_every_interface_so_it_needs_a_key(tmp_path: Path) -> None:
    env = worker_env(tmp_path, CCRELAY_WORKER_MODE="http")
    assert main([], env, serve=lambda *_: None) == 2


@pytest.mark.parametrize(
    ("extra_env", "argv"),
    [
        ({"CCRELAY_WORKER_API_KEY": "k" * 32}, []),
        ({}, ["--allow-unauthenticated"]),
        ({"CCRELAY_HTTP_ALLOW_UNAUTHENTICATED": "true"}, []),
    ],
)
def test_a_key_or_the_explicit_opt_out_lets_it_start(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    extra_env: dict[str, str],
    argv: list[str],
) -> None:
    env = worker_env(tmp_path, **extra_env)
    seen: list[WorkerSettings] = []
    code = main(["--http", "--host", "0.0.0.0", *argv], env, serve=lambda s, _e: seen.append(s))
    assert code == 0 and seen[0].http_host == "0.0.0.0"
    opted_out = "CCRELAY_WORKER_API_KEY" not in extra_env
    assert ("WITHOUT authentication" in caplog.text) is opted_out
    assert "k" * 32 not in caplog.text


# -- boots that fail loudly (issue 16) --------------------------------------------------------


def _without_volume(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The image's defaults with nothing mounted at the volume root."""
    return worker_env(
        tmp_path,
        CCRELAY_VOLUME_ROOT=str(tmp_path / "runpod-volume"),  # never created
        OLLAMA_MODELS=str(tmp_path / "runpod-volume" / "ollama"),
        **extra,
    )


@pytest.mark.parametrize("marker", ["RUNPOD_POD_ID", "RUNPOD_ENDPOINT_ID"])
def test_on_runpod_a_missing_volume_is_fatal(tmp_path: Path, marker: str) -> None:
    code, err = run_worker(_without_volume(tmp_path, **{marker: "abc123"}))
    assert code == 2, err
    assert "no network volume is mounted at" in err
    assert "CCRELAY_ALLOW_NO_VOLUME=true" in err and "network_volume" in err
    assert pulls(tmp_path) == [], "refused before a 19 GB pull"
    assert "Traceback" not in err


def test_a_volume_less_worker_boots_when_the_setting_allows_it(tmp_path: Path) -> None:
    env = _without_volume(tmp_path, RUNPOD_POD_ID="abc123", CCRELAY_ALLOW_NO_VOLUME="true")
    code, err = run_worker(env, "--prepare")
    assert code == 0, err
    assert "is not on a mounted network volume" in err
    assert len(pulls(tmp_path)) == 1


def test_off_runpod_a_missing_volume_is_a_warning(tmp_path: Path) -> None:
    code, err = run_worker(_without_volume(tmp_path), "--prepare")
    assert code == 0, err
    assert "is not on a mounted network volume" in err


def _mount_namespace() -> str | None:
    """Why a private mount namespace cannot be made here, or None (unshare -rm works)."""
    if not shutil.which("unshare"):
        return "no unshare(1) on this machine"
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o ro tmpfs /mnt"],
        capture_output=True,
        text=True,
    )
    return None if probe.returncode == 0 else f"unshare -rm refused: {probe.stderr.strip()}"


_NO_NAMESPACE = _mount_namespace()


@pytest.mark.skipif(_NO_NAMESPACE is not None, reason=f"needs a mount namespace: {_NO_NAMESPACE}")
@pytest.mark.parametrize(
    ("volume", "reason"),
    [
        # a read-only volume: the kernel answers EROFS, even to root
        ("mount -t tmpfs -o ro tmpfs {dir}", "Read-only file system"),
        # a full one: 64 KiB, all taken
        (
            "mount -t tmpfs -o size=64k tmpfs {dir} && "
            "dd if=/dev/zero of={dir}/filler bs=4096 count=64 2>/dev/null; true",
            "No space left on device",
        ),
    ],
    ids=["read-only", "full"],
)
def test_a_volume_that_refuses_writes_is_one_line_and_exit_1(
    tmp_path: Path, volume: str, reason: str
) -> None:
    """Before: a raw OSError traceback about .ccrelay-pull.lock."""
    store = tmp_path / "volume"  # worker_env's volume root: the mount point
    env = worker_env(tmp_path, OLLAMA_MODELS=str(store))
    mount = volume.format(dir=shlex.quote(str(store)))
    command = [sys.executable, "-m", "ccrelay_worker", "--prepare"]
    script = f"{mount} && exec {shlex.join(command)}"
    result = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    err = result.stderr
    assert result.returncode == 1, err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if "worker boot failed" in line]
    assert f"the model is missing and {store} cannot be written ({reason})" in line
    assert "attach a writable network volume" in line


def test_an_engine_that_dies_during_the_pull_is_named(tmp_path: Path) -> None:
    """Before: 'pulling model ... failed ... check the model name and the internet access'."""
    code, err = run_worker(worker_env(tmp_path, FAKE_OLLAMA_FAIL_PULL="engine-dies"), "--prepare")
    assert code == 1, err
    assert "exited with signal SIGKILL while the boot used model 'qwen3-coder:30b'" in err
    assert "Check the model name" not in err
    assert not (tmp_path / "volume" / "ollama" / ".ccrelay-pull.lease").exists(), "lock released"
