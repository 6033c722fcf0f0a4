"""``python -m bench [NAME ...] [--quick]``: run the named benchmarks (default: all) and print
one table.

Every figure that compares two things (added latency, miss against hit, routed against bare) is
measured in the same run, paired against its baseline, so machine noise cancels as far as it can.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence

from bench.gateway import Row

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


BENCHMARKS: dict[str, Benchmark] = {
    "gateway": gateway_rows,
    "handler": handler_rows,
    "routing": routing_rows,
}
SAMPLED: dict[str, Callable[[bool, int], list[Row]]] = {
    "handler": handler_rows,
    "routing": routing_rows,
}
ALIASES = {"handler_cache": "handler"}


def format_table(sections: Sequence[tuple[str, list[Row]]], title: str) -> str:
    """One table: section | measure | value | unit | target | verdict."""
    header = ["bench", "measure", "value", "unit", "target", ""]
    table = [header]
    for section, rows in sections:
        for n, row in enumerate(rows):
            table.append([section if n == 0 else "", *row.cells()])
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = [f"## {title}"]
    for n, line in enumerate(table):
        if n > 1 and line[0]:
            lines.append("")
        lines.append(
            "  ".join(
                cell.rjust(widths[i]) if i == 2 else cell.ljust(widths[i])
                for i, cell in enumerate(line)
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
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
    print(format_table(sections, title))
    missed = [row.name for _, rows in sections for row in rows if row.ok is False]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
