"""Memory goes back to the system once the gateway is idle (`ccrelay.gateway.memory`), never
while a request is in flight; glibc's malloc_trim is looked up then, not at start."""

from __future__ import annotations

import asyncio
import platform

import pytest

from ccrelay.gateway.memory import IdleTrim

GLIBC = platform.libc_ver()[0] == "glibc"


async def settle(trim: IdleTrim) -> None:
    """Until the idle check that `request_done` scheduled has run (5 s at most)."""
    for _ in range(1000):
        await asyncio.sleep(0.005)
        if trim._pending is None:
            return


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
async def test_memory_goes_back_once_idle() -> None:
    in_flight = [1]
    trim = IdleTrim(lambda: in_flight[0], idle_s=0.01, every_s=0.0)
    trim.request_done()  # one is still in flight: nothing scheduled
    assert trim._pending is None
    in_flight[0] = 0
    trim.request_done()
    await settle(trim)
    assert trim.trims == 1


async def test_not_while_a_request_is_in_flight() -> None:
    in_flight = [0]
    trim = IdleTrim(lambda: in_flight[0], idle_s=0.01, every_s=0.0)
    trim.request_done()
    in_flight[0] = 1  # a request came in before the idle check
    await settle(trim)
    assert trim.trims == 0


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
async def test_a_burst_that_ends_soon_after_a_trim_is_trimmed_when_the_period_is_over() -> None:
    trim = IdleTrim(lambda: 0, idle_s=0.01, every_s=0.2)
    trim.request_done()
    await settle(trim)
    assert trim.trims == 1
    trim.request_done()  # 0.2 s have not passed: later, not never
    assert trim._pending is not None
    await settle(trim)
    assert trim.trims == 2


async def test_a_long_period_holds_the_next_trim_back() -> None:
    trim = IdleTrim(lambda: 0, idle_s=0.01, every_s=3600.0)
    trim.request_done()  # the first period since start is not over
    await asyncio.sleep(0.05)
    assert trim.trims == 0
    trim.cancel()
