"""Live-fire fixtures: real Cerebras, RunPod and OpenAI-compatible (LiteLLM on Vast.ai) endpoints.

Credentials come from `secrets.ci.json` at the repository root (or the file named by
`CCRELAY_SECRETS_FILE`), else from the environment. A backend without credentials is skipped, and
the skip says which file or variables would enable it. See `secrets.ci.example.json`.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ccrelay.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]

_ENV_FALLBACK = {
    "cerebras": {"api_key": "CEREBRAS_API_KEY", "model": "CEREBRAS_MODEL"},
    "runpod": {
        "api_key": "RUNPOD_API_KEY",
        "endpoint_id": "RUNPOD_ENDPOINT_ID",
        "model": "RUNPOD_MODEL",
    },
    "openai": {
        "base_url": "LITELLM_BASE_URL",
        "api_key": "LITELLM_API_KEY",
        "model": "LITELLM_MODEL",
    },
}
_REQUIRED = {
    "cerebras": ("api_key",),
    "runpod": ("api_key", "endpoint_id"),
    "openai": ("base_url",),
}


def _secrets_file() -> Path:
    return Path(os.environ.get("CCRELAY_SECRETS_FILE", ROOT / "secrets.ci.json"))


def live_settings(kind: str) -> dict[str, Any]:
    """This backend's live settings, or a skip that says how to provide them."""
    path = _secrets_file()
    settings: dict[str, Any] = {}
    if path.is_file():
        settings = dict(json.loads(path.read_text(encoding="utf-8")).get(kind) or {})
    for field, variable in _ENV_FALLBACK[kind].items():
        if field not in settings and os.environ.get(variable):
            settings[field] = os.environ[variable]
    missing = [f for f in _REQUIRED[kind] if not settings.get(f)]
    if missing:
        variables = ", ".join(_ENV_FALLBACK[kind][f] for f in missing)
        pytest.skip(
            f"live {kind} test skipped: no {', '.join(missing)} in {path.name} "
            f"(see secrets.ci.example.json) nor {variables} in the environment"
        )
    return settings


@pytest.fixture
async def live_runtime(request: pytest.FixtureRequest) -> AsyncIterator[Runtime]:
    """A Runtime whose only backend is the parametrised live one (named like its type)."""
    kind: str = request.param
    settings = {"type": kind, **live_settings(kind)}
    if kind == "runpod":
        settings.setdefault("cold_start_timeout_s", 900)
    env = {
        "ENABLE_MULTI_BACKEND": "true",
        "LLM_BACKEND_CONFIG": json.dumps({"active": kind, "backends": {kind: settings}}),
    }
    runtime = Runtime.from_environ(env)
    try:
        yield runtime
    finally:
        await runtime.aclose()
