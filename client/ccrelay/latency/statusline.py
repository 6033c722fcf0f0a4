"""One short line for Claude Code's ``statusLine``: where this session's requests went, and why
it is cheaper: ``ccrelay · cerebras · gpt-oss-120b · cache 40% · saved $0.12 (9 requests)``.

Read from this session's latency records (the local JSONL day files: today's and yesterday's),
found by the ``session`` field `ccrelay code` puts on them (``CCRELAY_SESSION``). Claude Code
runs the command after every message, so it is kept cheap: a substring test on each line, and
only the matching lines parsed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ccrelay.latency._layout import jsonl_name
from ccrelay_config.pricing import PriceTable

__all__ = ["session_records", "status_line"]


def session_records(
    directory: Path, session: str, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The records of `session` in the local day files of today and yesterday (UTC)."""
    now = now or datetime.now(UTC)
    needle = f'"session":"{session}"'.encode()
    found: list[dict[str, Any]] = []
    for day in (now - timedelta(days=1), now):
        try:
            data = (directory / jsonl_name(day.date())).read_bytes()
        except OSError:
            continue
        for line in data.splitlines():
            if needle in line:
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    found.append(record)
    return found


def status_line(records: Iterable[dict[str, Any]], prices: PriceTable, *, active: str) -> str:
    """The line: the last backend and model served, the cache hit rate, the saving so far.

    The saving is over request records (``baseline_usd - cost_usd``, prompt caching priced in);
    records written before they existed are attempts only, priced on the baseline model.
    """
    records = list(records)
    requests = [r for r in records if r.get("kind") == "request"]
    served = [r for r in (requests or records) if r.get("outcome") == "ok"]
    if not served:
        return f"ccrelay · {active} · no request yet"
    last = served[-1]
    verdicts = [r.get("cache") for r in served if r.get("cache")]
    hits = sum(1 for v in verdicts if v == "hit")
    if requests:
        saving = sum(
            float(r.get("baseline_usd") or 0) - float(r.get("cost_usd") or 0) for r in requests
        )
    else:
        saving = sum(
            prices.baseline_cost(int(r.get("tokens_in") or 0), int(r.get("tokens_out") or 0))
            - float(r.get("cost_usd") or 0)
            for r in served
            if r.get("backend_type") != "anthropic"
        )
    parts = ["ccrelay", str(last.get("backend")), str(last.get("model"))]
    if verdicts:
        parts.append(f"cache {round(100 * hits / len(verdicts))}%")
    parts.append(f"saved ${max(saving, 0):.2f} ({len(served)} request{'s' * (len(served) != 1)})")
    return " · ".join(parts)
