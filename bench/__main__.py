"""``python -m bench [NAME ...] [--quick]``: run the named benchmarks (default: all), print one table.

``python -m bench sessions [--seed N] [--assumptions PATH] [--json]`` replays a day of Claude Code
sessions against a scale-to-zero endpoint (bench/sessions.py); it prints its own tables before
the common one, or, with ``--json``, one JSON object and nothing else.

Every figure that compares two things (added latency, miss against hit, routed against bare) is
measured in the same run, paired against its baseline, so machine noise cancels as far as it can.
Run it from the repository root (the benchmarks are part of a checkout, not of the package).
Exit codes: 0 every target met, 1 a figure missed its target (the table marks it MISSED), 2 bad
usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

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


def sessions_rows(quick: bool) -> list[Row]:
    from bench import sessions

    return sessions.rows(quick)


BENCHMARKS: dict[str, Benchmark] = {
    "gateway": gateway_rows,
    "handler": handler_rows,
    "routing": routing_rows,
    "warm_start": warm_start_rows,
    "runpod_stream": runpod_stream_rows,
    "stats": stats_rows,
    "sessions": sessions_rows,
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
    parser.add_argument("--seed", type=int, metavar="N", help="sessions: the trace's seed")
    parser.add_argument(
        "--assumptions",
        type=Path,
        metavar="PATH",
        help="sessions: the latency model (default: shared/reference/latency-model.json in the "
        "folder that holds the checkout)",
    )
    parser.add_argument(
        "--json", action="store_true", help="sessions: print its figures as one JSON object"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in known]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(known)}")
    names = list(dict.fromkeys(ALIASES.get(name, name) for name in args.names)) or list(BENCHMARKS)
    if args.json and names != ["sessions"]:
        parser.error("--json is for the sessions benchmark alone: python -m bench sessions --json")
    if (args.seed is not None or args.assumptions) and "sessions" not in names:
        parser.error("--seed and --assumptions are for the sessions benchmark")
    sections = []
    details = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        if name == "sessions":
            from bench import sessions
            from bench._sessions_assumptions import AssumptionsError

            try:
                report = sessions.report(args.quick, args.seed, args.assumptions)
            except AssumptionsError as exc:
                print(f"python -m bench sessions: {exc}", file=sys.stderr)
                if args.names or args.assumptions:
                    return 2
                continue  # every benchmark was asked for; a clone without the shared folder
            if args.json:
                print(json.dumps(report.as_json(), indent=2))
                return 1 if report.missed else 0
            details.append(report.text())
            sections.append((name, report.rows()))
        elif args.samples and name in SAMPLED:
            sections.append((name, SAMPLED[name](args.quick, args.samples)))
        else:
            sections.append((name, BENCHMARKS[name](args.quick)))
    title = "ccrelay benchmarks" + (" (--quick)" if args.quick else "")
    for text in details:
        print(text, end="\n\n")
    print(format_sections(sections, title))
    missed = [row.name for _, rows in sections for row in rows if row.ok is False]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
