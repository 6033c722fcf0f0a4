"""`ccrelay deploy [serverless.yml] [--dry-run] [--check] [--api-url URL]`, as a coroutine.

Exit codes: 0 done (or nothing to do; --check: the endpoint can take jobs), 1 RunPod failed or
--check found the endpoint missing or scaled down, 2 serverless.yml or the environment is wrong.
Errors go to stderr as ``ccrelay: ...`` lines, as every command's do; so do warnings (an image
under a placeholder owner), before the plan.

``--dry-run`` needs neither a key nor the network: without them it prints the whole plan as if
nothing existed yet (every request, its body with secret values hidden) and says why the live
state was not compared ("no RUNPOD_API_KEY", "api.runpod.io unreachable: DNS lookup failed for
api.runpod.io"), and exits 0.
Nothing it prints or logs contains the API key or a secret env value: bodies are shown with
secret env values hidden, and RunPod's own error text is scrubbed by the HTTP layer.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import aiohttp
from pydantic import SecretStr

from ccrelay.deploy import API_URL_VARIABLE
from ccrelay.deploy.bodies import config_snippet, direct_use
from ccrelay.deploy.check import check_endpoint
from ccrelay.deploy.errors import (
    DeployError,
    RunPodAPIError,
    RunPodProtocolError,
    RunPodTransportError,
    ServerlessConfigError,
)
from ccrelay.deploy.planner import CurrentState, apply_plan, make_plan, read_state
from ccrelay.deploy.rest import DEFAULT_API_URL, RunPodRest
from ccrelay.deploy.spec import DeploySpec, load_spec

__all__ = ["API_URL_VARIABLE", "run_deploy"]


async def run_deploy(
    file: Path,
    *,
    environ: Mapping[str, str],
    out: TextIO,
    err: TextIO,
    dry_run: bool = False,
    check: bool = False,
    api_url: str | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: Callable[[], float] = random.random,
) -> int:
    try:
        deploy = load_spec(file, environ)
    except ServerlessConfigError as exc:
        print(f"ccrelay: config error: {exc}", file=err)
        return 2
    if not check:
        for warning in deploy.warnings:
            print(f"ccrelay: warning: {warning}", file=err)
    key = environ.get("RUNPOD_API_KEY", "").strip()
    base_url = api_url or environ.get(API_URL_VARIABLE) or DEFAULT_API_URL

    def say(line: str) -> None:
        print(line, file=out)

    if not key:
        if dry_run:
            return _offline_plan(deploy, base_url, "no RUNPOD_API_KEY", say)
        print(
            "ccrelay: RUNPOD_API_KEY is not set; fix: export a RunPod API key with read/write access "
            "to Serverless (console: Settings > API Keys), or see the plan with --dry-run",
            file=err,
        )
        return 2
    api_key = SecretStr(key)

    try:
        async with aiohttp.ClientSession() as session:
            rest = RunPodRest(
                session,
                api_key,
                base_url=base_url,
                sleep=sleep,
                rng=rng,
                secrets=deploy.secret_values,
            )
            if check:
                result = await check_endpoint(
                    session,
                    api_key,
                    name=deploy.spec.name,
                    desired_max=deploy.spec.workers.max,
                    rest=rest,
                )
                say(result.message)
                return 0 if result.ok else 1

            try:
                state = await read_state(rest, deploy)
            except (RunPodTransportError, RunPodAPIError, RunPodProtocolError) as exc:
                if not dry_run:
                    raise
                return _offline_plan(deploy, base_url, _unreadable(exc, base_url), say)
            plan = make_plan(deploy, state)
            for line in plan.describe(
                dry_run=dry_run, base_url=base_url, secret_keys=deploy.secret_keys
            ):
                say(line)
            if dry_run:
                say(f"dry run: nothing was changed ({plan.writes} write(s) planned)")
                endpoint_id = plan.endpoint.resource_id
            else:
                applied = await apply_plan(plan, rest)
                endpoint_id = applied.endpoint_id
                if plan.changed:
                    say(f"deployed endpoint {deploy.spec.name!r} ({endpoint_id})")
    except DeployError as exc:
        print(f"ccrelay: error: {exc}", file=err)
        return 1

    _snippet(deploy, endpoint_id, say)
    return 0


def _offline_plan(
    deploy: DeploySpec, base_url: str, reason: str, say: Callable[[str], None]
) -> int:
    """The whole plan as if nothing existed yet, and why the live state was not compared."""
    say(f"live state not compared: {reason}; the plan assumes nothing exists yet")
    plan = make_plan(deploy, CurrentState())
    for line in plan.describe(dry_run=True, base_url=base_url, secret_keys=deploy.secret_keys):
        say(line)
    say(f"dry run: nothing was changed ({plan.writes} write(s) planned)")
    _snippet(deploy, None, say)
    return 0


def _unreadable(exc: DeployError, base_url: str) -> str:
    host = urlsplit(base_url).hostname or base_url
    if isinstance(exc, RunPodTransportError):
        return f"{host} unreachable: {exc.reason}"
    return str(exc)


def _snippet(deploy: DeploySpec, endpoint_id: str | None, say: Callable[[str], None]) -> None:
    say("")
    say("# ccrelay config (the file LLM_BACKEND_CONFIG names) for this endpoint:")
    for line in config_snippet(deploy, endpoint_id).splitlines():
        say(line)
    say("# or Claude Code straight at the endpoint, without the gateway:")
    for line in direct_use(deploy, endpoint_id):
        say(f"#   {line}")
