"""`ccrelay statusline`: the one line Claude Code shows as its ``statusLine`` (see
`ccrelay.latency.statusline`). `ccrelay code --statusline` installs it for the session.

Claude Code sends the session's JSON on stdin; the line is built from ccrelay's own records of
the session (``CCRELAY_SESSION``, set by `ccrelay code`) and printed on stdout. It never fails
loudly: whatever goes wrong, it prints a short line and exits 0, since a status line that
errors is noise in the user's terminal.

Under `ccrelay code` (``CCRELAY_GATEWAY_URL`` set) it also asks the gateway's ``/health``
whether the self-hosted worker is up, so a user knows before typing that the next prompt waits
for a cold start (``worker cold``) or that one is starting (``worker warming``). The question
has a short deadline: a line that makes Claude Code wait is worse than a line without it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping

from ccrelay.cli._common import environ

_HEALTH_TIMEOUT_S = 0.5


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "statusline",
        help="one line for Claude Code's statusLine: backend, model, cache, saving",
        description=(
            "Print one line for Claude Code's statusLine: the active backend, the model, the "
            "cache hit rate and what this session saved against Anthropic, from the latency "
            "records of the session named by CCRELAY_SESSION (set by `ccrelay code`). Reads "
            "Claude Code's session JSON on stdin and ignores it. `ccrelay code --statusline` "
            "installs it for one session; it always exits 0."
        ),
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not sys.stdin.isatty():
        sys.stdin.read()  # Claude Code's session JSON: ours are the records
    env = environ()
    session = env.get("CCRELAY_SESSION", "").strip()
    try:
        from ccrelay.backends.factory import load_client_config
        from ccrelay.latency.statusline import session_records, status_line

        config = load_client_config(env)
        telemetry = config.telemetry.resolved(env)
        if not session or telemetry.jsonl_dir is None:
            print(f"ccrelay · {config.active}")
            return 0
        records = session_records(telemetry.jsonl_dir, session)
        line = status_line(records, config.prices, active=config.active)
        worker = worker_note(env)
        print(f"{line} · {worker}" if worker else line)
    except Exception:  # a status line never errors in the user's face
        print("ccrelay")
    return 0


def worker_note(env: Mapping[str, str]) -> str | None:
    """``NAME worker cold`` (or ``warming``, ``warm``) for the first scale-to-zero backend of
    the gateway's chain; None when there is none, no gateway, or no answer in time."""
    url = env.get("CCRELAY_GATEWAY_URL", "").strip()
    if not url:
        return None
    from ccrelay.gateway.auth import TOKEN_HEADER

    headers = {}
    for line in env.get("ANTHROPIC_CUSTOM_HEADERS", "").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == TOKEN_HEADER:
            headers[TOKEN_HEADER] = value.strip()
    import urllib.request  # only here: 10 ms of every `ccrelay` start otherwise

    request = urllib.request.Request(url.rstrip("/") + "/health", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=_HEALTH_TIMEOUT_S) as reply:
            health = json.loads(reply.read())
    except (OSError, ValueError):  # 503 (HTTPError is an OSError), refused, timeout, not JSON
        return None
    backends = health.get("backends") or {}
    for name in health.get("chain") or []:
        state = (backends.get(name) or {}).get("worker")
        if state:
            return f"{name} worker {state}"
    return None
