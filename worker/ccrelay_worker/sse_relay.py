"""HTTP mode's streamed answers, for both of its APIs (OpenAI chat chunks, Anthropic events).

The same rules hold for each:

- the first item is pulled before the headers go out, so an error before it keeps its HTTP
  status (the API's error body), and the cache verdict, known by then, can be a header;
- a later error ends the stream with the API's in-band error event (the status is sent);
- a client that goes away ends the relay quietly: leaving the ``async with`` closes the
  service's stream, which stops the engine;
- an unexpected exception is logged here, once, and the client gets a plain internal error.

An `SSEDialect` says how one API writes these.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ccrelay_handler.errors import HandlerError
from ccrelay_handler.service import StreamVerdict
from ccrelay_wire import CACHE_VERDICT_HEADER

__all__ = ["SSEDialect", "relay_sse"]

logger = logging.getLogger("ccrelay.worker.http")


@dataclass(frozen=True)
class SSEDialect:
    what: str
    """What is streamed, for the log: ``chat stream``, ``messages stream``."""
    event: Callable[[Any], str]
    """One item as SSE text."""
    error_event: Callable[[HandlerError | None], str]
    """The in-band error event (None: an internal error)."""
    refusal: Callable[[HandlerError | None], web.Response]
    """The error answer before the stream starts (None: an internal error)."""
    first: Callable[[Any, str | None], Any] = lambda item, _verdict: item
    """The first item, given the cache verdict (the chat API carries it in the first chunk)."""
    done: str = ""
    """Written after the last item (the chat API's ``data: [DONE]``)."""


async def relay_sse(
    request: web.Request,
    items: AsyncGenerator[Any, None],
    verdict: StreamVerdict,
    dialect: SSEDialect,
) -> web.StreamResponse:
    async with aclosing(items):
        try:
            first = await anext(items, None)
        except HandlerError as exc:
            return dialect.refusal(exc)
        except Exception:
            logger.exception("a %s failed unexpectedly", dialect.what)
            return dialect.refusal(None)
        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        if verdict.value is not None:
            headers[CACHE_VERDICT_HEADER] = verdict.value
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        try:
            if first is not None:
                await response.write(dialect.event(dialect.first(first, verdict.value)).encode())
            async for item in items:
                await response.write(dialect.event(item).encode())
        except HandlerError as exc:
            await response.write(dialect.error_event(exc).encode())
            return response
        except (ConnectionError, OSError):
            return response  # the client went away; leaving the block stops the engine
        except Exception:
            logger.exception("a %s failed unexpectedly", dialect.what)
            await response.write(dialect.error_event(None).encode())
            return response
        if dialect.done:
            await response.write(dialect.done.encode())
        await response.write_eof()
        return response
