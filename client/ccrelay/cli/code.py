"""`ccrelay code [claude args...]`: Claude Code on the configured backend, in one command.

Starts the gateway in this process on a free loopback port with a random throwaway token, runs
`claude` (from PATH, or `--claude-bin PATH`) with ANTHROPIC_BASE_URL pointing at it, passes the
terminal through untouched, and exits with claude's exit code (2 when claude cannot be found or
started, as for every usage problem). The gateway stops when claude exits, however it exits.

Every argument after `code` goes to claude as is (`ccrelay code -p "hi" --model x`), except
ccrelay's own leading options (`--claude-bin PATH`, `--statusline`, `--no-warm`); `--` ends
them.

Claude Code keeps its own credential: its ``ANTHROPIC_API_KEY``, or the bearer token of a
subscription (OAuth) login, reaches the gateway unchanged, and the `anthropic` backend forwards
it to Anthropic. The gateway's token travels in a header of its own (``x-ccrelay-token``,
through ``ANTHROPIC_CUSTOM_HEADERS``), never in place of the user's. Only a Claude Code with no
credential at all (`ccrelay.cli.claude_login`) is given the token as ``ANTHROPIC_AUTH_TOKEN``,
so that it starts; that one is never forwarded.

The gateway's log goes to a file under the state directory (said once, before claude starts),
never to the terminal claude draws on; so do warm-up reports that come after claude started.

What claude is given besides:

- ``CLAUDE_CODE_AUTO_COMPACT_WINDOW``: the active backend's prompt limit (its context window
  less the output reserve), so Claude Code compacts before the gateway has to refuse a prompt;
  a value the user set wins. Unknown window, or one under `MIN_AUTO_COMPACT_WINDOW`: not set.
  Claude Code 2.1.332 reads a smaller value as 100k and warns about it at every start; on such
  a window it compacts when the gateway refuses a prompt in its words, and the backend's tool
  clearing (``context_editing``) keeps that rare.
- ``CCRELAY_SESSION``: this session's id; its latency records carry it, and
  ``ccrelay statusline`` (installed with ``--statusline`` as claude's ``statusLine``) reads it,
  with ``CCRELAY_GATEWAY_URL`` to ask the gateway whether a self-hosted worker is cold;
- Claude Code's gateway hints (2.1.332+): ``CLAUDE_CODE_GATEWAY_HINT_HEADERS=1`` (each request
  says its class and session: routing and records use them) and
  ``CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1`` (``/model`` lists the gateway's backends);
- for a non-Anthropic backend, what keeps the engine's KV cache warm, as ``ollama launch
  claude`` does: ``CLAUDE_CODE_TOTAL_TOKENS_REMINDER=off`` (the "tokens left" note Claude Code
  adds after every tool result changes the prompt's front on engines that move system text
  there: ollama/ollama#17918) and ``CLAUDE_CODE_ATTRIBUTION_HEADER=0`` (the billing header
  differs in every session);
  every one of these only when the user has not set it.
- a warm-up of every scale-to-zero backend in the chain, started before claude
  (`ccrelay.coldstart.warmup`; ``--no-warm`` turns it off).

Ctrl-C belongs to claude: the terminal sends it to claude directly, and ccrelay ignores it while
claude runs, so claude decides what Ctrl-C means. SIGTERM and SIGHUP are passed on to claude.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO, cast

from ccrelay.cli._common import EXIT_USAGE, environ, run_command
from ccrelay.cli.claude_login import has_claude_credential
from ccrelay.cli.code_log import LateWriter, log_to_file

if TYPE_CHECKING:
    import asyncio

    from ccrelay.runtime import Runtime

_HELP = """\
usage: ccrelay code [--claude-bin PATH] [--statusline] [--no-warm] [--] [CLAUDE ARGS ...]

Run Claude Code (claude) through an in-process ccrelay gateway on a free loopback port.
Every argument is passed to claude unchanged; `--` ends ccrelay's own options.

options:
  -h, --help         show this help (claude's own help: ccrelay code -- --help)
  --claude-bin PATH  the claude executable (default: `claude` on PATH)
  --statusline       show ccrelay's status line in claude (backend, model, cache, saving)
  --no-warm          do not warm scale-to-zero backends at start
"""


@dataclass
class CodeOptions:
    claude_bin: str | None = None
    claude_args: list[str] = field(default_factory=list)
    help: bool = False
    statusline: bool = False
    warm: bool = True


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # No option prefix of its own: argparse would otherwise reject claude's options (-p, --model).
    parser = sub.add_parser(
        "code",
        help="run Claude Code through a private gateway on the configured backend",
        prefix_chars="\x00",
        add_help=False,
    )
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    parser.set_defaults(run=run)


def split_argv(argv: Sequence[str]) -> CodeOptions:
    """ccrelay's own options, and claude's args, from what followed `code`."""
    rest = list(argv)
    options = CodeOptions()
    while rest:
        head = rest[0]
        if head == "--":
            rest.pop(0)
            break
        if head in ("-h", "--help"):
            options.help = True
            rest.pop(0)
            break
        if head == "--claude-bin" and len(rest) > 1:
            options.claude_bin = rest[1]
            del rest[:2]
        elif head.startswith("--claude-bin="):
            options.claude_bin = head.partition("=")[2]
            rest.pop(0)
        elif head == "--statusline":
            options.statusline = True
            rest.pop(0)
        elif head == "--no-warm":
            options.warm = False
            rest.pop(0)
        else:
            break
    options.claude_args = rest
    return options


def resolve_claude(claude_bin: str | None, env: dict[str, str]) -> str | None:
    import shutil  # here, not at the top: every `ccrelay` command imports this module

    if claude_bin:
        return shutil.which(claude_bin, path=env.get("PATH")) or (
            claude_bin if os.path.isfile(claude_bin) else None
        )
    return shutil.which("claude", path=env.get("PATH"))


def run(args: argparse.Namespace) -> int:
    options = split_argv(args.argv)
    if options.help:
        sys.stdout.write(_HELP)
        return 0
    env = environ()
    claude = resolve_claude(options.claude_bin, env)
    if claude is None:
        where = options.claude_bin or "claude on PATH"
        print(
            f"ccrelay: cannot find {where}; install Claude Code "
            "(npm install -g @anthropic-ai/claude-code) or pass --claude-bin PATH",
            file=sys.stderr,
        )
        return EXIT_USAGE
    level = getattr(args, "log_level", None)
    return run_command(args, lambda: run_claude(claude, options, env, level))


def claude_environ(
    env: dict[str, str],
    url: str,
    token: str,
    *,
    window: int | None = None,
    session: str | None = None,
    own_credential: bool = True,
    anthropic: bool = False,
) -> dict[str, str]:
    """claude's environment: the user's, its credential untouched, pointed at the gateway, the
    gateway's token in ``ANTHROPIC_CUSTOM_HEADERS`` (added to any headers the user set).
    Without a credential of its own, claude gets the token as ``ANTHROPIC_AUTH_TOKEN`` too."""
    from ccrelay.gateway.auth import TOKEN_HEADER

    child = dict(env)
    child["ANTHROPIC_BASE_URL"] = url
    lines = [
        line
        for line in env.get("ANTHROPIC_CUSTOM_HEADERS", "").splitlines()
        if line.strip() and line.partition(":")[0].strip().lower() != TOKEN_HEADER
    ]
    child["ANTHROPIC_CUSTOM_HEADERS"] = "\n".join([*lines, f"{TOKEN_HEADER}: {token}"])
    if not own_credential:
        child["ANTHROPIC_AUTH_TOKEN"] = token
    if window is not None and window >= MIN_AUTO_COMPACT_WINDOW:
        child.setdefault("CLAUDE_CODE_AUTO_COMPACT_WINDOW", str(window))  # the user's wins
    if session is not None:
        child["CCRELAY_SESSION"] = session
    child["CCRELAY_GATEWAY_URL"] = url
    hints = dict(GATEWAY_HINTS)
    if not anthropic:
        hints.update(KV_CACHE_HYGIENE)
    for name, value in hints.items():
        if not child.get(name, "").strip():  # a value the user set wins
            child[name] = value
    return child


MIN_AUTO_COMPACT_WINDOW = 100_000
"""The smallest window Claude Code 2.1.332 takes from ``CLAUDE_CODE_AUTO_COMPACT_WINDOW``."""
GATEWAY_HINTS = {
    "CLAUDE_CODE_GATEWAY_HINT_HEADERS": "1",
    "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1",
}
KV_CACHE_HYGIENE = {
    "CLAUDE_CODE_TOTAL_TOKENS_REMINDER": "off",
    "CLAUDE_CODE_ATTRIBUTION_HEADER": "0",
}


def statusline_settings() -> str:
    """claude's ``--settings`` JSON that shows ``ccrelay statusline`` as its status line."""
    command = f"{sys.executable} -m ccrelay.cli statusline"
    return json.dumps({"statusLine": {"type": "command", "command": command, "padding": 0}})


def active_prompt_limit(runtime: Runtime) -> int | None:
    return runtime.factory.get(runtime.config.active).prompt_limit()


async def run_claude(
    claude: str, options: CodeOptions, env: dict[str, str], level: str | None = None
) -> int:
    import asyncio
    import secrets

    from ccrelay.coldstart.warmup import start_warm_ups
    from ccrelay.gateway import start_gateway
    from ccrelay.http.words import describe_os_error
    from ccrelay.runtime import Runtime

    token = secrets.token_urlsafe(32)
    session = uuid.uuid4().hex[:16]
    args = list(options.claude_args)
    if options.statusline:
        args = ["--settings", statusline_settings(), *args]
    async with Runtime.from_environ(env, session_id=session) as runtime:
        server = await start_gateway(runtime, host="127.0.0.1", port=0, auth_token=token)
        reports = LateWriter(sys.stderr)
        warm_ups = start_warm_ups(runtime, err=cast(TextIO, reports)) if options.warm else []
        child_env = claude_environ(
            env,
            server.url,
            token,
            window=active_prompt_limit(runtime),
            session=session,
            own_credential=await asyncio.to_thread(has_claude_credential, env),
            anthropic=runtime.factory.get(runtime.config.active).type_name == "anthropic",
        )
        with log_to_file(env, session, level) as log_file:
            print(f"ccrelay: gateway log: {log_file.path}", file=sys.stderr, flush=True)
            reports.switch(log_file.stream)
            try:
                try:
                    process = await asyncio.create_subprocess_exec(claude, *args, env=child_env)
                except OSError as exc:
                    reason = describe_os_error(exc)
                    print(f"ccrelay: cannot run {claude}: {reason}", file=sys.stderr)
                    return EXIT_USAGE
                code = await _wait_forwarding_signals(process)
            finally:
                for task in warm_ups:
                    task.cancel()
                await server.close()
                reports.switch(sys.stderr)
    return code if code >= 0 else 128 - code


async def _wait_forwarding_signals(process: asyncio.subprocess.Process) -> int:
    import asyncio

    loop = asyncio.get_running_loop()

    def forward(sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)

    installed = []
    for sig, callback in (
        (signal.SIGINT, lambda: None),  # the terminal already sent it to claude
        (signal.SIGTERM, lambda: forward(signal.SIGTERM)),
        (signal.SIGHUP, lambda: forward(signal.SIGHUP)),
    ):
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
            loop.add_signal_handler(sig, callback)
            installed.append(sig)
    try:
        return await process.wait()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        raise
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


__all__ = ["CodeOptions", "claude_environ", "register", "run", "split_argv"]
