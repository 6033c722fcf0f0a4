"""`ccrelay backends`: each configured backend, its endpoint, model, health and circuit state.

Health checks (`Backend.health`, a ``GET /models`` upstream) run concurrently, each bounded by
``--timeout``. Circuit breakers live in the process that sends requests: this command's own are
always closed, so ``--gateway URL`` asks a running gateway (``GET /health``) for its states.
No key is ever printed: endpoints are shown without any userinfo, settings without ``api_key``.

A ``runpod`` backend with an ``endpoint_id`` is also looked up in RunPod's REST API (same key;
base URL from ``$CCRELAY_RUNPOD_API_URL`` as for ``ccrelay deploy``) with
`ccrelay.deploy.check_endpoint`: RunPod cuts an endpoint unused for 7 days to max workers 0, after
which jobs queue forever while its health check still answers. The verdict is shown beside the
health result (``scaling`` in ``--json``), with how to restore it.

Exit codes: 0 every backend answered its health check (and RunPod has every checked endpoint,
not cut down), 1 otherwise, 2 bad config.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ccrelay.cli._common import EXIT_BACKEND, EXIT_OK, environ, run_command
from ccrelay.errors import CcrelayError

if TYPE_CHECKING:
    import aiohttp

    from ccrelay.backends.base import Backend
    from ccrelay.backends.types import HealthReport
    from ccrelay_config.models import CcrelayConfig

THIS_PROCESS = "this process"
_UNKNOWN = "unknown"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "backends",
        help="list the configured backends with their health and circuit state",
        description=(
            "For each configured backend: type, endpoint, model, a live health check and the "
            "circuit state (from a running gateway with --gateway). Exits 1 when a health "
            "check fails."
        ),
    )
    parser.add_argument(
        "--gateway",
        metavar="URL",
        help="a running gateway (e.g. http://127.0.0.1:8082) to read circuit states from",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds each health check (and the gateway query) may take (default: 10)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class Circuits:
    states: dict[str, str]
    source: str
    problem: str | None = None


def run(args: argparse.Namespace) -> int:
    env = environ()
    return run_command(args, lambda: _backends(args, env))


async def _backends(args: argparse.Namespace, env: dict[str, str]) -> int:
    import asyncio

    import orjson

    from ccrelay.runtime import Runtime

    timeout = max(0.1, float(args.timeout))
    async with Runtime.from_environ(env) as runtime:
        config = runtime.config
        names = list(config.backends)
        built: dict[str, Backend[Any] | CcrelayError] = {}
        for name in names:
            try:
                built[name] = runtime.factory.get(name)
            except CcrelayError as exc:
                built[name] = exc
        reports, scalings, circuits = await asyncio.gather(
            asyncio.gather(*(_check(name, built[name], timeout) for name in names)),
            asyncio.gather(
                *(
                    runpod_scaling(runtime.session, config.backends[name], env, timeout)
                    for name in names
                )
            ),
            _circuits(runtime.session, args.gateway, env, timeout),
        )
        models = await asyncio.gather(
            *(
                _model(built[name], report.ok, timeout)
                for name, report in zip(names, reports, strict=True)
            )
        )
    chain = config.chain()
    rows = [
        {
            **_row(
                name, config.backends[name], built[name], report, scaling, circuits, config, chain
            ),
            **model,
        }
        for name, report, scaling, model in zip(names, reports, scalings, models, strict=True)
    ]
    if args.json:
        payload = {
            "source": config.source,
            "multi_backend": config.multi_backend_enabled,
            "active": config.active,
            "chain": chain,
            "circuits_from": circuits.source,
            "circuits_problem": circuits.problem,
            "backends": rows,
        }
        sys.stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _print_table(rows, config.source, chain)
    if circuits.problem:
        print(f"ccrelay: circuit states unknown: {circuits.problem}", file=sys.stderr)
    healthy = all(row["health"]["ok"] for row in rows)
    cut = any(row["scaling"] is not None and row["scaling"]["ok"] is False for row in rows)
    return EXIT_OK if healthy and not cut else EXIT_BACKEND


async def runpod_scaling(
    session: aiohttp.ClientSession, settings: Any, env: Mapping[str, str], limit_s: float
) -> dict[str, Any] | None:
    """RunPod's view of a ``runpod`` backend's endpoint (max workers 0?), or None for others.

    ``ok`` is None when the REST API could not be asked (no key, unreachable, timed out).
    """
    import asyncio

    endpoint_id = getattr(settings, "endpoint_id", None)
    if settings.type != "runpod" or not endpoint_id:
        return None
    # ccrelay.deploy is imported here, not at the top: only this command needs it.
    from ccrelay.deploy import API_URL_VARIABLE, DEFAULT_API_URL, check_endpoint
    from ccrelay.deploy.errors import DeployError

    def unknown(detail: str) -> dict[str, Any]:
        return {
            "ok": None,
            "found": None,
            "endpoint_id": endpoint_id,
            "scaled_to_zero": None,
            "detail": detail,
        }

    api_key = settings.api_key
    if api_key is None:
        return unknown("not checked: no api_key to ask RunPod's REST API with")
    api_url = env.get(API_URL_VARIABLE, "").strip() or DEFAULT_API_URL
    try:
        async with asyncio.timeout(limit_s):
            check = await check_endpoint(session, api_key, endpoint_id=endpoint_id, api_url=api_url)
    except TimeoutError:
        return unknown(f"RunPod's REST API did not answer within {limit_s:g} s")
    except DeployError as exc:
        return unknown(f"cannot ask RunPod's REST API: {exc}")  # scrubbed by ccrelay.http
    return {
        "ok": check.ok,
        "found": check.found,
        "endpoint_id": endpoint_id,
        "scaled_to_zero": check.scaled_to_zero,
        "workers_min": check.workers_min,
        "workers_max": check.workers_max,
        "restore_url": check.restore_url,
        "restore_patch": check.restore_patch,
        "detail": check.message,
    }


async def _model(
    backend: Backend[Any] | CcrelayError, healthy: bool, limit_s: float
) -> dict[str, str | None]:
    """The model a request would get: ``model_source`` says whether the config named it, the
    backend picks it from its catalog (Cerebras: the pick is shown), or the request's own
    Claude model name is sent on."""
    if isinstance(backend, CcrelayError):
        return {"model_picked": None, "model_source": None}
    if backend.settings.model:
        return {"model_picked": None, "model_source": "config"}
    if not getattr(backend, "discovers_model", False):
        return {"model_picked": None, "model_source": "request"}
    if not healthy:  # its catalog did not answer: nothing to pick from now
        return {"model_picked": None, "model_source": "catalog"}
    import asyncio

    from ccrelay.backends.types import RequestOptions

    try:
        async with asyncio.timeout(limit_s):
            picked = await backend.choose_model({}, RequestOptions())
    except (CcrelayError, TimeoutError):
        picked = None
    return {"model_picked": picked or None, "model_source": "catalog"}


async def _check(name: str, backend: Backend[Any] | CcrelayError, limit_s: float) -> HealthReport:
    from ccrelay.backends.types import HealthReport

    if isinstance(backend, CcrelayError):
        return HealthReport(name, False, backend.message, 0.0)
    return await backend.checked_health(limit_s)


async def _circuits(
    session: aiohttp.ClientSession, gateway: str | None, env: dict[str, str], limit_s: float
) -> Circuits:
    import asyncio

    import aiohttp
    import orjson

    from ccrelay.http.words import describe_connection_error, describe_os_error

    if not gateway:
        return Circuits({}, THIS_PROCESS)
    url = gateway.rstrip("/") + "/health"
    source = f"gateway {public_url(gateway.rstrip('/'))}"
    headers = {"Accept": "application/json"}
    token = env.get("CCRELAY_AUTH_TOKEN", "").strip()
    if token:
        headers["x-api-key"] = token
    try:
        async with (
            asyncio.timeout(limit_s),
            session.get(url, headers=headers) as response,
        ):
            body = await response.read()
            status = response.status
    except TimeoutError:
        return Circuits({}, source, f"{source} did not answer within {limit_s:g} s")
    except aiohttp.ClientConnectorError as exc:
        return Circuits({}, source, f"cannot reach {source}: {describe_os_error(exc.os_error)}")
    except aiohttp.ClientError as exc:
        host = urlsplit(gateway).netloc or gateway
        return Circuits({}, source, describe_connection_error(exc, host))
    try:
        data = orjson.loads(body)
        states = {
            str(name): str(entry["circuit"])
            for name, entry in data["backends"].items()
            if isinstance(entry, dict) and "circuit" in entry
        }
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return Circuits({}, source, f"{source} answered HTTP {status} without backend states")
    return Circuits(states, source)


def _row(
    name: str,
    settings: Any,
    backend: Backend[Any] | CcrelayError,
    report: HealthReport,
    scaling: dict[str, Any] | None,
    circuits: Circuits,
    config: CcrelayConfig,
    chain: list[str],
) -> dict[str, Any]:
    from_gateway = circuits.source != THIS_PROCESS
    circuit = circuits.states.get(name, _UNKNOWN) if from_gateway else "closed"
    return {
        "name": name,
        "type": settings.type,
        "endpoint": _endpoint(settings, backend),
        "model": settings.model,
        "models": dict(settings.models),
        "active": name == config.active,
        "in_chain": name in chain,
        "health": {
            "ok": report.ok,
            "detail": report.detail,
            "latency_ms": round(report.latency_ms, 1),
        },
        "scaling": scaling,
        "circuit": circuit,
        "circuit_from": circuits.source,
    }


def _endpoint(settings: Any, backend: Backend[Any] | CcrelayError) -> str | None:
    endpoint = backend.endpoint if not isinstance(backend, CcrelayError) else None
    url = endpoint or settings.base_url
    return public_url(url) if url else None


def public_url(url: str) -> str:
    """`url` without any user:password part."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _model_cell(row: dict[str, Any]) -> str:
    if row["model"]:
        return str(row["model"])
    if row.get("model_source") == "catalog":
        picked = row.get("model_picked")
        return f"{picked} (from its catalog)" if picked else "(picked from its catalog)"
    return "(the request's)"


def _print_table(rows: list[dict[str, Any]], source: str, chain: list[str]) -> None:
    print(f"# source: {source}")
    print(f"# request order: {' -> '.join(chain)}")
    header = ("NAME", "TYPE", "ENDPOINT", "MODEL", "HEALTH", "CIRCUIT")
    lines = [header]
    for row in rows:
        health = row["health"]
        verdict = "ok" if health["ok"] else "FAIL"
        scaling = row["scaling"]
        note = ""
        if scaling is not None:
            state = {True: "ok", False: "SCALED DOWN", None: "unknown"}[scaling["ok"]]
            if scaling["scaled_to_zero"]:
                state = "MAX WORKERS 0"
            elif scaling["found"] is False:
                state = "NOT FOUND"
            note = f"; runpod endpoint: {state}"
        circuit = row["circuit"]
        if row["circuit_from"] == THIS_PROCESS:
            circuit = f"{circuit} ({THIS_PROCESS})"
        lines.append(
            (
                row["name"] + (" *" if row["active"] else ""),
                row["type"],
                row["endpoint"] or "-",
                _model_cell(row),
                f"{verdict}: {health['detail']} ({health['latency_ms']:.0f} ms){note}",
                circuit,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        print("  ".join([*cells, line[-1]]).rstrip())
    for row in rows:
        scaling = row["scaling"]
        if scaling is not None and scaling["ok"] is not True:
            print(f"{row['name']}: {scaling['detail']}")
