"""Whose Anthropic credential an `anthropic` backend may carry, and where to.

A user's own Anthropic credential (``ANTHROPIC_API_KEY``, or the key or OAuth bearer token Claude
Code sends) is theirs: it goes to Anthropic's own API, or to a host the config trusts in so many
words (``forward_credentials: true``), or to the upstream the user named in their environment
(``ANTHROPIC_BASE_URL_UPSTREAM``), and nowhere else. A config file copied from someone else
cannot send it to their server by naming a ``base_url``. Another backend type never carries it
(only the `anthropic` backend reads the caller's credential headers).

The loader reads ``ANTHROPIC_API_KEY`` for an `anthropic` backend the file gives no ``api_key``,
under the same rule; the backend forwards the caller's credential under it.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = [
    "ANTHROPIC_API_HOST",
    "ANTHROPIC_BASE_URL",
    "UPSTREAM_VARIABLE",
    "trusts_user_credentials",
    "upstream_from_environment",
]

ANTHROPIC_API_HOST = "api.anthropic.com"
ANTHROPIC_BASE_URL = f"https://{ANTHROPIC_API_HOST}"
UPSTREAM_VARIABLE = "ANTHROPIC_BASE_URL_UPSTREAM"
"""Where the user says Anthropic is (a corporate proxy, a test's stand-in); an `anthropic`
backend without a ``base_url`` goes there, trusted, since the user set it themselves."""


def trusts_user_credentials(base_url: str | None, forward_credentials: bool | None) -> bool:
    """May the user's own Anthropic credential go to `base_url`?

    ``forward_credentials`` is the config's word: true sends it anywhere the backend points,
    false never; unset (None) sends it only to Anthropic's own API over HTTPS.
    """
    if forward_credentials is not None:
        return forward_credentials
    parts = urlsplit(base_url or ANTHROPIC_BASE_URL)
    return parts.scheme == "https" and (parts.hostname or "").lower() == ANTHROPIC_API_HOST


def upstream_from_environment(environ: Mapping[str, str]) -> str | None:
    """``ANTHROPIC_BASE_URL_UPSTREAM`` when set (blank is unset)."""
    value = environ.get(UPSTREAM_VARIABLE, "").strip()
    return value or None
