"""`ccrelay deploy [serverless.yml] [--dry-run] [--check] [--api-url URL]`, as a coroutine.

Exit codes: 0 done (or nothing to do; --check: the endpoint can take jobs), 1 RunPod failed or
--check found the endpoint missing or scaled down, 2 serverless.yml or the environment is wrong.
Nothing it prints or logs contains the API key or a secret env value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TextIO

import aiohttp
from pydantic import SecretStr

from ccrelay.deploy import API_URL_VARIABLE
from ccrelay.deploy.check import check_endpoint
from ccrelay.deploy.errors import DeployError, ServerlessConfigError
from ccrelay.deploy.planner import apply_plan, config_snippet, make_plan, read_state
from ccrelay.deploy.rest import DEFAULT_API_URL, RunPodRest, scrub
from ccrelay.deploy.spec import load_spec

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
) -> int:
    try:
        deploy = load_spec(file, environ)
    except ServerlessConfigError as exc:
        print(f"error: {exc}", file=err)
        return 2
    key = environ.get("RUNPOD_API_KEY", "").strip()
    if not key:
        print(
            "error: RUNPOD_API_KEY is not set; fix: export a RunPod API key with read/write access "
            "to Serverless (console: Settings > API Keys)",
            file=err,
        )
        return 2
    api_key = SecretStr(key)
    base_url = api_url or environ.get(API_URL_VARIABLE) or DEFAULT_API_URL
    secrets = (key, *deploy.secret_values)

    def say(line: str = "") -> None:
        print(scrub(line, secrets), file=out)

    try:
        async with aiohttp.ClientSession() as session:
            rest = RunPodRest(
                session, api_key, base_url=base_url, sleep=sleep, secrets=deploy.secret_values
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

            state = await read_state(rest, deploy)
            plan = make_plan(deploy, state)
            for line in plan.describe(dry_run=dry_run):
                say(line)
            if dry_run:
                say("dry run: nothing was changed")
                endpoint_id = plan.endpoint.resource_id
            else:
                applied = await apply_plan(plan, rest)
                endpoint_id = applied.endpoint_id
                if plan.changed:
                    say(f"deployed endpoint {deploy.spec.name!r} ({endpoint_id})")
    except DeployError as exc:
        print(scrub(f"error: {exc}", secrets), file=err)
        return 1

    say()
    say("# ccrelay config (the file LLM_BACKEND_CONFIG names) for this endpoint:")
    for line in config_snippet(endpoint_id, deploy.spec.model).splitlines():
        say(line)
    return 0
