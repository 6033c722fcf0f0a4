"""`ccrelay deploy`: create or update the RunPod endpoint that serverless.yml declares.

The work is in :mod:`ccrelay.deploy`; this module only wires the sub-command.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ccrelay.deploy import API_URL_VARIABLE

__all__ = ["register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "deploy",
        help="create or update the RunPod serverless endpoint from serverless.yml",
        description=(
            "Validate serverless.yml, then create or update the template, the endpoint (and the "
            "network volume, if asked) through RunPod's REST API, changing only what differs. "
            "Needs RUNPOD_API_KEY. Prints what changed and the ccrelay config for the endpoint."
        ),
    )
    parser.add_argument(
        "file", nargs="?", default="serverless.yml", help="default: ./serverless.yml"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would change; change nothing"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="report whether RunPod scaled the endpoint down (max workers 0 after 7 idle days)",
    )
    parser.add_argument(
        "--api-url",
        help=f"RunPod REST API base URL (default ${API_URL_VARIABLE} or https://api.runpod.io/v2)",
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import asyncio

    from ccrelay.deploy.command import run_deploy

    return asyncio.run(
        run_deploy(
            Path(args.file),
            environ=os.environ,
            out=sys.stdout,
            err=sys.stderr,
            dry_run=args.dry_run,
            check=args.check,
            api_url=args.api_url,
        )
    )
