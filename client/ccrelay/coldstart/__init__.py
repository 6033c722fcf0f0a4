"""What ccrelay does so that a user does not wait for a cold self-hosted worker.

`ColdStartPolicies` holds a RunPod backend's keep-warm, hedging and affinity policies behind the
calls a gateway makes (its docstring lists them); `ColdStartSettings` configures them. The
policies do no I/O and read no clock. `ccrelay.coldstart.warmup` starts warm-ups at session
start.
"""

from typing import TYPE_CHECKING

from ccrelay_wire.lazy import lazy_exports

if TYPE_CHECKING:
    from ccrelay.coldstart.affinity import WorkerAffinity
    from ccrelay.coldstart.endpoint_view import EndpointView, WorkerCounts
    from ccrelay.coldstart.hedge import ColdStartHedge
    from ccrelay.coldstart.keep_warm import SessionKeepWarm, best_hold
    from ccrelay.coldstart.policies import ColdStartPolicies, RequestPlan, TickPlan, WarmJob
    from ccrelay.coldstart.settings import (
        AffinitySettings,
        ColdStartSettings,
        HedgeSettings,
        KeepWarmSettings,
    )

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ccrelay.coldstart.affinity": ("WorkerAffinity",),
        "ccrelay.coldstart.endpoint_view": ("EndpointView", "WorkerCounts"),
        "ccrelay.coldstart.hedge": ("ColdStartHedge",),
        "ccrelay.coldstart.keep_warm": ("SessionKeepWarm", "best_hold"),
        "ccrelay.coldstart.policies": ("ColdStartPolicies", "RequestPlan", "TickPlan", "WarmJob"),
        "ccrelay.coldstart.settings": (
            "AffinitySettings",
            "ColdStartSettings",
            "HedgeSettings",
            "KeepWarmSettings",
        ),
    },
)

__all__ = [
    "AffinitySettings",
    "ColdStartHedge",
    "ColdStartPolicies",
    "ColdStartSettings",
    "EndpointView",
    "HedgeSettings",
    "KeepWarmSettings",
    "RequestPlan",
    "SessionKeepWarm",
    "TickPlan",
    "WarmJob",
    "WorkerAffinity",
    "WorkerCounts",
    "best_hold",
]
