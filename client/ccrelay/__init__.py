"""ccrelay's client side: backends behind one strategy interface, failover, the gateway and CLI.

Typical library use::

    async with Runtime.from_environ(os.environ) as runtime:
        result = await runtime.router.complete(request, RequestOptions(request_id="r1"))

`request` is an Anthropic Messages request (a dict); every backend answers in Anthropic's shapes.
"""

from typing import TYPE_CHECKING

from ccrelay_wire.lazy import lazy_exports

if TYPE_CHECKING:
    from ccrelay.backends.base import (
        Attempt,
        AttemptObserver,
        Backend,
        CacheVerdict,
        Completion,
        EventStream,
        HealthReport,
        ModelInfo,
        RequestOptions,
    )
    from ccrelay.backends.registry import BackendRegistry
    from ccrelay.errors import (
        AllBackendsFailed,
        BackendError,
        CcrelayError,
        InvalidRequestError,
        UnknownBackendError,
    )
    from ccrelay.routing.chain import Router
    from ccrelay.runtime import Runtime

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ccrelay.backends.base": (
            "Attempt",
            "AttemptObserver",
            "Backend",
            "CacheVerdict",
            "Completion",
            "EventStream",
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
        "ccrelay.backends.registry": ("BackendRegistry",),
        "ccrelay.routing.chain": ("Router",),
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
    "UnknownBackendError",
]
