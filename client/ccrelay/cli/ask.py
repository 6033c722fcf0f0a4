"""`ccrelay ask PROMPT`: one question to the configured backend, streamed to stdout."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from typing import Any

from ccrelay.cli._common import EXIT_OK, environ, run_command

DEFAULT_MODEL = "claude-sonnet-4-5"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("ask", help="ask the active backend one question (stdin if no PROMPT)")
    parser.add_argument("prompt", nargs="*", help="the question; read from stdin when absent")
    parser.add_argument("--backend", help="a backend name from the config (default: active)")
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help="Claude model name, mapped by the backend's config"
    )
    parser.add_argument("--system", help="a system prompt")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=4096,
        metavar="N",
        help="the longest answer, in tokens (default: 4096; the backend may clamp it)",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        metavar="T",
        help="sampling temperature, 0 to 1 (default: the backend's)",
    )
    parser.add_argument("--json", action="store_true", help="print the whole response as JSON")
    parser.set_defaults(run=run)


def build_request(args: argparse.Namespace, prompt: str) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": args.model,
        "max_tokens": args.max_tokens,
        "messages": [{"role": "user", "content": prompt}],
    }
    if args.system:
        request["system"] = args.system
    if args.temperature is not None:
        request["temperature"] = args.temperature
    return request


def run(args: argparse.Namespace) -> int:
    prompt = " ".join(args.prompt) if args.prompt else sys.stdin.read()
    if not prompt.strip():
        print("ccrelay: nothing to ask: give a PROMPT or pipe one on stdin", file=sys.stderr)
        return 2
    return run_command(args, lambda: _ask(args, prompt.strip()))


async def _ask(args: argparse.Namespace, prompt: str) -> int:
    import orjson

    from ccrelay.backends.types import RequestOptions
    from ccrelay.errors import translation_errors
    from ccrelay.runtime import Runtime
    from ccrelay_translate import anthropic_events_to_response

    request = build_request(args, prompt)
    started = time.perf_counter()
    options = RequestOptions(request_id=f"req_{uuid.uuid4().hex[:24]}")
    out = sys.stdout
    async with Runtime.from_environ(environ()) as runtime:
        served = await runtime.router.open_stream(request, options, args.backend)
        stream = served.result
        events = []
        async for event in stream:
            if args.json:
                events.append(event)
                continue
            delta = event.get("delta") or {}
            if event.get("type") == "content_block_delta" and delta.get("type") == "text_delta":
                out.write(delta["text"])
                out.flush()
        if args.json:
            with translation_errors(stream.backend):
                response = anthropic_events_to_response(events)
            out.write(orjson.dumps(response, option=orjson.OPT_INDENT_2).decode() + "\n")
        else:
            out.write("\n")
        out.flush()
    elapsed = (time.perf_counter() - started) * 1000
    print(
        f"ccrelay: backend={served.backend} model={served.model} status=ok "
        f"latency_ms={elapsed:.0f} attempts={served.attempts}"
        + (f" failovers={served.failovers}" if served.failovers else "")
        + (f" cache={served.cache}" if served.cache else ""),
        file=sys.stderr,
    )
    return EXIT_OK
