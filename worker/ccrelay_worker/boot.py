"""`python -m ccrelay_worker`: the worker image's entry point, shaped like runpod-workers/worker-vllm.

1. start `ollama serve` as a child on loopback, models on the network volume;
2. poll GET /api/version until a deadline, failing fast if the child exits;
3. make sure the model is on the volume: ask /api/tags and /api/show first, pull only when it is
   missing, under the volume's pull lock (so many cold workers pull once);
4. warm it: POST /api/generate with an empty prompt and keep_alive, so the first job does not
   pay for loading the weights;
5. serve: the runpod SDK loop (``runpod.serverless.start``) with the handler, or with ``--http``
   the OpenAI-compatible HTTP server (``ccrelay_worker.http_server.run``). Both are imported lazily.

SIGTERM / SIGINT during the boot are forwarded to the child, which is stopped before the worker
exits (128 + signal number). While serving, the runpod SDK (or the HTTP server) installs its own
handlers to drain in-flight jobs; the child is stopped after the serving loop returns, and at
interpreter exit. A watcher thread exits the worker non-zero if Ollama dies while serving, so the
platform replaces it instead of keeping a worker that fails every job.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

import aiohttp

from ccrelay_worker.errors import WorkerConfigError, WorkerError
from ccrelay_worker.model_store import EnsureResult, ensure_model
from ccrelay_worker.ollama_api import OllamaClient
from ccrelay_worker.ollama_process import EngineWatcher, OllamaProcess, default_exit
from ccrelay_worker.pull_lock import PullLock
from ccrelay_worker.settings import WorkerSettings, http_exposure, is_loopback

__all__ = ["BootReport", "boot", "build_parser", "handler_environment", "handler_serve", "main"]

log = logging.getLogger("ccrelay.worker")

Serve = Callable[[WorkerSettings, Mapping[str, str]], None]
ExitProcess = Callable[[int], None]


@dataclass(frozen=True)
class BootReport:
    ollama_version: str
    model: EnsureResult
    warmed: bool


async def boot(settings: WorkerSettings, engine: OllamaProcess) -> BootReport:
    """Steps 1-4: the engine is running, answering, has the model and has it loaded."""
    if not settings.models_on_volume:
        log.warning(
            "models dir %s is not on a mounted network volume: the model is pulled into this "
            "container's disk and again on every cold start; attach a network volume "
            "(mounted at /runpod-volume) to pull it once",
            settings.models_dir,
        )
    try:
        settings.models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkerConfigError(
            "OLLAMA_MODELS",
            f"cannot create the models directory {settings.models_dir} ({exc.strerror})",
            "point it at a writable directory, or check that the network volume is mounted",
        ) from None
    engine.start()
    async with aiohttp.ClientSession() as session:
        client = OllamaClient(session, settings.ollama_url)
        version = await engine.wait_ready(client, within=settings.ready_timeout_s)
        lock = PullLock(
            settings.models_dir,
            timeout=settings.pull_lock_timeout_s,
            stale_after=settings.pull_lock_stale_s,
        )
        result = await ensure_model(
            client, settings.model, lock, progress_interval=settings.pull_log_interval_s
        )
        if settings.warm:
            log.info("loading %s into memory (keep_alive=%s)", settings.model, settings.keep_alive)
            await client.warm(
                settings.model, keep_alive=settings.keep_alive, load_within=settings.warm_timeout_s
            )
            log.info("model %s is loaded", settings.model)
    return BootReport(ollama_version=version, model=result, warmed=settings.warm)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ccrelay_worker",
        description="Boot the ccrelay worker: Ollama + the model from the network volume, then serve.",
    )
    parser.add_argument(
        "--http",
        action="store_true",
        help="serve the OpenAI-compatible HTTP API instead of the RunPod queue (also CCRELAY_WORKER_MODE=http)",
    )
    parser.add_argument(
        "--host", help="HTTP mode: address to bind (default CCRELAY_HTTP_HOST or 0.0.0.0)"
    )
    parser.add_argument(
        "--port", type=int, help="HTTP mode: port (default CCRELAY_HTTP_PORT or 8000)"
    )
    parser.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="HTTP mode: serve off loopback without CCRELAY_WORKER_API_KEY (a private network "
        "only; also CCRELAY_HTTP_ALLOW_UNAUTHENTICATED=true); logs a warning",
    )
    parser.add_argument(
        "--prepare",
        action="store_true",
        help="boot (pull the model onto the volume once, load it), then stop and exit 0: "
        "seeds a network volume or smoke-tests an image",
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    serve: Serve | None = None,
    exit_process: ExitProcess = default_exit,
) -> int:
    """Run the worker; returns the exit code (0 served and stopped, 1 failed, 2 bad settings)."""
    args, _unknown = build_parser().parse_known_args(argv)  # the runpod SDK has its own flags
    env = dict(os.environ if environ is None else environ)
    try:
        settings = WorkerSettings.from_env(env)
    except WorkerConfigError as exc:
        log.error("bad worker settings: %s", exc)
        return 2
    overrides: dict[str, Any] = {}
    if args.http:
        overrides["mode"] = "http"
    if args.host:
        overrides["http_host"] = args.host
    if args.port:
        overrides["http_port"] = args.port
    if overrides:
        settings = settings.model_copy(update=overrides)
    if settings.mode == "http" and not args.prepare:
        has_key = bool(env.get("CCRELAY_WORKER_API_KEY", "").strip())
        allow_open = args.allow_unauthenticated or _truthy(
            env.get("CCRELAY_HTTP_ALLOW_UNAUTHENTICATED")
        )
        refusal = http_exposure(settings.http_host, has_key=has_key, allow_open=allow_open)
        if refusal is not None:
            log.error("%s", refusal)
            return 2
        if not has_key and not is_loopback(settings.http_host):
            log.warning(
                "HTTP mode on %s WITHOUT authentication (--allow-unauthenticated): anyone who "
                "can reach this port can use the GPU; keep it on a private network",
                settings.http_host,
            )

    if serve is None and not args.prepare:
        try:  # before the boot: a typo in the handler's settings must not cost a 19 GB pull
            serve = handler_serve(handler_environment(settings, env))
        except ValueError as exc:  # handler.errors.SettingsError
            log.error("bad handler settings: %s", exc)
            return 2

    engine = OllamaProcess(
        settings.engine_command,
        env=settings.engine_environment(env),
        host=settings.ollama_host,
        port=settings.ollama_port,
    )
    stop_engine = _stopper(engine, settings.stop_grace_s)
    previous = _forward_signals(engine, settings.stop_grace_s, exit_process)
    atexit.register(stop_engine)
    try:
        try:
            report = asyncio.run(boot(settings, engine))
        except WorkerError as exc:
            log.error("worker boot failed: %s", exc)
            return 1
        log.info(
            "worker ready: Ollama %s, model %s (%s)",
            report.ollama_version or "?",
            report.model.model,
            "pulled now" if report.model.pulled else "found on the volume",
        )
        if args.prepare or serve is None:
            log.info("--prepare: the volume holds %s; stopping", settings.model)
            return 0
        watcher = EngineWatcher(engine, on_crash=lambda _code: exit_process(1))
        watcher.start()
        serve(settings, handler_environment(settings, env))
        return 0
    finally:
        stop_engine()
        _restore_signals(previous)
        atexit.unregister(stop_engine)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def handler_environment(settings: WorkerSettings, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment the handler's settings are read from: ours, pointing at our Ollama."""
    env = dict(environ)
    env["OLLAMA_HOST"] = settings.ollama_url
    env["CCRELAY_MODEL"] = settings.model
    return env


def handler_serve(handler_env: Mapping[str, str]) -> Serve:
    """Step 5, with the handler's settings read now (raises ValueError when they are wrong).

    Imported here, not at module import: the boot itself needs neither the handler nor the
    runpod SDK.
    """
    from ccrelay_handler.settings import HandlerSettings

    handler_settings = HandlerSettings.from_env(handler_env)

    def serve(settings: WorkerSettings, _environ: Mapping[str, str]) -> None:
        if settings.mode == "http":
            from ccrelay_worker import http_server

            http_server.run(settings.http_host, settings.http_port, handler_settings)
            return
        from ccrelay_handler.runpod_handler import start

        log.info("starting the runpod serverless loop")
        start(handler_settings)

    return serve


def _stopper(engine: OllamaProcess, grace: float) -> Callable[[], None]:
    def stop() -> None:
        engine.stop(grace)

    return stop


_FORWARDED = (signal.SIGTERM, signal.SIGINT)


def _forward_signals(
    engine: OllamaProcess, grace: float, exit_process: ExitProcess
) -> dict[int, Any]:
    """SIGTERM / SIGINT: pass the same signal to the child, wait for it, exit 128 + signum."""

    def forward(signum: int, _frame: FrameType | None) -> None:
        log.warning("received %s; forwarding it to the engine", signal.Signals(signum).name)
        engine.stop(grace, signum=signum)
        exit_process(128 + signum)

    previous: dict[int, Any] = {}
    for signum in _FORWARDED:
        try:
            previous[signum] = signal.signal(signum, forward)
        except ValueError:  # not the main thread: leave signals alone
            break
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def configure_logging(environ: Mapping[str, str]) -> None:
    level = (environ.get("CCRELAY_LOG_LEVEL") or "INFO").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
