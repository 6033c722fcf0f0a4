"""The `ccrelay` command: a thin argparse shell over the library.

Each sub-command lives in its own module exposing `register(subparsers)`, which sets
`run=callable(args) -> exit code` on its parser.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS = (
    "ask",
    "models",
    "config_cmd",
    "backends",
    "serve",
    "code",
    "stats",
    "deploy",
    "statusline",
)


class _Version(argparse.Action):
    """``--version``: the installed package's version, read only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print ccrelay's version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("ccrelay")
        except PackageNotFoundError:  # a checkout on sys.path, not installed
            found = "(not installed)"
        print(f"ccrelay {found}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ccrelay",
        description="Claude Code on Cerebras, a RunPod serverless Qwen3-Coder, or any OpenAI-compatible proxy.",
    )
    parser.add_argument("--version", action=_Version)
    parser.add_argument(
        "--log-level", default=None, help="DEBUG, INFO, WARNING (default: WARNING; serve: INFO)"
    )
    parser.add_argument(
        "--log-format", choices=("human", "json"), default="human", help="log line format"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"ccrelay.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("ccrelay: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
