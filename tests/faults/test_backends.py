"""Each backend type, used directly, against every fault: the right exception class, bounded
time, one attempt record per attempt with the right outcome, and the key nowhere."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from ccrelay.backends.base import Backend
from ccrelay.backends.types import RequestOptions
from ccrelay.errors import BackendError, StreamInterrupted, UpstreamRateLimited
from ccrelay.runtime import Runtime
from tests.client.latency.helpers import RefusingPort
from tests.fakes.runpod_jobs import FakeRunPod
from tests.faults.helpers import (
    BOUND_S,
    KINDS,
    MID_STREAM,
    PRE_STREAM,
    REQUEST,
    SECRET,
    FaultServer,
    Records,
    Sleeps,
    Witness,
    expected,
    load,
    mid_stream_reply,
    pre_stream_reply,
    recorded,
    runpod_script,
    stall_for,
)


class Rig:
    """One backend of a kind against a server, with its records, sleeps and witness."""

    def __init__(self, runtime: Runtime, records: Records, sleeps: Sleeps, kind: str) -> None:
        self.runtime = runtime
        self.records = records
        self.sleeps = sleeps
        self.backend: Backend = runtime.factory.get(kind)
        self.witness = Witness()

    async def fail(self, call: str) -> BackendError:
        """Run `call` (complete, open_stream or a full stream); the error it ended with."""
        started = time.monotonic()
        with pytest.raises(BackendError) as caught:
            if call == "complete":
                self.witness.add(await self.backend.complete(dict(REQUEST), RequestOptions("r1")))
            else:
                stream = await self.backend.open_stream(dict(REQUEST), RequestOptions("r1"))
                async for event in stream:
                    self.witness.add(event)
        assert time.monotonic() - started < BOUND_S
        self.witness.error(caught.value)
        self.witness.add(self.records.attempts)
        return caught.value


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def rig_for(kind: str, url: str, session: aiohttp.ClientSession, **fields: Any) -> Rig:
    records, sleeps = Records(), Sleeps()
    runtime = Runtime(load(kind, url, **fields), session, observer=records, sleep=sleeps)
    return Rig(runtime, records, sleeps, kind)


@pytest.mark.parametrize("call", ["complete", "open_stream"])
@pytest.mark.parametrize("fault", PRE_STREAM)
@pytest.mark.parametrize("kind", KINDS)
async def test_fault_before_the_reply(
    kind: str,
    fault: str,
    call: str,
    fault_server: FaultServer,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    refusing = RefusingPort() if fault == "refused" else None
    url = refusing.url if refusing is not None else fault_server.url
    rig = await rig_for(kind, url, session)
    hold = stall_for(kind, call)
    if refusing is None:
        fault_server.push(*(pre_stream_reply(fault, hold) for _ in range(2)))
    try:
        error = await rig.fail(call)
    finally:
        if refusing is not None:
            refusing.close()
        await rig.runtime.factory.aclose()

    expected_class, attempts = expected(kind, fault, call)
    assert type(error) is expected_class, repr(error)
    assert error.backend == kind
    assert rig.records.outcomes() == [(n, expected_class.outcome) for n in range(1, attempts + 1)]
    assert all(a.streamed == (call == "open_stream") for a in rig.records.attempts)
    if fault == "429":
        assert isinstance(error, UpstreamRateLimited) and error.retry_after == 0.01
        assert rig.sleeps.delays == [0.01]
        assert {a.status for a in rig.records.attempts} == {429}
    else:
        assert len(rig.sleeps.delays) == attempts - 1
    if refusing is None:
        sent = fault_server.requests[0].headers
        assert SECRET in (sent.get("x-api-key") or sent.get("Authorization") or "")
        assert len(fault_server.requests) == attempts
    rig.witness.assert_clean(caplog)


@pytest.mark.parametrize("fault", MID_STREAM)
@pytest.mark.parametrize("kind", KINDS)
async def test_fault_in_the_middle_of_a_stream(
    kind: str,
    fault: str,
    fault_server: FaultServer,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runpod = None
    if kind == "runpod_poll":
        # RunPod streams by polling /stream: the same faults, in its own protocol
        runpod = await FakeRunPod(api_key=SECRET).start()
        runpod.push_job(runpod_script(fault))
        rig = await rig_for(kind, runpod.url, session, endpoint_url=runpod.endpoint_url)
    else:
        fault_server.push(mid_stream_reply(kind, fault))
        rig = await rig_for(kind, fault_server.url, session)
    try:
        error = await rig.fail("stream")
    finally:
        await rig.runtime.factory.aclose()
        if runpod is not None:
            await runpod.close()

    assert isinstance(error, StreamInterrupted), repr(error)
    assert isinstance(error.__cause__, recorded(kind, fault)), repr(error.__cause__)
    assert rig.records.outcomes() == [(1, recorded(kind, fault).outcome)]  # never retried
    assert rig.records.attempts[0].streamed and rig.records.attempts[0].ttfb_ms is not None
    assert rig.sleeps.delays == []
    rig.witness.assert_clean(caplog)
