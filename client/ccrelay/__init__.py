"""ccrelay's client side: backends behind one strategy interface, failover, the gateway and CLI.

Typical library use::

    async with Runtime.from_environ(os.environ) as runtime:
        served = await runtime.router.complete(request, RequestOptions(request_id="r1"))
        served.result.response  # an Anthropic Messages response; served.backend says who

`request` is an Anthropic Messages request (a dict); every backend answers in Anthropic's shapes.
The packages follow a request: `gateway` -> `routing` -> `backends` -> `http`, with `latency`
told what happened (docs/architecture.md walks one request through them).
"""

from typing import TYPE_CHECKING

from ccrelay_wire.lazy import lazy_exports

if TYPE_CHECKING:
    from ccrelay.backends.base import Backend
    from ccrelay.backends.registry import BackendRegistry
    from ccrelay.backends.stream import EventStream
    from ccrelay.backends.types import (
        CacheVerdict,
        Completion,
        HealthReport,
        ModelInfo,
        RequestOptions,
    )
    from ccrelay.errors import (
        AllBackendsFailed,
        BackendError,
        CcrelayError,
        InvalidRequestError,
        UnknownBackendError,
    )
    from ccrelay.latency.observer import Attempt, AttemptObserver
    from ccrelay.routing.chain import Router, Served
    from ccrelay.runtime import Runtime

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ccrelay.backends.base": ("Backend",),
        "ccrelay.backends.registry": ("BackendRegistry",),
        "ccrelay.backends.stream": ("EventStream",),
        "ccrelay.backends.types": (
            "CacheVerdict",
            "Completion",
            "HealthReport",
            "ModelInfo",
            "RequestOptions",
        ),
        "ccrelay.errors": (
            "AllBackendsFailed",
            "BackendError",
            "CcrelayError",
            "InvalidRequestError",
            "UnknownBackendError",
        ),
        "ccrelay.latency.observer": ("Attempt", "AttemptObserver"),
        "ccrelay.routing.chain": ("Router", "Served"),
        "ccrelay.runtime": ("Runtime",),
    },
)

__all__ = [
    "AllBackendsFailed",
    "Attempt",
    "AttemptObserver",
    "Backend",
    "BackendError",
    "BackendRegistry",
    "CacheVerdict",
    "CcrelayError",
    "Completion",
    "EventStream",
    "HealthReport",
    "InvalidRequestError",
    "ModelInfo",
    "RequestOptions",
    "Router",
    "Runtime",
    "Served",
    "UnknownBackendError",
]
