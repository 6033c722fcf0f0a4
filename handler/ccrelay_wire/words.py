"""OS-level failures in plain words, for the messages of both deployables.

The OS names a failure by class or errno (``ConnectionRefusedError``, ``ENOSPC``); a person
needs "connection refused" or "no space left on the device". Standard library only.
"""

from __future__ import annotations

import errno
import ssl

__all__ = ["describe_os_error"]

_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by the server",
    errno.ECONNABORTED: "connection aborted",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.EPIPE: "connection closed by the server",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or directory",
    errno.EISDIR: "is a directory",
    errno.ENOSPC: "no space left on the device",
    errno.EROFS: "read-only file system",
    errno.EADDRINUSE: "address already in use",
    errno.EADDRNOTAVAIL: "address not available on this machine",
}


def describe_os_error(exc: BaseException) -> str:
    """An OS-level failure in a few lower-case words ("connection refused")."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "its TLS certificate could not be verified"
    if isinstance(exc, ssl.SSLError):
        return "the TLS handshake failed"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        if exc.errno in _ERRNO_WORDS:
            return _ERRNO_WORDS[exc.errno]
        if exc.strerror:
            return exc.strerror[:1].lower() + exc.strerror[1:]
    if isinstance(exc, ConnectionError):
        return "the connection failed"
    return "an unexpected error"
