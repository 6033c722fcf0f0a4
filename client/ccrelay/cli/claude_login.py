"""Does the user's Claude Code hold a credential of its own? (`ccrelay code` asks.)

`ccrelay code` leaves Claude Code's credential alone: its API key, or the bearer token of its
subscription login, goes to the gateway unchanged and on to the `anthropic` backend. But a
Claude Code with no credential at all refuses to send anything ("Not logged in · Please run
/login"), so a user who only ever uses other backends gets the gateway's token as
``ANTHROPIC_AUTH_TOKEN`` (never forwarded). Setting that variable would replace a login, so it
is set only when none can be found; when in doubt, Claude Code keeps what it has.

Where Claude Code keeps credentials (read in the 2.1.332 binary: ``.credentials.json`` in
``$CLAUDE_CONFIG_DIR`` or ``~/.claude``, ``primaryApiKey`` in ``.claude.json``, an
``apiKeyHelper`` setting); on macOS the login is in the Keychain instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["has_claude_credential"]

_CREDENTIAL_VARIABLES = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
_KEYCHAIN_SERVICE = "Claude Code-credentials"
"""The macOS Keychain item of a Claude Code login (as commonly reported; not verified here,
so any answer but "not found" counts as a login)."""
_KEYCHAIN_NOT_FOUND = 44
"""``security find-generic-password``'s exit status when there is no such item."""


def has_claude_credential(env: Mapping[str, str]) -> bool:
    """True when Claude Code, run with `env`, would have a credential of its own."""
    if any(env.get(name, "").strip() for name in _CREDENTIAL_VARIABLES):
        return True
    home = Path(env.get("HOME") or os.path.expanduser("~"))
    config_dir = Path(env.get("CLAUDE_CONFIG_DIR") or home / ".claude")
    if _holds(config_dir / ".credentials.json", _oauth_token):
        return True
    for config_file in (config_dir / ".claude.json", home / ".claude.json"):
        if _holds(config_file, lambda data: bool(data.get("primaryApiKey"))):
            return True
    if _holds(config_dir / "settings.json", lambda data: bool(data.get("apiKeyHelper"))):
        return True
    return sys.platform == "darwin" and _keychain_login(env)


def _oauth_token(data: dict[str, Any]) -> bool:
    oauth = data.get("claudeAiOauth")
    return isinstance(oauth, dict) and bool(oauth.get("accessToken"))


def _holds(path: Path, test: Any) -> bool:
    """Does the JSON file at `path` pass `test`? A file that exists but cannot be read is
    taken to hold a credential: Claude Code may read what we cannot."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        data = json.loads(text)
    except ValueError:
        return True
    return bool(test(data)) if isinstance(data, dict) else False


def _keychain_login(env: Mapping[str, str]) -> bool:
    try:
        found = subprocess.run(
            ["security", "find-generic-password", "-s", _KEYCHAIN_SERVICE],
            capture_output=True,
            timeout=5,
            check=False,
            env=dict(env),
        )
    except (OSError, subprocess.TimeoutExpired):
        return True
    return found.returncode != _KEYCHAIN_NOT_FOUND
