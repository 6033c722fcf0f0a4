"""``python -m tests.fakes.ollama``: the fake as the worker's engine child, in place of
``ollama serve``, so the boot's real subprocess path is exercised.

Like ``ollama serve`` it listens on ``OLLAMA_HOST`` and keeps pulled models as manifest files
under ``OLLAMA_MODELS``, so a second boot on the same volume finds them. Knobs come from the
environment:

  OLLAMA_CONTEXT_LENGTH    the context every model gets (unset: the VRAM tier)
  FAKE_OLLAMA_VRAM_GIB     the GPU memory this fake "finds" at start (default 24)
  FAKE_OLLAMA_RELEASE      the release to behave as (releases.py; default the current one)
  FAKE_OLLAMA_PULL_LOG     file to which every pull request appends one line (counts pulls
                           across processes)
  FAKE_OLLAMA_FAIL_PULL    "error-line", "http-500" or "engine-dies" (`FakeOllama.fail_pull`)
  FAKE_OLLAMA_PULL_DELAY   seconds between two progress lines (default 0.01)
  FAKE_OLLAMA_SIGNAL_LOG   file to which the child writes the name of a SIGTERM/SIGINT it gets
  FAKE_OLLAMA_READY_DELAY  seconds to wait before listening
  FAKE_OLLAMA_PID_FILE     file the child writes its pid to (to prove it is gone afterwards)
  FAKE_OLLAMA_STOP_DELAY   seconds between the first stop signal and the exit; later signals
                           are logged too. `ollama serve` handles SIGINT/SIGTERM by closing
                           its HTTP server, then unloading every runner (``sched.unloadAllRunners``
                           in ollama's server/routes.go ``Serve``) before it exits: with a 30B
                           model in GPU memory that takes a while

POST /__fake__/crash makes the child exit with code 7 (a crashed engine). At start it logs its
settings to stderr as ``ollama serve`` does (``server config``, ``envconfig.Values``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from tests.fakes.ollama.models import default_context
from tests.fakes.ollama.releases import CURRENT, RELEASES
from tests.fakes.ollama.server import FakeOllama


def engine_from_environment() -> FakeOllama:
    """A `FakeOllama` set up from ``OLLAMA_*`` and ``FAKE_OLLAMA_*`` as `ollama serve` would be."""
    host, _, port = (os.environ.get("OLLAMA_HOST") or "127.0.0.1:11434").rpartition(":")
    fake = FakeOllama(
        models=(),
        models_dir=Path(os.environ["OLLAMA_MODELS"]),
        release=RELEASES[os.environ.get("FAKE_OLLAMA_RELEASE") or CURRENT.version],
        context_length=_uint("OLLAMA_CONTEXT_LENGTH"),
        vram_gib=float(os.environ.get("FAKE_OLLAMA_VRAM_GIB") or 24),
    )
    fake.host, fake.port = host.strip("[]") or "127.0.0.1", int(port)
    if os.environ.get("FAKE_OLLAMA_PULL_LOG"):
        fake.pull_log = Path(os.environ["FAKE_OLLAMA_PULL_LOG"])
    fake.fail_pull = os.environ.get("FAKE_OLLAMA_FAIL_PULL") or None
    fake.pull_delay = float(os.environ.get("FAKE_OLLAMA_PULL_DELAY") or 0.01)
    fake.app.router.add_post("/__fake__/crash", _crash)
    return fake


def _uint(name: str) -> int | None:
    """``envconfig.Uint``: an unparsable value is logged and ignored."""
    raw = os.environ.get(name, "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    if raw:
        print(
            f'level=WARN msg="invalid environment variable, using default" key={name} value={raw}',
            file=sys.stderr,
        )
    return None


def log_server_config(fake: FakeOllama) -> None:
    """The lines ``ollama serve`` logs at start (``server/routes.go`` ``Serve``)."""
    names = (
        "OLLAMA_CONTEXT_LENGTH",
        "OLLAMA_FLASH_ATTENTION",
        "OLLAMA_KV_CACHE_TYPE",
        "OLLAMA_NUM_PARALLEL",
    )
    values = " ".join(f"{name}:{os.environ.get(name, '')}" for name in names)
    print(f'level=INFO msg="server config" env="map[{values}]"', file=sys.stderr)
    profile = fake.profile
    default = default_context(
        profile.release, context_length=profile.context_length, vram_gib=profile.vram_gib
    )
    print(
        f'level=INFO msg="vram-based default context" total_vram="{profile.vram_gib:g} GiB" '
        f"default_num_ctx={default}",
        file=sys.stderr,
        flush=True,
    )


async def serve_as_engine() -> None:
    """Behave like `ollama serve`: OLLAMA_HOST, OLLAMA_MODELS, stop on SIGTERM / SIGINT."""
    fake = engine_from_environment()
    signal_log = os.environ.get("FAKE_OLLAMA_SIGNAL_LOG")
    if os.environ.get("FAKE_OLLAMA_PID_FILE"):
        pid_file = Path(os.environ["FAKE_OLLAMA_PID_FILE"])
        pid_file.write_text(str(os.getpid()))  # noqa: ASYNC240 - before serving
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if signal_log:
            with open(signal_log, "a") as handle:
                handle.write(f"{signal.Signals(signum).name}\n")
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    with contextlib.suppress(TimeoutError):  # "loading": not listening yet; a signal still stops it
        await asyncio.wait_for(stop.wait(), float(os.environ.get("FAKE_OLLAMA_READY_DELAY") or 0))
    if not stop.is_set():
        log_server_config(fake)
        await fake.start()
        await stop.wait()
    await asyncio.sleep(float(os.environ.get("FAKE_OLLAMA_STOP_DELAY") or 0))
    os._exit(0)  # like a real engine: in-flight pulls end with it


async def _crash(_request: web.Request) -> web.Response:
    """Die like a crashed engine (used to test the boot's watcher)."""
    asyncio.get_running_loop().call_later(0.05, os._exit, 7)
    return web.json_response({"crashing": True})


if __name__ == "__main__":
    asyncio.run(serve_as_engine())
