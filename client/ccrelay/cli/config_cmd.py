"""`ccrelay config check`: validate the configuration and print it resolved, secrets masked."""

from __future__ import annotations

import argparse
import sys

from ccrelay.cli._common import EXIT_OK, EXIT_USAGE, environ
from ccrelay.logsetup import configure_logging
from ccrelay_config.errors import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("config", help="inspect the configuration")
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check", help="validate and print the resolved config (secrets masked)"
    )
    check.set_defaults(run=run_check)


def run_check(args: argparse.Namespace) -> int:
    import yaml

    from ccrelay.backends.factory import load_client_config

    configure_logging(args.log_level, args.log_format, default="INFO")
    try:
        config = load_client_config(environ())
    except ConfigError as exc:
        print(f"ccrelay: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"# source: {config.source}")
    print(f"# active backend: {config.active}; request order: {' -> '.join(config.chain())}")
    sys.stdout.write(yaml.safe_dump(config.masked(), sort_keys=False))
    return EXIT_OK
