"""ccrelay's client side: backends behind one strategy interface, failover, the gateway and CLI.

Typical library use::

    async with Runtime.from_environ(os.environ) as runtime:
        result = await runtime.router.complete(request, RequestOptions(request_id="r1"))

`request` is an Anthropic Messages request (a dict); every backend answers in Anthropic's shapes.
"""

from ccrelay.backend import (
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
from ccrelay.errors import (
    AllBackendsFailed,
    BackendError,
    CcrelayError,
    InvalidRequestError,
    UnknownBackendError,
)
from ccrelay.registry import BackendRegistry
from ccrelay.router import Router
from ccrelay.runtime import Runtime

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
