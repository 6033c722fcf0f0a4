"""Warm starts: a scale-to-zero backend starts its cold worker the moment a session starts.

A RunPod endpoint at zero workers makes the first prompt wait for a worker to boot and load
the model (tens of seconds). `ccrelay code` and `ccrelay serve --warm` send each such backend in
the chain a warm-up job at once, in the background: the cold start overlaps the time the user
takes to type the first prompt, and claude's start is never delayed. What happens is said on
stderr: ``warming runpod endpoint NAME ...``, then ``NAME: worker ready after N s``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any, TextIO

from ccrelay.backends.base import Backend
from ccrelay.coldstart.driver import ColdStartDriver
from ccrelay.errors import CcrelayError
from ccrelay.runtime import Runtime

__all__ = ["start_warm_ups"]

log = logging.getLogger("ccrelay.coldstart.warmup")


def start_warm_ups(runtime: Runtime, err: TextIO | None = None) -> list[asyncio.Task[None]]:
    """One background warm-up per chain backend that can warm up; returns their tasks."""
    err = err or sys.stderr
    tasks = []
    for name in runtime.router.chain():
        backend = runtime.factory.get(name)
        if not backend.scales_to_zero:
            continue
        print(
            f"ccrelay: warming {backend.type_name} endpoint {name} (a cold worker starts now, "
            "while you type)",
            file=err,
            flush=True,
        )
        driver = runtime.router.cold_start(name)

        async def warm(
            name: str = name,
            backend: Backend[Any] = backend,
            driver: ColdStartDriver | None = driver,
        ) -> None:
            try:  # through the cold-start policies when it has them: they learn the start
                elapsed = await (driver.warm_up_now() if driver else backend.warm_up())
            except CcrelayError as exc:
                print(f"ccrelay: {name}: warm-up failed: {exc.message}", file=err, flush=True)
                return
            if elapsed is not None:
                print(f"ccrelay: {name}: worker ready after {elapsed:.0f} s", file=err, flush=True)

        tasks.append(asyncio.create_task(warm(), name=f"warm-up {name}"))
    return tasks
