"""`ccrelay statusline`: the one line Claude Code shows as its ``statusLine`` (see
`ccrelay.latency.statusline`). `ccrelay code --statusline` installs it for the session.

Claude Code sends the session's JSON on stdin; the line is built from ccrelay's own records of
the session (``CCRELAY_SESSION``, set by `ccrelay code`) and printed on stdout. It never fails
loudly: whatever goes wrong, it prints a short line and exits 0, since a status line that
errors is noise in the user's terminal.
"""

from __future__ import annotations

import argparse
import sys

from ccrelay.cli._common import environ


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
        print(status_line(records, config.prices, active=config.active))
    except Exception:  # a status line never errors in the user's face
        print("ccrelay")
    return 0
