"""A streamed job's SSE text in as few outputs as its pace allows (ccrelay_handler.sse_batches)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

import pytest

from ccrelay_handler.errors import EngineUnavailable
from ccrelay_handler.sse_batches import sse_batches


class Source:
    """Texts at a given pace; records whether it was closed."""

    def __init__(self, count: int, every_s: float = 0.0, fail_after: int | None = None) -> None:
        self.count = count
        self.every_s = every_s
        self.fail_after = fail_after
        self.closed = False
        self.cancelled = False

    async def texts(self) -> AsyncGenerator[str, None]:
        try:
            for i in range(self.count):
                if self.fail_after is not None and i == self.fail_after:
                    raise EngineUnavailable("the engine went away")
                await asyncio.sleep(self.every_s)
                yield f"event: e\ndata: {i}\n\n"
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            self.closed = True


def expected(count: int) -> str:
    return "".join(f"event: e\ndata: {i}\n\n" for i in range(count))


async def test_events_ready_while_an_output_is_sent_go_out_together() -> None:
    source = Source(200, every_s=0.001)
    batches = []
    async for batch in sse_batches(source.texts()):
        batches.append(batch)
        await asyncio.sleep(0.02)  # the SDK's POST of this output to RunPod
    assert "".join(batches) == expected(200)  # nothing lost, nothing reordered
    assert len(batches) < 50
    assert source.closed


async def test_the_first_event_leaves_without_waiting_for_more() -> None:
    source = Source(3, every_s=0.5)
    started = time.monotonic()
    batches = sse_batches(source.texts())
    first = await anext(batches)
    assert first == expected(1)
    assert time.monotonic() - started < 0.9  # one event's pace, not a batch's
    await batches.aclose()
    assert source.closed


async def test_a_batch_stops_growing_at_its_size_limit() -> None:
    source = Source(100)
    batches = [batch async for batch in sse_batches(source.texts(), max_bytes=64)]
    assert "".join(batches) == expected(100)
    assert all(len(batch) < 64 + 20 for batch in batches)


async def test_an_error_of_the_source_comes_after_what_it_sent() -> None:
    source = Source(10, fail_after=4)
    received = []
    with pytest.raises(EngineUnavailable):
        async for batch in sse_batches(source.texts()):
            received.append(batch)
    assert "".join(received) == expected(4)
    assert source.closed


async def test_a_cancelled_job_cancels_and_closes_the_source() -> None:
    source = Source(1000, every_s=0.01)

    async def job() -> None:
        async for _batch in sse_batches(source.texts()):
            pass

    task = asyncio.create_task(job())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert source.cancelled and source.closed
