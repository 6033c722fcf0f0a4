"""Who may use the gateway: the bind rule and the token check.

On loopback with no token the gateway is open, like any local dev server. Binding anywhere else
needs a token (`CCRELAY_AUTH_TOKEN`, read once by the entry point); with a token set, loopback
requires it too. Clients send it the way Anthropic clients send a key: ``x-api-key: TOKEN`` or
``Authorization: Bearer TOKEN`` (Claude Code uses the first for ``ANTHROPIC_API_KEY`` and the
second for ``ANTHROPIC_AUTH_TOKEN``). The comparison is constant-time.

When auth is on, those two headers hold the gateway's token, so they are never forwarded to a
backend (see `forward_headers`).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping

from multidict import CIMultiDictProxy

FORWARDED_ALWAYS = ("anthropic-beta", "anthropic-version")
FORWARDED_CREDENTIALS = ("x-api-key", "authorization")

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class AuthRequired(ValueError):
    """Binding off loopback without a token."""


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to expose an unauthenticated gateway beyond this machine."""
    if not token and not is_loopback(host):
        raise AuthRequired(
            f"refusing to listen on {host} without a token: anyone who can reach it could use "
            "your backends. Set CCRELAY_AUTH_TOKEN to a long random value (clients send it as "
            "x-api-key or 'Authorization: Bearer ...'), or bind to 127.0.0.1"
        )


class TokenCheck:
    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def __call__(self, headers: CIMultiDictProxy[str]) -> bool:
        key = headers.get("x-api-key")
        if key is not None and hmac.compare_digest(key.encode(), self._token):
            return True
        auth = headers.get("authorization")
        if auth is not None:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(
                value.strip().encode(), self._token
            ):
                return True
        return False


def forward_headers(headers: CIMultiDictProxy[str], *, auth_on: bool) -> Mapping[str, str]:
    """The caller's headers a backend may use: Anthropic's version and betas always; the
    caller's own credentials only when they are not the gateway's token."""
    out: dict[str, str] = {}
    names = FORWARDED_ALWAYS if auth_on else FORWARDED_ALWAYS + FORWARDED_CREDENTIALS
    for name in names:
        values = headers.getall(name, ())
        if values:
            out[name] = values[0] if len(values) == 1 else ",".join(values)
    return out
