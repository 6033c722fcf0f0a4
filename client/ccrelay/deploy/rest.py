"""A small client for RunPod's management REST API (v2): serverless endpoints, templates and
network volumes, over the project's HTTP layer.

* Base URL ``https://api.runpod.io/v2`` (overridable: tests point it at a loopback fake);
  paths ``/serverless``, ``/templates``, ``/network-volumes``; bearer auth.
* The conversation is `ccrelay.http.client.UpstreamClient`'s: its deadlines, size limits,
  secret scrubbing (the API key and every secret handed in) and error mapping by status, with
  RunPod's RFC 9457 problem documents read by `ccrelay.http.statuses.provider_message`.
* Retries are `ccrelay.http.retry.RetryPolicy`'s (full jitter, Retry-After first, injected
  ``sleep`` and ``rng``). GET and PATCH are idempotent and retried on whatever the policy calls
  retryable; POST (create) only when RunPod cannot have acted on it: a 429, or a connection
  that was never made. A create that may have happened is never sent twice (rerunning
  ``ccrelay deploy`` finds it by name instead).
* What leaves this module is `ccrelay.deploy.errors`: the CLI's boundary.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp
from pydantic import SecretStr

from ccrelay.deploy.errors import (
    DeployError,
    RunPodAPIError,
    RunPodAuthError,
    RunPodNotFound,
    RunPodProtocolError,
    RunPodRateLimited,
    RunPodServerError,
    RunPodTransportError,
)
from ccrelay.errors import (
    BackendConnectError,
    BackendError,
    ConnectTimeout,
    ProtocolError,
    TransportError,
    UnknownModelError,
    UpstreamAuthError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamStatusError,
)
from ccrelay.http.client import UpstreamClient, UpstreamTarget
from ccrelay.http.retry import RetryPolicy, Sleep
from ccrelay_config.models import RetrySettings, TimeoutSettings

__all__ = ["DEFAULT_API_URL", "DEFAULT_RETRY", "RunPodRest"]

log = logging.getLogger("ccrelay.deploy")

DEFAULT_API_URL = "https://api.runpod.io/v2"
DEFAULT_RETRY = RetrySettings(max_attempts=4, initial_backoff_s=0.5, max_backoff_s=8.0)
_TIMEOUTS = TimeoutSettings(connect_s=10.0, first_byte_s=60.0, idle_s=30.0, total_s=60.0)
_BACKEND = "RunPod API"
_AUTH_FIX = (
    "check that RUNPOD_API_KEY is a current key with read/write access to Serverless "
    "(console: Settings > API Keys)"
)
_MIN_SECRET = 4  # shorter values would scrub ordinary words out of every message
_LIST_KEYS = ("data", "items", "endpoints", "templates", "networkVolumes", "results")
_NEVER_SENT = (UpstreamRateLimited, BackendConnectError, ConnectTimeout)
"""Failures after which RunPod cannot have acted on a request: safe to send a POST again."""


class RunPodRest:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_key: SecretStr,
        *,
        base_url: str = DEFAULT_API_URL,
        retry: RetrySettings = DEFAULT_RETRY,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        secrets: Iterable[str] = (),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        key = api_key.get_secret_value()
        hidden = sorted(
            {s for s in (key, *secrets) if len(s) >= _MIN_SECRET}, key=len, reverse=True
        )
        self._client = UpstreamClient(
            session,
            UpstreamTarget(
                backend=_BACKEND,
                base_url=self.base_url,
                headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
                timeouts=_TIMEOUTS,
                secrets=tuple(hidden),
                auth_fix=_AUTH_FIX,
            ),
        )
        self._retry = RetryPolicy(retry, sleep=sleep, rng=rng)

    # --- serverless endpoints ------------------------------------------------------------
    async def list_endpoints(self) -> list[dict[str, Any]]:
        return _as_list(await self._request("GET", "/serverless"))

    async def get_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        return _as_dict(await self._request("GET", f"/serverless/{endpoint_id}"))

    async def create_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        return _as_dict(await self._request("POST", "/serverless", body))

    async def update_endpoint(self, endpoint_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        return _as_dict(await self._request("PATCH", f"/serverless/{endpoint_id}", patch))

    # --- templates -----------------------------------------------------------------------
    async def list_templates(self) -> list[dict[str, Any]]:
        return _as_list(await self._request("GET", "/templates"))

    async def create_template(self, body: dict[str, Any]) -> dict[str, Any]:
        return _as_dict(await self._request("POST", "/templates", body))

    async def update_template(self, template_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        return _as_dict(await self._request("PATCH", f"/templates/{template_id}", patch))

    # --- network volumes -----------------------------------------------------------------
    async def list_network_volumes(self) -> list[dict[str, Any]]:
        return _as_list(await self._request("GET", "/network-volumes"))

    async def get_network_volume(self, volume_id: str) -> dict[str, Any]:
        return _as_dict(await self._request("GET", f"/network-volumes/{volume_id}"))

    async def create_network_volume(self, body: dict[str, Any]) -> dict[str, Any]:
        return _as_dict(await self._request("POST", "/network-volumes", body))

    async def update_network_volume(self, volume_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        return _as_dict(await self._request("PATCH", f"/network-volumes/{volume_id}", patch))

    # --- transport -----------------------------------------------------------------------
    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._client.request_json(method, path, body)
            except BackendError as exc:
                delay = self._retry.delay_for(attempt, exc)
                if delay is None or (method == "POST" and not isinstance(exc, _NEVER_SENT)):
                    raise _deploy_error(method, path, exc) from None
                log.info("%s %s: %s; retrying in %.1f s", method, path, _words(exc), delay)
                await self._retry.sleep(delay)


def _words(exc: BackendError) -> str:
    """The error without the backend name `UpstreamClient` puts in front."""
    return exc.message.removeprefix(f"{exc.backend}: ")


def _deploy_error(method: str, path: str, exc: BackendError) -> DeployError:
    """The HTTP layer's error as the deploy tree's, worded for someone running ``deploy``."""
    where, words = f"{method} {path}", _words(exc)
    if isinstance(exc, TransportError):
        return RunPodTransportError(f"{where}: {words}", words)
    if isinstance(exc, ProtocolError):
        return RunPodProtocolError(f"{where}: RunPod {words}")
    if not isinstance(exc, UpstreamStatusError):
        return DeployError(f"{where}: {words}")
    status, retry_after = exc.upstream_status, exc.retry_after
    if isinstance(exc, UpstreamAuthError):
        return RunPodAuthError(f"{where}: RunPod refused the API key ({words})", status)
    if isinstance(exc, UnknownModelError):  # what the HTTP layer makes of any 404
        return RunPodNotFound(f"{where}: not found (HTTP {status})", status)
    if isinstance(exc, UpstreamRateLimited):
        return RunPodRateLimited(f"{where}: rate limited ({words})", status, retry_after)
    if isinstance(exc, UpstreamOverloaded | UpstreamServerError):
        return RunPodServerError(f"{where}: RunPod failed ({words})", status, retry_after)
    return RunPodAPIError(f"{where}: RunPod rejected the request ({words})", status)


def _as_list(body: Any) -> list[dict[str, Any]]:
    """A list response, bare or wrapped ({"data": [...]} and the like)."""
    if isinstance(body, list):
        return [item for item in body if isinstance(item, dict)]
    if isinstance(body, dict):
        for key in _LIST_KEYS:
            value = body.get(key)
            if isinstance(value, list):
                return [item for item in value if isinstance(item, dict)]
    return []


def _as_dict(body: Any) -> dict[str, Any]:
    if isinstance(body, dict):
        inner = body.get("data")
        if isinstance(inner, dict) and "id" in inner and "id" not in body:
            return inner
        return body
    return {}
