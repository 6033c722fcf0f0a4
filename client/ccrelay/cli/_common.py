"""What every sub-command shares: logging set-up, the runtime, and errors as exit codes.

Exit codes: 0 success, 1 the backend failed, 2 bad configuration or usage (a key the backend
refuses or a model it does not serve included: the fix is in the config).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TextIO

from ccrelay.errors import CcrelayError, Fault, InvalidRequestError, UnknownBackendError
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
        # a key the backend refuses, a model it does not serve: fix the config, not the backend
        return EXIT_USAGE if exc.fault in (Fault.CALLER, Fault.CONFIG) else EXIT_BACKEND


def environ() -> dict[str, str]:
    return dict(os.environ)
