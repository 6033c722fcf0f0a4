"""A small client for RunPod's management REST API (v2): serverless endpoints, templates and
network volumes, on an injected aiohttp session.

* Base URL ``https://api.runpod.io/v2`` (overridable: tests point it at a loopback fake);
  paths ``/serverless``, ``/templates``, ``/network-volumes``; bearer auth.
* Retries on 429 / 5xx / connection errors with exponential backoff (Retry-After first) and an
  injected ``sleep``. GET and PATCH are idempotent and retried on all of those; POST (create) is
  retried only on 429, so a create that may have happened is never sent twice (rerunning
  ``ccrelay deploy`` finds it by name instead).
* The API key is held as a SecretStr, put in the Authorization header at request time, and
  scrubbed (with every other secret handed in) from any error text RunPod sends back.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from pydantic import SecretStr

from ccrelay.deploy.errors import (
    RunPodAPIError,
    RunPodAuthError,
    RunPodNotFound,
    RunPodRateLimited,
    RunPodServerError,
    RunPodTransportError,
)
from ccrelay.http.words import describe_connection_error

__all__ = ["DEFAULT_API_URL", "RunPodRest", "scrub"]

log = logging.getLogger("ccrelay.ccrelay.deploy")

DEFAULT_API_URL = "https://api.runpod.io/v2"
_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)
_LIST_KEYS = ("data", "items", "endpoints", "templates", "networkVolumes", "results")


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (4+ characters) replaced by ***."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class RunPodRest:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_key: SecretStr,
        *,
        base_url: str = DEFAULT_API_URL,
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        secrets: Iterable[str] = (),
    ) -> None:
        self._session = session
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._secrets = (api_key.get_secret_value(), *secrets)

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
                return await self._once(method, path, body)
            except (RunPodRateLimited, RunPodServerError, RunPodTransportError) as exc:
                retry_ok = method != "POST" or isinstance(exc, RunPodRateLimited)
                if not retry_ok or attempt >= self._max_attempts:
                    raise
                delay = self._delay(attempt, exc)
                log.info("%s %s: %s; retrying in %.1f s", method, path, exc, delay)
                await self._sleep(delay)

    def _delay(self, attempt: int, exc: Exception) -> float:
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, (int, float)):
            return min(float(retry_after), 30.0)
        factor: int = 2 ** (attempt - 1)
        return min(self._max_backoff, self._backoff * factor)

    async def _once(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        headers = {
            "Authorization": f"Bearer {self._api_key.get_secret_value()}",
            "Accept": "application/json",
        }
        try:
            async with self._session.request(
                method, f"{self.base_url}{path}", json=body, headers=headers, timeout=_TIMEOUT
            ) as response:
                text = await response.text()
                log.debug("%s %s -> %d", method, path, response.status)
                if response.status >= 400:
                    raise self._error(method, path, response, text)
        except (aiohttp.ClientError, TimeoutError) as exc:
            host = urlsplit(self.base_url).netloc
            reason = describe_connection_error(exc, host)
            raise RunPodTransportError(f"{method} {path}: {reason}", reason) from None
        if not text.strip():
            return {}
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise RunPodAPIError(
                f"{method} {path}: RunPod answered HTTP {response.status} with a body that is not JSON",
                response.status,
            ) from None

    def _error(
        self, method: str, path: str, response: aiohttp.ClientResponse, text: str
    ) -> RunPodAPIError:
        status = response.status
        detail = scrub(_detail(text), self._secrets)
        where = f"{method} {path}"
        if status in (401, 403):
            return RunPodAuthError(
                f"{where}: RunPod refused the API key (HTTP {status}: {detail}); check that "
                "RUNPOD_API_KEY is a current key with read/write access to Serverless",
                status,
            )
        if status == 404:
            return RunPodNotFound(f"{where}: not found (HTTP 404: {detail})", status)
        retry_after = _retry_after(response.headers.get("Retry-After"))
        if status == 429:
            return RunPodRateLimited(f"{where}: rate limited (HTTP 429)", status, retry_after)
        if status >= 500:
            return RunPodServerError(
                f"{where}: RunPod failed (HTTP {status}: {detail})", status, retry_after
            )
        return RunPodAPIError(
            f"{where}: RunPod rejected the request (HTTP {status}: {detail})", status
        )


def _detail(text: str) -> str:
    """The human part of an error body (problem+json ``detail`` / ``title``, or ``error``)."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return text.strip()[:300] or "no details"
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("title", "detail", "error", "message") if body.get(k)]
        errors = body.get("errors")
        if isinstance(errors, list):
            parts.extend(json.dumps(e, separators=(",", ":"))[:200] for e in errors[:5])
        if parts:
            return "; ".join(parts)[:600]
    return text.strip()[:300]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


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
