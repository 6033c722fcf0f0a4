"""When to retry and how long to wait: exponential backoff with full jitter, Retry-After first.

Small parts with an injected `sleep` and random source (the tenacity shape), so tests never sleep
and retry decisions are made on exception types only.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC

from ccrelay.errors import CcrelayError, UpstreamStatusError
from ccrelay_config.models import RetrySettings

Sleep = Callable[[float], Awaitable[None]]


def is_retryable(error: BaseException) -> bool:
    return isinstance(error, CcrelayError) and error.retryable


@dataclass
class RetryPolicy:
    settings: RetrySettings
    sleep: Sleep = asyncio.sleep
    rng: Callable[[], float] = field(default=random.random)

    def delay_for(self, attempt: int, error: BaseException) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to stop retrying."""
        if attempt >= self.settings.max_attempts or not is_retryable(error):
            return None
        retry_after = error.retry_after if isinstance(error, UpstreamStatusError) else None
        if retry_after is not None:
            if retry_after > self.settings.max_retry_after_s:
                return None
            return retry_after
        factor: int = 2 ** (attempt - 1)
        ceiling = min(self.settings.max_backoff_s, self.settings.initial_backoff_s * factor)
        return ceiling * self.rng()


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import datetime
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
