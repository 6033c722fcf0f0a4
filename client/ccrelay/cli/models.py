"""`ccrelay models [--backend NAME]`: what a backend offers (GET /models), so config names a real id."""

from __future__ import annotations

import argparse
import sys

from ccrelay.cli._common import EXIT_OK, environ, run_command


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("models", help="list the models a backend offers")
    parser.add_argument("--backend", help="a backend name from the config (default: active)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of one id a line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_command(args, lambda: _models(args))


async def _models(args: argparse.Namespace) -> int:
    import orjson

    from ccrelay.runtime import Runtime

    async with Runtime.from_environ(environ()) as runtime:
        name = args.backend or runtime.config.active
        backend = runtime.factory.get(name)
        models = await backend.list_models()
        configured = backend.settings.model
    if args.json:
        payload = [{"id": m.id, "owned_by": m.owned_by} for m in models]
        sys.stdout.write(orjson.dumps(payload).decode() + "\n")
        return EXIT_OK
    for info in models:
        marker = "  (configured default)" if info.id == configured else ""
        print(f"{info.id}{marker}")
    if configured and all(m.id != configured for m in models):
        print(
            f"ccrelay: the configured model {configured!r} is not offered by {name}; "
            "set `model` for it in the config",
            file=sys.stderr,
        )
    return EXIT_OK
