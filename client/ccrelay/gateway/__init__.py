"""The local Anthropic-compatible gateway Claude Code points ``ANTHROPIC_BASE_URL`` at.

- `app`:        `build_app` (routes behind one middleware) and `GatewayServer` / `start_gateway`;
- `routes`:     /v1/messages, /v1/messages/count_tokens, /v1/models, /health;
- `streaming`:  relaying a backend's event stream as SSE, event by event;
- `errors`:     Anthropic's error shape for every failure, scrubbed logs for bugs;
- `auth`:       the bind rule, the token check, which caller headers are forwarded;
- `validation`: the light top-level check of request bodies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccrelay_wire.lazy import lazy_exports

if TYPE_CHECKING:
    from ccrelay.gateway.app import MAX_BODY_BYTES, GatewayServer, build_app, start_gateway
    from ccrelay.gateway.auth import AuthRequired, check_bind, is_loopback

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ccrelay.gateway.app": ("MAX_BODY_BYTES", "GatewayServer", "build_app", "start_gateway"),
        "ccrelay.gateway.auth": ("AuthRequired", "check_bind", "is_loopback"),
    },
)

__all__ = [
    "MAX_BODY_BYTES",
    "AuthRequired",
    "GatewayServer",
    "build_app",
    "check_bind",
    "is_loopback",
    "start_gateway",
]
