"""`python -m ccrelay_worker`: the worker image's entry point, shaped like runpod-workers/worker-vllm.

1. start `ollama serve` as a child on loopback, models on the network volume;
2. poll GET /api/version until a deadline, failing fast if the child exits;
3. make sure the model is on the volume: ask /api/tags and /api/show first, pull only when it is
   missing, under the volume's pull lock (so many cold workers pull once);
4. warm it: POST /api/generate with an empty prompt and keep_alive, so the first job does not
   pay for loading the weights; then read the context it was loaded with (GET /api/ps), the
   window the handler reports to clients;
5. serve: the runpod SDK loop (``runpod.serverless.start``) with the handler, or with ``--http``
   the OpenAI-compatible HTTP server (``ccrelay_worker.http_server.run``). Both are imported lazily.

On RunPod a models directory that is not on a mounted network volume is refused (exit 2)
unless ``CCRELAY_ALLOW_NO_VOLUME`` says so: such a worker would pull ~19 GB onto its container
disk on every cold start.

Stop signals have one owner for the worker's whole life (:mod:`ccrelay_worker.stop_signals`):
during the boot they cancel it, so the pull lease is given back; the HTTP server drains; the
serverless loop stops at once. Ollama gets the same signal, and every way out by signal n exits
128 + n. Ollama and the embedded Redis die with the worker even when it is SIGKILLed
(:mod:`ccrelay_handler.tied_child`). A watcher thread exits the worker non-zero if Ollama dies
while serving, so the platform replaces it instead of keeping a worker that fails every job.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from ccrelay_worker.errors import OllamaAPIError, WorkerConfigError, WorkerError
from ccrelay_worker.model_store import EnsureResult, ensure_model
from ccrelay_worker.ollama_api import OllamaClient
from ccrelay_worker.ollama_process import EngineWatcher, OllamaProcess, default_exit
from ccrelay_worker.pull_lock import PullLock
from ccrelay_worker.settings import WorkerSettings, http_exposure, is_loopback
from ccrelay_worker.starting import Listeners, StartingFace
from ccrelay_worker.stop_signals import StopRequested, StopSignals

__all__ = ["BootReport", "boot", "build_parser", "handler_environment", "handler_serve", "main"]

log = logging.getLogger("ccrelay.worker")

Serve = Callable[[WorkerSettings, Mapping[str, str]], None]
ExitProcess = Callable[[int], None]


@dataclass(frozen=True)
class BootReport:
    ollama_version: str
    model: EnsureResult
    warmed: bool
    context_length: int | None = None  # per request, as Ollama loaded the model (None: unknown)


async def boot(
    settings: WorkerSettings, engine: OllamaProcess, signals: StopSignals | None = None
) -> BootReport:
    """Steps 1-4: the engine is running, answering, has the model and has it loaded.

    A stop signal cancels this coroutine at its next ``await``: the pull lock's ``async with``
    then gives the lease back, so a replacement worker on another host need not wait for it
    to go stale.
    """
    task = asyncio.current_task()
    assert task is not None

    def cancel(_signum: int, first: bool) -> None:
        if first:
            task.cancel("stop signal")

    loop = asyncio.get_running_loop()
    with signals.listen(loop, cancel) if signals is not None else contextlib.nullcontext():
        return await _boot(settings, engine)


async def _boot(settings: WorkerSettings, engine: OllamaProcess) -> BootReport:
    if not settings.models_on_volume:
        log.warning(
            "models dir %s is not on a mounted network volume: the model is pulled into this "
            "container's disk and again on every cold start; attach a network volume "
            "(mounted at %s) to pull it once",
            settings.models_dir,
            settings.volume_root,
        )
    log.info("%s", settings.sizing.describe())
    for warning in settings.sizing.warnings():
        log.warning("%s", warning)
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
        context: int | None = None
        try:
            result = await ensure_model(
                client, settings.model, lock, progress_interval=settings.pull_log_interval_s
            )
            if settings.warm:
                log.info(
                    "loading %s into memory (keep_alive=%s)", settings.model, settings.keep_alive
                )
                await client.warm(
                    settings.model,
                    keep_alive=settings.keep_alive,
                    load_within=settings.warm_timeout_s,
                )
                log.info("model %s is loaded", settings.model)
                context = await _loaded_context(client, settings)
        except OllamaAPIError:
            # a broken stream is what a dead engine looks like from here: say which it was
            await engine.raise_if_exited_soon(f"while the boot used model {settings.model!r}")
            raise
    return BootReport(
        ollama_version=version, model=result, warmed=settings.warm, context_length=context
    )


async def _loaded_context(client: OllamaClient, settings: WorkerSettings) -> int | None:
    """The window Ollama really gave the model (it clamps to the model's trained context)."""
    try:
        context = await client.loaded_context(settings.model)
    except OllamaAPIError as exc:
        log.warning("could not read the loaded context from Ollama (%s)", exc)
        return None
    configured = settings.sizing.context_length
    if context is None:
        log.warning("Ollama does not list %s as loaded; its window is not known", settings.model)
    elif configured is not None and context != configured:
        log.warning(
            "Ollama runs %s with %d tokens per request, not the %d configured; clients are told %d",
            settings.model,
            context,
            configured,
            context,
        )
    else:
        log.info(
            "engine window: %d tokens per request, %d slot(s)", context, settings.sizing.parallel
        )
    return context


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

    volume_refusal = settings.volume_refusal()
    if volume_refusal is not None:
        log.error("%s", volume_refusal)
        return 2

    signals = StopSignals()
    listeners: Listeners | None = None
    if serve is None and not args.prepare:
        if settings.mode == "http":
            # Bound before the boot, answering "starting" (/ping 204) while the model loads:
            # RunPod's load balancer counts a refused connection as an unhealthy worker.
            try:
                listeners = Listeners.bind(
                    settings.http_host, settings.http_port, settings.health_port
                )
            except OSError as exc:
                log.error(
                    "cannot listen on %s:%d: %s",
                    settings.http_host,
                    settings.http_port,
                    exc.strerror or "the system refused",
                )
                return 2
        try:  # before the boot: a typo in the handler's settings must not cost a 19 GB pull
            serve = handler_serve(handler_environment(settings, env), signals, listeners)
        except ValueError as exc:  # handler.errors.SettingsError
            log.error("bad handler settings: %s", exc)
            if listeners is not None:
                listeners.close()
            return 2
    starting = StartingFace(listeners).start() if listeners is not None else None

    engine = OllamaProcess(
        settings.engine_command,
        env=settings.engine_environment(env),
        host=settings.ollama_host,
        port=settings.ollama_port,
    )

    def stop_engine() -> None:
        engine.stop(settings.stop_grace_s, signum=signals.signum or signal.SIGTERM)

    def stop_now(signum: int, _first: bool) -> None:  # serverless serving: nothing else to drain
        stop_engine()
        exit_process(128 + signum)

    signals.install()
    atexit.register(stop_engine)
    try:
        try:
            report = asyncio.run(boot(settings, engine, signals))
            if starting is not None:
                starting.stop()  # the real server takes the sockets over
        except WorkerError as exc:
            log.error("worker boot failed: %s", exc)
            return 1
        except OSError as exc:  # a filesystem refusal nobody wrapped: still one line
            where = f" {exc.filename}" if exc.filename else ""
            log.error("worker boot failed: %s%s", exc.strerror or "the system refused", where)
            return 1
        except asyncio.CancelledError:
            if signals.exit_code is None:
                raise
            return signals.exit_code
        if signals.exit_code is not None:
            return signals.exit_code
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
        if settings.mode == "serverless":
            signals.immediate = stop_now
        serve(settings, handler_environment(settings, env, report.context_length))
        return signals.exit_code or 0
    except StopRequested as stop:
        return 128 + stop.signum
    finally:
        signals.immediate = None
        if starting is not None:
            starting.stop()
        if listeners is not None:
            listeners.close()
        stop_engine()
        signals.restore()
        atexit.unregister(stop_engine)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def handler_environment(
    settings: WorkerSettings, environ: Mapping[str, str], context_length: int | None = None
) -> dict[str, str]:
    """The environment the handler's settings are read from: ours, pointing at our Ollama, with
    its parallel slots (the jobs it takes at once) and the window each request gets:
    ``context_length`` as Ollama loaded the model when known, else as configured."""
    env = dict(environ)
    env["OLLAMA_HOST"] = settings.ollama_url
    env["CCRELAY_MODEL"] = settings.model
    sizing = settings.sizing.environment()
    for name in ("OLLAMA_NUM_PARALLEL", "OLLAMA_CONTEXT_LENGTH"):
        if not (env.get(name) or "").strip() and name in sizing:
            env[name] = sizing[name]
    if context_length is not None:
        env["OLLAMA_CONTEXT_LENGTH"] = str(context_length)
    return env


def handler_serve(
    handler_env: Mapping[str, str],
    signals: StopSignals | None = None,
    listeners: Listeners | None = None,
) -> Serve:
    """Step 5, with the handler's settings read now (raises ValueError when they are wrong).

    Imported here, not at module import: the boot itself needs neither the handler nor the
    runpod SDK.
    """
    from ccrelay_handler.settings import HandlerSettings

    HandlerSettings.from_env(handler_env)  # raises now, before the boot, when they are wrong

    def serve(settings: WorkerSettings, environ: Mapping[str, str]) -> None:
        # the boot's final environment: the window Ollama really gave the model
        handler_settings = HandlerSettings.from_env(environ)
        if settings.mode == "http":
            from ccrelay_worker import http_server

            http_server.run(
                settings.http_host,
                settings.http_port,
                handler_settings,
                signals=signals,
                drain_s=settings.http_drain_s,
                inbound=settings.http_inbound,
                listeners=listeners,
            )
            return
        from ccrelay_handler.runpod_handler import start

        log.info("starting the runpod serverless loop")
        start(handler_settings)

    return serve


def configure_logging(environ: Mapping[str, str]) -> None:
    level = (environ.get("CCRELAY_LOG_LEVEL") or "INFO").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
