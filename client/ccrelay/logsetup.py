"""Log configuration for the entry points: one line per record, human or JSON, on stderr."""

from __future__ import annotations

import json
import logging
import sys
import time


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if callable(fields):  # computed only when a JSON line is written
            fields = fields()
        if isinstance(fields, dict):
            payload.update(fields)
        return json.dumps(payload, default=str)


class LineFormatter(logging.Formatter):
    """``2026-12-01 10:00:00,123 INFO ccrelay.gateway: ...``, the stock format, with the
    date formatted once a second rather than on every line (the gateway logs two lines a
    request: strftime was a visible share of a request's CPU)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._second = -1
        self._date = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._date = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(record.created))
        return f"{self._date},{int(record.msecs):03d}"


def configure_logging(level: str | None, fmt: str = "human", *, default: str = "WARNING") -> None:
    # Neither format shows a source line, thread or process: do not look them up per record
    # (logging walks the stack for the caller on every call otherwise; the logging HOWTO,
    # "Optimization", names these switches).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(LineFormatter())
    root = logging.getLogger("ccrelay")
    root.handlers[:] = [handler]
    root.setLevel((level or default).upper())
