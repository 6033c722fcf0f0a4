"""ccrelay's client-side configuration: one variable picks the backend.

`LLM_BACKEND_CONFIG` names a YAML/JSON file (or holds inline JSON) defining backends;
`LLM_BACKEND` (or the file's `active`) picks one; `ENABLE_MULTI_BACKEND` must be true for
anything but plain Anthropic.
"""

from typing import TYPE_CHECKING

from ccrelay_wire.lazy import lazy_exports

if TYPE_CHECKING:
    from ccrelay_config.errors import ConfigError, ConfigProblem
    from ccrelay_config.loader import load_config, multi_backend_enabled
    from ccrelay_config.models import (
        BackendSettings,
        CcrelayConfig,
        CircuitSettings,
        GatewaySettings,
        RetrySettings,
        TimeoutSettings,
    )

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ccrelay_config.errors": ("ConfigError", "ConfigProblem"),
        "ccrelay_config.loader": ("load_config", "multi_backend_enabled"),
        "ccrelay_config.models": (
            "BackendSettings",
            "CcrelayConfig",
            "CircuitSettings",
            "GatewaySettings",
            "RetrySettings",
            "TimeoutSettings",
        ),
    },
)

__all__ = [
    "BackendSettings",
    "CcrelayConfig",
    "CircuitSettings",
    "ConfigError",
    "ConfigProblem",
    "GatewaySettings",
    "RetrySettings",
    "TimeoutSettings",
    "load_config",
    "multi_backend_enabled",
]
