"""Relaying a backend's event stream to the caller as Anthropic SSE, event by event.

The route opens the stream (`Router.open_stream`) before any header is sent, so a failure up to
the first event is an ordinary HTTP error. From then on:

- every event is written as it arrives (``event: <type>\\ndata: <json>\\n\\n``), one write per
  event, nothing buffered (aiohttp sets TCP_NODELAY and drains when its buffer fills);
- a backend failing mid-stream ends the stream with an SSE ``error`` event, Anthropic's way, and
  no ``message_stop``: a half message is never passed off as complete. A stream that simply stops
  before ``message_stop`` gets the same treatment;
- the caller going away (a failed write, or the handler being cancelled) closes the upstream
  stream at once, so the backend stops generating.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from ccrelay.backends.stream import EventStream
from ccrelay.errors import CcrelayError, GatewayShuttingDown, StreamInterrupted
from ccrelay.gateway.drain import Drain
from ccrelay.gateway.errors import Scrubber, log_unexpected, stream_error_event

log = logging.getLogger("ccrelay.gateway")

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}

_TRUNCATED = StreamInterrupted("gateway", "the backend's stream ended before message_stop")
_SHUTDOWN = GatewayShuttingDown("the ccrelay gateway is shutting down; the answer was cut off")


async def relay(
    request: web.Request,
    response: web.StreamResponse,
    stream: EventStream,
    *,
    request_id: str,
    scrub: Scrubber,
    drain: Drain | None = None,
) -> str:
    """Write the stream to the caller; returns how it ended: ok, error, truncated, or gone."""
    events = stream.wire()
    try:
        await response.prepare(request)
        try:
            async for data in events:
                try:
                    await response.write(data)
                except ConnectionError:
                    log.info("client went away mid-stream (request_id=%s)", request_id)
                    return "gone"
        except CcrelayError as exc:
            log.warning(
                "stream from %s broke (request_id=%s): %s", stream.backend, request_id, exc.message
            )
            await _end_with(response, stream_error_event(exc))
            return "error"
        except Exception as exc:
            log_unexpected(exc, "a stream", request_id, scrub)
            await _end_with(response, stream_error_event(exc))
            return "error"
        if not stream.completed:
            log.warning(
                "stream from %s ended before message_stop (request_id=%s)",
                stream.backend,
                request_id,
            )
            await _end_with(response, stream_error_event(_TRUNCATED))
            return "truncated"
        await response.write_eof()
        return "ok"
    except ConnectionError:
        log.info("client went away (request_id=%s)", request_id)
        return "gone"
    except asyncio.CancelledError as exc:
        if drain is not None and drain.cut_by(exc):
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            log.warning("stream cut by the gateway's shutdown (request_id=%s)", request_id)
            await _end_with(response, stream_error_event(_SHUTDOWN))
            return "shutdown"
        # aiohttp cancels the handler when the caller hangs up
        log.info("client went away mid-stream (request_id=%s)", request_id)
        raise
    finally:
        await events.aclose()
        await stream.aclose()


async def _end_with(response: web.StreamResponse, payload: bytes) -> None:
    with contextlib.suppress(ConnectionError):  # the caller left too: nobody to tell
        await response.write(payload)
        await response.write_eof()
