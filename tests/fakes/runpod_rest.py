"""A fake of RunPod's management REST API v2 on 127.0.0.1 that refuses what RunPod refuses.

Source: RunPod's published OpenAPI spec (Frontdoor v2.9.0, ``api-reference-v2/openapi.json`` in
runpod/docs at a900806e253c4f8c16da27d1a4370e72456da4cb), of which
``runpod_rest_v2_schemas.json`` beside this file carries the schemas used here, verbatim (the
load-balancer ones included: ``EndpointType``, ``RequestCountScaling``,
``LoadBalancingRequestUrls``, and ``CreateEndpointRequest``'s if/then on ``LOAD_BALANCER``).

- Every POST and PATCH body is validated (``jsonschema``, draft 2020-12, as the spec declares
  with ``unevaluatedProperties: false``) against ``CreateEndpointRequest``,
  ``UpdateEndpointRequest``, ``CreateTemplateRequest``, ``UpdateTemplateRequest``,
  ``CreateNetworkVolumeRequest`` or ``UpdateNetworkVolumeRequest``. A body RunPod would refuse
  is answered 422 with an RFC 9457 problem document (``application/problem+json``: ``title``,
  ``status``, ``detail``, ``errors`` as in ``ErrorResponse``), and recorded in ``.rejected``.
- Replies have the shapes the spec gives (``Endpoint``, ``Template``, ``NetworkVolume``; lists
  wrapped as ``{"endpoints": [...]}``, ``{"templates": [...]}``, ``{"networkVolumes": [...]}``),
  with the spec's defaults filled in on create (``workers`` 0/3/10, ``timeout`` 300000,
  ``flashboot`` OFF, ``startSsh``/``startJupyter`` true, ...). Each reply is checked against
  its schema too, so the fake cannot drift from the spec.
- ``templateId`` on an endpoint create or PATCH resolves the template's container settings
  (image, args, disk, ports, env, registry) into the endpoint; body fields win, ``env`` is
  merged per key. An unknown template is 404, a pod template 422. The endpoint keeps no link:
  later template edits do not reach it, as the spec says.
- Endpoint ``type`` ``QUEUE`` or ``LOAD_BALANCER`` (``EndpointType``): a load-balanced create
  must scale on ``REQUEST_COUNT`` (the schema's if/then); a PATCH to ``QUEUE_DELAY`` on one is
  refused (400), since ``EndpointScaling`` says QUEUE_DELAY is "queue-based endpoints only" and
  the schema cannot see the stored type. Replies carry ``requestUrls`` for the type
  (``QueueBasedRequestUrls``, or ``LoadBalancingRequestUrls``: ``https://{id}.api.runpod.ai`` and
  its ``/ping``, or ``HEALTH_CHECK_PATH`` from the env), as the spec's examples do.
- ``idleTimeout`` with ``REQUEST_COUNT`` scaling on a *queue* endpoint is refused (400) and
  omitted from replies (``EndpointWorkers``: "Not applicable to queue-based endpoints scaling on
  requestCount"); a load-balanced endpoint keeps it (the spec's ``getEndpoint`` example).
- PATCH changes only the fields given; ``gpu`` is a partial update, ``workers`` merges its keys.
- ``GET /serverless/{id}/workers`` (``listEndpointWorkers``): the endpoint's active workers
  (``Worker``) and their ``summary`` by status, a roll-up of the list as ``WorkerSummary``
  says (``running + idle + initializing + throttled + unhealthy == total``). The workers come
  from an attached fake load balancer (`attach_balancer`: tests/fakes/runpod_balancer/, its
  live workers), else from the ``endpoint_workers`` knob (endpoint id -> ``Worker`` objects);
  a known endpoint with neither has none; an unknown one is 404.
- Bearer auth is required (401 problem otherwise).
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

API_KEY = "rpa_TESTKEY_0123456789abcdefSECRET"
_BODY = web.RequestKey("runpod_rest_body", Any)
_KIND = web.RequestKey("runpod_rest_kind", str)
SCHEMAS = Path(__file__).with_name("runpod_rest_v2_schemas.json")
_CONTAINER = ("image", "args", "disk", "ports", "env", "registry")
_KINDS = {
    "serverless": ("Endpoint", "endpoints", "ep"),
    "templates": ("Template", "templates", "tpl"),
    "network-volumes": ("NetworkVolume", "networkVolumes", "vol"),
}
_REQUESTS = {
    ("POST", "serverless"): "CreateEndpointRequest",
    ("PATCH", "serverless"): "UpdateEndpointRequest",
    ("POST", "templates"): "CreateTemplateRequest",
    ("PATCH", "templates"): "UpdateTemplateRequest",
    ("POST", "network-volumes"): "CreateNetworkVolumeRequest",
    ("PATCH", "network-volumes"): "UpdateNetworkVolumeRequest",
}


@cache
def _validator(name: str) -> Draft202012Validator:
    document = json.loads(SCHEMAS.read_text())
    registry = Registry().with_resource(
        "urn:runpod", Resource(contents=document, specification=DRAFT202012)
    )
    schema = {"$ref": f"urn:runpod#/components/schemas/{name}"}
    return Draft202012Validator(schema, registry=registry)


def schema_errors(name: str, body: Any) -> list[str]:
    """What RunPod's validator would say about `body` as a `name` (empty: accepted)."""
    errors = sorted(_validator(name).iter_errors(body), key=lambda e: list(e.absolute_path))
    return [
        f"$.{'.'.join(str(p) for p in e.absolute_path)}: {e.message}".replace("$.:", "$:")
        for e in errors
    ]


def problem(status: int, title: str, detail: str, errors: list[str] | None = None) -> web.Response:
    body: dict[str, Any] = {"title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return web.json_response(body, status=status, content_type="application/problem+json")


class WorkerSource(Protocol):
    """What `FakeRunPod.attach_balancer` takes: a fake load balancer."""

    endpoint_id: str

    def rest_workers(self) -> list[dict[str, Any]]: ...


@dataclass
class Call:
    method: str
    path: str
    body: Any
    authorization: str | None


@dataclass
class FakeRunPod:
    api_key: str = API_KEY
    api_url: str = ""
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    rejected: list[tuple[Call, list[str]]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    fail_writes: int | None = None
    endpoint_workers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    balancers: dict[str, WorkerSource] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method in ("POST", "PATCH", "PUT", "DELETE")]

    def add_endpoint(self, **fields: Any) -> dict[str, Any]:
        """An endpoint as GET shows it, with the spec's defaults for what `fields` leaves out."""
        record = self._endpoint_record({"type": "QUEUE", "scaling": _DEFAULT_SCALING, **fields})
        self.endpoints[record["id"]] = record
        return record

    def add_volume(self, **fields: Any) -> dict[str, Any]:
        record = {"id": self._new_id("vol"), "type": "STANDARD", **fields}
        self._check_reply("NetworkVolume", record)
        self.volumes[record["id"]] = record
        return record

    def attach_balancer(self, balancer: WorkerSource) -> None:
        """List `balancer`'s workers under its endpoint id (read at each request)."""
        self.balancers[balancer.endpoint_id] = balancer

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):04d}"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/v2/serverless/{id}/workers", self._workers)
        for kind in _KINDS:
            app.router.add_get(f"/v2/{kind}", self._list)
            app.router.add_post(f"/v2/{kind}", self._create)
            app.router.add_get(f"/v2/{kind}/{{id}}", self._get)
            app.router.add_patch(f"/v2/{kind}/{{id}}", self._patch)
        return app

    # -- plumbing -------------------------------------------------------------------------

    def _store(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            "serverless": self.endpoints,
            "templates": self.templates,
            "network-volumes": self.volumes,
        }[kind]

    @staticmethod
    def _check_reply(schema: str, record: dict[str, Any]) -> None:
        errors = schema_errors(schema, record)
        assert not errors, f"the fake answered a {schema} the spec does not allow: {errors}"

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read() if request.can_read_body else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return problem(400, "Bad Request", "request body is not valid JSON")
        request[_BODY] = body
        kind = request.path.split("/")[2]
        request[_KIND] = kind
        call = Call(request.method, request.path, body, request.headers.get("Authorization"))
        with self._lock:
            self.calls.append(call)
            failure = self.fail_next.pop(0) if self.fail_next else None
            if failure is None and request.method in ("POST", "PATCH"):
                failure = self.fail_writes
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return problem(401, "Unauthorized", "invalid api key")
        if failure is not None:
            headers = {"Retry-After": "0"} if failure == 429 else {}
            response = problem(failure, "Unavailable", "try again")
            response.headers.update(headers)
            return response
        schema = _REQUESTS.get((request.method, kind))
        if schema is not None:
            errors = schema_errors(schema, body if body is not None else {})
            if errors:
                self.rejected.append((call, errors))
                return problem(422, "Unprocessable Entity", "request validation failed", errors)
        return await handler(request)

    async def _list(self, request: web.Request) -> web.Response:
        kind = request[_KIND]
        schema, key, _ = _KINDS[kind]
        items = [copy.deepcopy(v) for v in self._store(kind).values()]
        for item in items:
            self._check_reply(schema, item)
        return web.json_response({key: items})

    async def _get(self, request: web.Request) -> web.Response:
        kind = request[_KIND]
        record = self._store(kind).get(request.match_info["id"])
        if record is None:
            return problem(404, "Not Found", f"{kind} {request.match_info['id']} not found")
        self._check_reply(_KINDS[kind][0], record)
        return web.json_response(copy.deepcopy(record))

    async def _workers(self, request: web.Request) -> web.Response:
        ident = request.match_info["id"]
        balancer = self.balancers.get(ident)
        if balancer is not None:
            workers = balancer.rest_workers()
        elif ident in self.endpoint_workers or ident in self.endpoints:
            workers = copy.deepcopy(self.endpoint_workers.get(ident, []))
        else:
            return problem(404, "Not Found", f"serverless {ident} not found")
        statuses = [w["status"] for w in workers]
        summary = {
            key.lower(): statuses.count(key)
            for key in ("RUNNING", "IDLE", "INITIALIZING", "THROTTLED", "UNHEALTHY")
        }
        reply = {"workers": workers, "summary": {**summary, "total": len(workers)}}
        reply["endpointVersion"] = 1
        self._check_reply("ListEndpointWorkersResponse", reply)
        return web.json_response(reply)

    async def _create(self, request: web.Request) -> web.Response:
        kind = request[_KIND]
        body = copy.deepcopy(request[_BODY])
        if kind == "serverless":
            resolved = self._resolve_template(body)
            if isinstance(resolved, web.Response):
                return resolved
            refused = _idle_timeout_refused(resolved)
            if refused is not None:
                return refused
            record = self._endpoint_record(resolved)
        elif kind == "templates":
            record = {
                "id": self._new_id("tpl"),
                "args": "",
                "disk": 10,
                "mounts": {},
                "ports": [],
                "env": {},
                "registry": None,
                "serverless": False,
                "public": False,
                "category": "NVIDIA",
                "startSsh": True,
                "startJupyter": True,
                "allowedCudaVersions": [],
                **body,
            }
        else:
            record = {"id": self._new_id("vol"), "type": "STANDARD", **body}
        self._check_reply(_KINDS[kind][0], record)
        self._store(kind)[record["id"]] = record
        return web.json_response(copy.deepcopy(record), status=201)

    async def _patch(self, request: web.Request) -> web.Response:
        kind = request[_KIND]
        record = self._store(kind).get(request.match_info["id"])
        if record is None:
            return problem(404, "Not Found", f"{kind} {request.match_info['id']} not found")
        body = copy.deepcopy(request[_BODY])
        if kind == "network-volumes" and body.get("size", record["size"]) < record["size"]:
            return problem(400, "Bad Request", "network volume storage cannot be reduced")
        updated = copy.deepcopy(record)
        if kind == "serverless":
            resolved = self._resolve_template(body)
            if isinstance(resolved, web.Response):
                return resolved
            for key, value in resolved.items():
                if key == "gpu":
                    updated["gpu"] = {**_GPU_DEFAULTS, **(updated.get("gpu") or {}), **value}
                elif key == "workers":
                    updated["workers"] = {**updated["workers"], **value}
                else:
                    updated[key] = value
            refused = _idle_timeout_refused(updated, patch=resolved) or _scaling_refused(updated)
            if refused is not None:
                return refused
            if _no_idle_timeout(updated):
                updated["workers"].pop("idleTimeout", None)
            updated["requestUrls"] = _request_urls(updated)
        else:
            updated.update(body)
        self._check_reply(_KINDS[kind][0], updated)
        record.clear()
        record.update(updated)
        return web.json_response(copy.deepcopy(record))

    # -- endpoint semantics ---------------------------------------------------------------

    def _resolve_template(self, body: dict[str, Any]) -> dict[str, Any] | web.Response:
        """The body with a `templateId`'s container settings spread into it."""
        template_id = body.pop("templateId", None)
        if template_id is None:
            return body
        template = self.templates.get(template_id)
        if template is None:
            return problem(404, "Not Found", f"template {template_id} not found")
        if not template.get("serverless"):
            return problem(422, "Unprocessable Entity", f"template {template_id} is not serverless")
        resolved = {k: copy.deepcopy(template[k]) for k in _CONTAINER if k in template}
        resolved["env"] = {**template.get("env", {}), **body.pop("env", {})}
        resolved.update(body)
        return resolved

    def _endpoint_record(self, body: dict[str, Any]) -> dict[str, Any]:
        workers = {"min": 0, "max": 3, "idleTimeout": 10, **body.pop("workers", {})}
        if _no_idle_timeout(body):
            workers.pop("idleTimeout", None)
        gpu = body.pop("gpu", None)
        record: dict[str, Any] = {
            "id": self._new_id("ep"),
            "dataCenterIds": [],
            "networkVolumes": [],
            "timeout": 300000,
            "flashboot": "OFF",
            "createdAt": "2026-12-01T00:00:00Z",
            **body,
            "workers": workers,
        }
        if gpu is not None:
            record["gpu"] = {**_GPU_DEFAULTS, **gpu}
        record["requestUrls"] = _request_urls(record)
        self._check_reply("Endpoint", record)
        return record


_DEFAULT_SCALING = {"type": "QUEUE_DELAY", "queueDelay": 4}
_GPU_DEFAULTS = {"count": 1, "allowedCudaVersions": [], "minCudaVersion": None}


def _no_idle_timeout(endpoint: dict[str, Any]) -> bool:
    """``EndpointWorkers.idleTimeout``: "Not applicable to queue-based endpoints scaling on
    `requestCount` — rejected on create/update and omitted from responses for that combination"."""
    scaling = endpoint.get("scaling", _DEFAULT_SCALING)
    return endpoint.get("type", "QUEUE") == "QUEUE" and scaling["type"] == "REQUEST_COUNT"


def _idle_timeout_refused(
    endpoint: dict[str, Any], patch: dict[str, Any] | None = None
) -> web.Response | None:
    sent = (patch if patch is not None else endpoint).get("workers", {})
    if _no_idle_timeout(endpoint) and "idleTimeout" in sent:
        return problem(
            400,
            "Bad Request",
            "workers.idleTimeout does not apply to a queue-based endpoint with REQUEST_COUNT scaling",
        )
    return None


def _scaling_refused(endpoint: dict[str, Any]) -> web.Response | None:
    """``EndpointScaling``: QUEUE_DELAY is for "queue-based endpoints only"."""
    if endpoint.get("type") == "LOAD_BALANCER" and endpoint["scaling"]["type"] == "QUEUE_DELAY":
        return problem(
            400, "Bad Request", "QUEUE_DELAY scaling applies to queue-based endpoints only"
        )
    return None


def _request_urls(endpoint: dict[str, Any]) -> dict[str, str]:
    """``EndpointRequestUrls`` for the endpoint's type, as the spec's examples spell them."""
    ident = endpoint["id"]
    if endpoint.get("type") == "LOAD_BALANCER":
        base = f"https://{ident}.api.runpod.ai"
        path = (endpoint.get("env") or {}).get("HEALTH_CHECK_PATH") or "/ping"
        return {"base": base, "health": base + path}
    base = f"https://api.runpod.ai/v2/{ident}"
    return {
        "run": f"{base}/run",
        "runSync": f"{base}/runsync",
        "status": f"{base}/status/{{job_id}}",
        "stream": f"{base}/stream/{{job_id}}",
        "cancel": f"{base}/cancel/{{job_id}}",
        "retry": f"{base}/retry/{{job_id}}",
        "purgeQueue": f"{base}/purge-queue",
        "health": f"{base}/health",
    }
