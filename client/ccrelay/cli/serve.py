"""`ccrelay serve`: the Anthropic-compatible gateway Claude Code points ANTHROPIC_BASE_URL at.

Binds 127.0.0.1:8082 by default (or the config's `gateway` section). Any other host needs
CCRELAY_AUTH_TOKEN, read here once; clients then send it as x-api-key or a bearer token.
Stops cleanly on SIGINT / SIGTERM: stops listening, gives in-flight requests `gateway.drain_s`
(default 5 s) to finish, ends the rest with an error (an SSE `error` event for a stream), exits
(130 after SIGINT, as a shell reports Ctrl-C; 0 after SIGTERM).
Raises its open-file soft limit to the hard limit at start: each connection holds a file, and
the usual 1,024 is what a flood of connections used up (docs/deploy.md, "Inbound limits").
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import signal
import sys

from ccrelay.cli._common import EXIT_OK, EXIT_USAGE, environ, run_command

log = logging.getLogger("ccrelay.gateway")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the local Anthropic-compatible gateway (point ANTHROPIC_BASE_URL at it)",
        description=(
            "Serve Anthropic's Messages API on HOST:PORT, answered by the configured backend "
            "chain. Off loopback, CCRELAY_AUTH_TOKEN must be set."
        ),
    )
    parser.add_argument("--host", help="address to bind (default: config gateway.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: config gateway.port, 8082)")
    parser.add_argument(
        "--warm",
        action="store_true",
        help="start a warm-up job on every scale-to-zero backend (RunPod) at once",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.port is not None and not 0 <= args.port <= 65535:
        print(
            f"ccrelay: --port {args.port} is not a TCP port; use 1-65535 (0 picks a free one)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    env = environ()
    token = env.get("CCRELAY_AUTH_TOKEN", "").strip() or None
    return run_command(args, lambda: serve(args, env, token), default_level="INFO")


async def serve(args: argparse.Namespace, env: dict[str, str], token: str | None) -> int:
    import asyncio

    from ccrelay.gateway import AuthRequired, check_bind, start_gateway
    from ccrelay.http.words import describe_os_error
    from ccrelay.runtime import Runtime
    from ccrelay_wire.inbound import raise_open_file_limit

    async with Runtime.from_environ(env) as runtime:
        host = args.host or runtime.config.gateway.host
        port = runtime.config.gateway.port if args.port is None else args.port
        try:
            check_bind(host, token)
        except AuthRequired as exc:
            print(f"ccrelay: {exc}", file=sys.stderr)
            return EXIT_USAGE
        raised = raise_open_file_limit()
        if raised is not None:
            log.info("open-file limit raised from %d to %d", *raised)
        try:
            server = await start_gateway(runtime, host=host, port=port, auth_token=token)
        except OSError as exc:
            print(
                f"ccrelay: cannot listen on {host}:{port}: {describe_os_error(exc)}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        warm_ups = []
        if args.warm:
            from ccrelay.coldstart.warmup import start_warm_ups

            warm_ups = start_warm_ups(runtime)
        gc.freeze()  # start-up objects live forever: keep them out of every later collection
        # a request allocates a few thousand short-lived objects: at the default (700) the
        # young generation was collected about every 3.5 requests, 35-50 us a request
        gc.set_threshold(7000, 10, 10)
        stop = asyncio.Event()
        stopped_by: list[int] = []
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            stopped_by.append(signum)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_signal, sig)
        chain = " -> ".join(runtime.router.chain())
        log.info(
            "gateway listening on %s (backends: %s; auth: %s); use ANTHROPIC_BASE_URL=%s",
            server.url,
            chain,
            "token" if token else "none (loopback)",
            server.url,
        )
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            for task in warm_ups:
                task.cancel()
            drain_s = runtime.config.gateway.drain_s
            log.info("gateway stopping: in-flight requests get %g s to finish", drain_s)
            ended = await server.drain(drain_s)
            if ended:
                log.warning("ended %d request(s) still running after %g s", ended, drain_s)
    # a shell's convention, which README promises: 130 after Ctrl-C (SIGINT), 0 after SIGTERM
    return 128 + signal.SIGINT if stopped_by[:1] == [signal.SIGINT] else EXIT_OK
