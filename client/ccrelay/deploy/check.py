"""Is the endpoint able to take jobs? RunPod scales idle endpoints down on its own.

RunPod lowers an endpoint's max workers to 2 after 3 days without requests (and emails), then to
0 after 7 days. At max 0 every job waits in the queue forever and nothing says why; raising max
workers again (``ccrelay deploy``, or one PATCH) restores it. :func:`check_endpoint` finds that
state and the PATCH that undoes it; ``ccrelay deploy --check`` prints it, and ``ccrelay
backends`` can call it too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from pydantic import SecretStr

from ccrelay.deploy.errors import DeployError, RunPodNotFound
from ccrelay.deploy.rest import DEFAULT_API_URL, RunPodRest

__all__ = ["EndpointCheck", "check_endpoint"]

DEFAULT_RESTORE_MAX = 3  # RunPod's own default for max workers


@dataclass(frozen=True)
class EndpointCheck:
    """The endpoint's scaling health, and how to restore it when RunPod cut it down."""

    found: bool
    endpoint_id: str | None
    name: str | None
    workers_min: int | None
    workers_max: int | None
    scaled_to_zero: bool
    reduced: bool
    restore_patch: dict[str, Any] | None
    restore_url: str | None
    message: str

    @property
    def ok(self) -> bool:
        return self.found and not self.scaled_to_zero and not self.reduced


async def check_endpoint(
    session: aiohttp.ClientSession,
    api_key: SecretStr,
    *,
    endpoint_id: str | None = None,
    name: str | None = None,
    desired_max: int | None = None,
    api_url: str = DEFAULT_API_URL,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rest: RunPodRest | None = None,
) -> EndpointCheck:
    """Look the endpoint up by id (or name) and report whether RunPod scaled it down.

    ``desired_max`` is the max workers it should have (serverless.yml's ``workers.max``); when
    given, a max below it is reported too (RunPod's 3-day cut to 2).
    """
    if endpoint_id is None and name is None:
        raise ValueError("check_endpoint needs endpoint_id or name")
    client = rest or RunPodRest(session, api_key, base_url=api_url, sleep=sleep)
    endpoint = await _find(client, endpoint_id, name)
    if endpoint is None:
        what = f"id {endpoint_id!r}" if endpoint_id else f"name {name!r}"
        return EndpointCheck(
            found=False,
            endpoint_id=endpoint_id,
            name=name,
            workers_min=None,
            workers_max=None,
            scaled_to_zero=False,
            reduced=False,
            restore_patch=None,
            restore_url=None,
            message=f"RunPod has no serverless endpoint with {what}; create it with `ccrelay deploy`",
        )

    ident = str(endpoint.get("id") or endpoint_id or "")
    label = f"endpoint {endpoint.get('name', name)!r} ({ident})"
    workers_min, workers_max = _workers(endpoint)
    target = max(desired_max or DEFAULT_RESTORE_MAX, 1)
    scaled_to_zero = workers_max == 0
    reduced = (
        not scaled_to_zero
        and desired_max is not None
        and workers_max is not None
        and workers_max < desired_max
    )
    patch: dict[str, Any] | None = None
    url = f"{client.base_url}/serverless/{ident}"
    if scaled_to_zero or reduced:
        patch = {"workers": {"min": min(workers_min or 0, target), "max": target}}
        how = (
            f"restore it with `ccrelay deploy` (serverless.yml sets workers.max), or "
            f"PATCH {url} {json.dumps(patch, separators=(',', ':'))}"
        )
        if scaled_to_zero:
            message = (
                f"{label} has max workers 0: RunPod sets it to 0 after 7 days without requests, "
                f"so jobs queue and never run; {how}"
            )
        else:
            message = (
                f"{label} has max workers {workers_max}, below the {desired_max} serverless.yml "
                f"asks for (RunPod lowers it to 2 after 3 idle days); {how}"
            )
    else:
        message = f"{label}: max workers {workers_max}, min workers {workers_min}; it can take jobs"
    return EndpointCheck(
        found=True,
        endpoint_id=ident,
        name=endpoint.get("name", name),
        workers_min=workers_min,
        workers_max=workers_max,
        scaled_to_zero=scaled_to_zero,
        reduced=reduced,
        restore_patch=patch,
        restore_url=url if patch else None,
        message=message,
    )


async def _find(
    client: RunPodRest, endpoint_id: str | None, name: str | None
) -> dict[str, Any] | None:
    if endpoint_id:
        try:
            return await client.get_endpoint(endpoint_id)
        except RunPodNotFound:
            return None
    found = [e for e in await client.list_endpoints() if e.get("name") == name]
    if len(found) > 1:
        raise DeployError(f"{len(found)} endpoints are named {name!r}; check one by its id instead")
    if not found:
        return None
    if found[0].get("id"):
        return await client.get_endpoint(str(found[0]["id"])) or found[0]
    return found[0]


def _workers(endpoint: dict[str, Any]) -> tuple[int | None, int | None]:
    workers = endpoint.get("workers")  # REST v2: {min, max, idleTimeout}
    low, high = (
        (workers.get("min"), workers.get("max")) if isinstance(workers, dict) else (None, None)
    )
    return (low if isinstance(low, int) else None, high if isinstance(high, int) else None)
