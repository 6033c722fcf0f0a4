"""``python -m bench [NAME ...] [--quick]``: run the named benchmarks (default: all)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

BENCHMARKS: dict[str, Callable[[bool], int]] = {}


def _gateway(quick: bool) -> int:
    from bench import gateway

    return gateway.main(["--quick"] if quick else [])


def _handler_cache(quick: bool) -> int:
    from bench import handler_cache

    return handler_cache.main(["handler_cache", "300" if quick else "2000"])


BENCHMARKS["gateway"] = _gateway
BENCHMARKS["handler_cache"] = _handler_cache


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BENCHMARKS))
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    status = 0
    for name in args.names or list(BENCHMARKS):
        status |= BENCHMARKS[name](args.quick)
    return status


if __name__ == "__main__":
    sys.exit(main())
