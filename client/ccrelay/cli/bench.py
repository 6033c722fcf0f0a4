"""`ccrelay bench [NAME ...] [--quick]`: the benchmarks of a source checkout, from any directory.

The benchmarks (`bench/` beside the packages) measure the gateway against a loopback upstream
and the worker's handler against a real redis-server; they are not installed with ccrelay, so
this command needs the repository (an editable install, `pip install -e .`). It runs
``python -m bench`` there and exits with its code: 0 every target met, 1 a target missed,
2 bad usage or no checkout.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from ccrelay.cli._common import EXIT_USAGE


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "bench",
        help="run the benchmarks of a source checkout (python -m bench)",
        add_help=False,
        prefix_chars="\x00",  # every argument goes to python -m bench, --help included
    )
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    parser.set_defaults(run=run)


def checkout_root() -> Path | None:
    """The repository holding this ccrelay, when it has the benchmarks (editable installs)."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "bench" / "__main__.py").is_file() else None


def run(args: argparse.Namespace) -> int:
    root = checkout_root()
    if root is None:
        print(
            "ccrelay: the benchmarks live in the source repository, which this installation "
            "does not come from; clone it and `pip install -e .`, then run `ccrelay bench`",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return subprocess.call([sys.executable, "-m", "bench", *args.argv], cwd=root)
