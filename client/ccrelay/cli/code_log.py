"""Where `ccrelay code` writes while claude draws on the terminal: a log file, never stderr.

Claude Code owns the terminal once it starts: a gateway log line (a failover warning, an access
line) printed there lands inside its screen. So from just before claude starts, the `ccrelay`
logger (and the root logger, for anything a library logs) writes to a file of the session
under the state directory, ``logs/code-<time>-<session>.log``; the newest few sessions' files
are kept. Reports that start before claude and finish after it (a warm-up) go to the
terminal until then and to the file after (`LateWriter`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ccrelay.logsetup import LineFormatter

__all__ = ["KEPT_LOGS", "LateWriter", "SessionLog", "log_to_file"]

KEPT_LOGS = 20
"""Session log files kept in the state directory's ``logs``; older ones are removed."""


@dataclass(frozen=True)
class SessionLog:
    path: Path
    stream: TextIO


class LateWriter:
    """A text stream that writes to `first` until `switch`, then to the stream it is given."""

    def __init__(self, first: TextIO) -> None:
        self._target = first

    def switch(self, target: TextIO) -> None:
        self._target = target

    def write(self, text: str) -> int:
        return self._target.write(text)

    def flush(self) -> None:
        self._target.flush()


def _prune(directory: Path) -> None:
    logs = sorted(directory.glob("code-*.log"), key=lambda p: p.name, reverse=True)
    for old in logs[KEPT_LOGS - 1 :]:
        with contextlib.suppress(OSError):
            old.unlink()


@contextlib.contextmanager
def log_to_file(env: Mapping[str, str], session: str, level: str | None) -> Iterator[SessionLog]:
    """Send every log line to this session's file until the block ends (default level INFO:
    the file is read after the fact, so it keeps the access lines)."""
    from ccrelay_config.telemetry import default_state_dir

    directory = default_state_dir(env) / "logs"
    directory.mkdir(parents=True, exist_ok=True)
    _prune(directory)
    path = directory / f"code-{time.strftime('%Y%m%dT%H%M%S')}-{session}.log"
    stream = path.open("a", encoding="utf-8", buffering=1)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LineFormatter())
    ours, root = logging.getLogger("ccrelay"), logging.getLogger()
    our_handlers, our_level, root_handlers = ours.handlers[:], ours.level, root.handlers[:]
    propagates = ours.propagate
    ours.handlers[:] = [handler]
    ours.setLevel((level or "INFO").upper())
    ours.propagate = False  # the root has the same handler: a line is written once
    root.handlers[:] = [handler]
    try:
        yield SessionLog(path, stream)
    finally:
        ours.handlers[:] = our_handlers
        ours.setLevel(our_level)
        ours.propagate = propagates
        root.handlers[:] = root_handlers
        stream.close()
