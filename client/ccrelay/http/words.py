"""Network failures in plain words, for messages a person reads.

aiohttp and the OS name a failure by class (``ClientConnectorDNSError``,
``ConnectionRefusedError``); a user needs "DNS lookup failed for api.runpod.io" or "cannot
connect to api.anthropic.com: connection refused". Every message that reports a transport
failure is built here, so none shows a Python class name.
"""

from __future__ import annotations

import aiohttp

from ccrelay_wire.words import describe_os_error

__all__ = ["describe_connection_error", "describe_os_error"]


def describe_connection_error(exc: BaseException, host: str) -> str:
    """A whole sentence for a failed request to `host` (no class names, no URLs with keys)."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"DNS lookup failed for {host}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"cannot connect to {host}: its TLS certificate could not be verified"
    if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
        return f"cannot connect to {host}: the TLS handshake failed"
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return f"cannot connect to the proxy for {host}: {describe_os_error(exc.os_error)}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {host}: {describe_os_error(exc.os_error)}"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return f"cannot connect to {host}: connection timed out"
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return f"{host} did not answer in time"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{host} closed the connection before answering"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"the reply from {host} was cut off"
    if isinstance(exc, aiohttp.ClientOSError):
        return f"the connection to {host} failed: {describe_os_error(exc)}"
    if isinstance(exc, aiohttp.InvalidUrlClientError):
        return f"the URL for {host} is not valid"
    if isinstance(exc, OSError):
        return f"the connection to {host} failed: {describe_os_error(exc)}"
    return f"the connection to {host} failed"
