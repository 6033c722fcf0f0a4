"""Who may use the gateway: the bind rule and the token check.

On loopback with no token the gateway is open, like any local dev server. Binding anywhere else
needs a token (`CCRELAY_AUTH_TOKEN`, read once by the entry point); with a token set, loopback
requires it too. The comparison is constant-time, over the bytes as they came: a header that is
not UTF-8 is a wrong token (401), never an error of ours.

The token travels in a header of its own, ``x-ccrelay-token: TOKEN`` (`ccrelay code` gives it
to Claude Code through ``ANTHROPIC_CUSTOM_HEADERS``), so Claude Code's own credential, its API
key or the bearer token of its login, reaches the gateway untouched and can be forwarded to the
`anthropic` backend. A client that cannot add headers may send the token the way Anthropic
clients send a key instead (``x-api-key: TOKEN`` or ``Authorization: Bearer TOKEN``); those
two headers then hold the gateway's token and are never forwarded (see `forward_headers`).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping

from multidict import CIMultiDictProxy

TOKEN_HEADER = "x-ccrelay-token"
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
            f"{TOKEN_HEADER}, x-api-key or 'Authorization: Bearer ...'), or bind to 127.0.0.1"
        )


def _raw(value: str) -> bytes:
    """The header's bytes as they came: aiohttp decodes headers as UTF-8 with
    ``surrogateescape``, which this undoes (a plain ``encode()`` would raise on them)."""
    return value.encode("utf-8", "surrogateescape")


def _bearer(value: str) -> str | None:
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


class TokenCheck:
    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def _matches(self, value: str) -> bool:
        return hmac.compare_digest(_raw(value), self._token)

    def __call__(self, headers: CIMultiDictProxy[str]) -> bool:
        own = headers.get(TOKEN_HEADER)
        if own is not None:  # the token's own header: the others are the caller's credential
            return self._matches(own.strip())
        key = headers.get("x-api-key")
        if key is not None and self._matches(key):
            return True
        auth = headers.get("authorization")
        if auth is not None:
            value = _bearer(auth)
            if value is not None and self._matches(value):
                return True
        return False


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # bytes that were not UTF-8: no upstream would take them
        return False
    return True


def forward_headers(headers: CIMultiDictProxy[str], *, auth_on: bool) -> Mapping[str, str]:
    """The caller's headers a backend may use: Anthropic's version and betas always; the
    caller's own credential unless it is the gateway's token.

    With auth on, a credential header is the caller's own only when the token came in its own
    header (``x-ccrelay-token``; the check then read nothing else) and the header does not
    repeat it. Only the `anthropic` backend reads credentials, and only to send them where
    the user's credential may go (`ccrelay.backends.anthropic`).
    """
    out: dict[str, str] = {}
    token = headers.get(TOKEN_HEADER)
    names: tuple[str, ...] = FORWARDED_ALWAYS
    if not auth_on or token is not None:
        names = FORWARDED_ALWAYS + FORWARDED_CREDENTIALS
    token = token.strip() if token is not None else None
    for name in names:
        values = headers.getall(name, ())
        if not values:
            continue
        value = values[0] if len(values) == 1 else ",".join(values)
        if name in FORWARDED_CREDENTIALS:
            if not _utf8(value):
                continue
            if token is not None and token in (value.strip(), _bearer(value)):
                continue  # the gateway's own token, repeated: never sent on
        out[name] = value
    return out
