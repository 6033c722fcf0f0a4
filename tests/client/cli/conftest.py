"""Shared helpers for the CLI tests: the config in the environment, running `main` off the loop."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from ccrelay.cli import main


def use_config(monkeypatch: pytest.MonkeyPatch, config: dict[str, Any] | str | Path) -> None:
    """Turn on multi-backend mode with `config`: a document (sent as JSON), a path, or raw text."""
    monkeypatch.setenv("ENABLE_MULTI_BACKEND", "true")
    text = json.dumps(config) if isinstance(config, dict) else str(config)
    monkeypatch.setenv("LLM_BACKEND_CONFIG", text)


async def ccrelay(*argv: str) -> int:
    """Run `ccrelay argv...` in a thread (it runs its own event loop) while the test's loop serves."""
    return await asyncio.to_thread(main, list(argv))
