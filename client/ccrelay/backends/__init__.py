"""The backends: one `Backend` contract, the registry and factory, one file per provider.

The public surface is here; each provider is `ccrelay.backends.<type>` (RunPod: a folder),
registered in pyproject's ``ccrelay.backends`` entry-point group.
"""

from typing import TYPE_CHECKING

from ccrelay_wire.lazy import lazy_exports

if TYPE_CHECKING:
    from ccrelay.backends.base import Backend
    from ccrelay.backends.factory import BackendFactory
    from ccrelay.backends.registry import BackendRegistry
    from ccrelay.backends.stream import EventStream
    from ccrelay.backends.types import (
        CacheVerdict,
        Completion,
        HealthReport,
        ModelInfo,
        RequestOptions,
    )

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ccrelay.backends.base": ("Backend",),
        "ccrelay.backends.factory": ("BackendFactory",),
        "ccrelay.backends.registry": ("BackendRegistry",),
        "ccrelay.backends.stream": ("EventStream",),
        "ccrelay.backends.types": (
            "CacheVerdict",
            "Completion",
            "HealthReport",
            "ModelInfo",
            "RequestOptions",
        ),
    },
)

__all__ = [
    "Backend",
    "BackendFactory",
    "BackendRegistry",
    "CacheVerdict",
    "Completion",
    "EventStream",
    "HealthReport",
    "ModelInfo",
    "RequestOptions",
]
