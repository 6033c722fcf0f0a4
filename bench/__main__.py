"""``python -m bench [NAME ...] [--quick]``: run the named benchmarks (default: all), print one table.

Every figure that compares two things (added latency, miss against hit, routed against bare) is
measured in the same run, paired against its baseline, so machine noise cancels as far as it can.
Run it from the repository root (the benchmarks are part of a checkout, not of the package).
Exit codes: 0 every target met, 1 a figure missed its target (the table marks it MISSED), 2 bad
usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

from bench._table import Row, format_sections

Benchmark = Callable[[bool], list[Row]]

QUICK_N = 300
FULL_N = 2000


def gateway_rows(quick: bool) -> list[Row]:
    from bench import gateway

    return asyncio.run(gateway.run(quick))


def handler_rows(quick: bool, n: int | None = None) -> list[Row]:
    from bench import handler

    return handler.rows(n or (QUICK_N if quick else FULL_N))


def routing_rows(quick: bool, n: int | None = None) -> list[Row]:
    from bench import routing

    return routing.rows(n or (QUICK_N if quick else 3 * FULL_N))


def warm_start_rows(quick: bool) -> list[Row]:
    from bench import warm_start

    return warm_start.rows(quick)


def runpod_stream_rows(quick: bool) -> list[Row]:
    from bench import runpod_stream

    return runpod_stream.rows(quick)


def context_editing_rows(quick: bool) -> list[Row]:
    from bench import context_editing

    return context_editing.rows(quick)


def stats_rows(quick: bool) -> list[Row]:
    from bench import stats

    return stats.rows(quick)


BENCHMARKS: dict[str, Benchmark] = {
    "gateway": gateway_rows,
    "handler": handler_rows,
    "routing": routing_rows,
    "warm_start": warm_start_rows,
    "runpod_stream": runpod_stream_rows,
    "stats": stats_rows,
    "context_editing": context_editing_rows,
}
SAMPLED: dict[str, Callable[[bool, int], list[Row]]] = {
    "handler": handler_rows,
    "routing": routing_rows,
}
ALIASES = {"handler_cache": "handler"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    known = [*BENCHMARKS, *ALIASES]
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(known))
    parser.add_argument("--quick", action="store_true", help="fewer samples (under a minute)")
    parser.add_argument(
        "--samples", type=int, metavar="N", help="samples for the handler and routing benchmarks"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in known]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(known)}")
    names = list(dict.fromkeys(ALIASES.get(name, name) for name in args.names)) or list(BENCHMARKS)
    sections = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        if args.samples and name in SAMPLED:
            sections.append((name, SAMPLED[name](args.quick, args.samples)))
        else:
            sections.append((name, BENCHMARKS[name](args.quick)))
    title = "ccrelay benchmarks" + (" (--quick)" if args.quick else "")
    print(format_sections(sections, title))
    missed = [row.name for _, rows in sections for row in rows if row.ok is False]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
