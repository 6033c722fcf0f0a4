"""A streamed job's SSE text, in as few outputs as its pace allows.

The runpod SDK sends each yielded output to RunPod in a POST of its own and waits for it before
it asks the handler for the next (runpod-python ``serverless/modules/rp_scale.py``,
``handle_job`` streaming each item through ``rp_http.stream_result``). One output per event
would cap a stream at one event per round trip to RunPod, however fast the engine is. So the
events are read in a task of their own while a POST is in flight, and the next output carries
every event ready by then, joined (SSE text concatenates: the relay writes it as it is). The
first event still leaves the moment it is ready: batching never adds a wait. (worker-vllm
batches too, by token count: ``DEFAULT_MIN_BATCH_SIZE`` 1 growing by
``DEFAULT_BATCH_SIZE_GROWTH_FACTOR`` to ``DEFAULT_BATCH_SIZE`` 50, which holds tokens back
until a batch fills; batching by readiness holds none back.)

`sse_batches` closes the source deterministically: when the consumer stops (the job cancelled,
the handler closed), the reading task is cancelled and the source generator closed with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from contextlib import aclosing

__all__ = ["MAX_BATCH_BYTES", "sse_batches"]

MAX_BATCH_BYTES = 256 * 1024
"""A batch stops growing here: one output stays well under RunPod's payload limits."""


class _End:
    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


async def sse_batches(
    texts: AsyncGenerator[str, None], *, max_bytes: int = MAX_BATCH_BYTES
) -> AsyncGenerator[str, None]:
    """`texts` joined into batches of what is ready; an error of the source is raised here,
    after the batch read before it."""
    ready: asyncio.Queue[str | _End] = asyncio.Queue()

    async def read() -> None:
        try:
            async with aclosing(texts):
                async for text in texts:
                    ready.put_nowait(text)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the consumer, which raises it in its context
            ready.put_nowait(_End(exc))
        else:
            ready.put_nowait(_End(None))

    reader = asyncio.get_running_loop().create_task(read())
    try:
        while True:
            item = await ready.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            parts, size, end = [item], len(item), None
            while size < max_bytes and not ready.empty():
                more = ready.get_nowait()
                if isinstance(more, _End):
                    end = more
                    break
                parts.append(more)
                size += len(more)
            yield "".join(parts)
            if end is not None:
                if end.error is not None:
                    raise end.error
                return
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
