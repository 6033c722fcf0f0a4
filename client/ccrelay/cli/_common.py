"""What every sub-command shares: logging set-up, the runtime, and errors as exit codes.

Exit codes: 0 success, 1 the backend failed, 2 bad configuration or usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TextIO

from ccrelay.errors import CcrelayError, InvalidRequestError, UnknownBackendError
from ccrelay.logsetup import configure_logging
from ccrelay_config.errors import ConfigError

EXIT_OK = 0
EXIT_BACKEND = 1
EXIT_USAGE = 2


def run_command(
    args: argparse.Namespace,
    body: Callable[[], Coroutine[Any, Any, int]],
    *,
    default_level: str = "WARNING",
    err: TextIO | None = None,
) -> int:
    """Run an async command body, turning every ccrelay error into a one-line reason."""
    import asyncio

    err = err or sys.stderr
    configure_logging(args.log_level, args.log_format, default=default_level)
    try:
        return asyncio.run(body())
    except ConfigError as exc:
        print(f"ccrelay: config error: {exc}", file=err)
        return EXIT_USAGE
    except (UnknownBackendError, InvalidRequestError) as exc:
        print(f"ccrelay: {exc.message}", file=err)
        return EXIT_USAGE
    except CcrelayError as exc:
        print(f"ccrelay: error: {exc.message}", file=err)
        return EXIT_BACKEND


def environ() -> dict[str, str]:
    return dict(os.environ)
