"""A fake of RunPod's management REST API v2 on 127.0.0.1, recording every call.

Routes (under /v2): GET/POST /serverless, GET/PATCH /serverless/{id}, GET/POST /templates,
GET/PATCH /templates/{id}, GET/POST /network-volumes, GET/PATCH /network-volumes/{id}.
Bearer auth is required. PATCH merges top-level fields (a nested object sent whole replaces
the old one). Lists are bare JSON arrays.
"""

from __future__ import annotations

import copy
import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_KEY = "rpa_TESTKEY_0123456789abcdefSECRET"


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
    fail_next: list[int] = field(default_factory=list)
    fail_writes: int | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method in ("POST", "PATCH", "PUT", "DELETE")]

    def add_endpoint(self, **fields: Any) -> dict[str, Any]:
        record = {"id": self._new_id("ep"), **fields}
        self.endpoints[record["id"]] = record
        return record

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):04d}"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        for kind in ("serverless", "templates", "network-volumes"):
            app.router.add_get(f"/v2/{kind}", self._list)
            app.router.add_post(f"/v2/{kind}", self._create)
            app.router.add_get(f"/v2/{kind}/{{id}}", self._get)
            app.router.add_patch(f"/v2/{kind}/{{id}}", self._patch)
        return app

    def _store(self, request: web.Request) -> tuple[str, dict[str, dict[str, Any]]]:
        kind = request.path.split("/")[2]
        return kind, {
            "serverless": self.endpoints,
            "templates": self.templates,
            "network-volumes": self.volumes,
        }[kind]

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        request["body"] = body
        with self._lock:
            self.calls.append(
                Call(request.method, request.path, body, request.headers.get("Authorization"))
            )
            failure = self.fail_next.pop(0) if self.fail_next else None
            if failure is None and request.method in ("POST", "PATCH"):
                failure = self.fail_writes
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response(
                {"title": "Unauthorized", "status": 401, "detail": "invalid api key"}, status=401
            )
        if failure is not None:
            headers = {"Retry-After": "0"} if failure == 429 else {}
            return web.json_response(
                {"title": "Unavailable", "status": failure, "detail": "try again"},
                status=failure,
                headers=headers,
            )
        return await handler(request)

    async def _list(self, request: web.Request) -> web.Response:
        _, store = self._store(request)
        return web.json_response([copy.deepcopy(v) for v in store.values()])

    async def _get(self, request: web.Request) -> web.Response:
        _, store = self._store(request)
        record = store.get(request.match_info["id"])
        if record is None:
            return web.json_response({"title": "Not Found", "status": 404}, status=404)
        return web.json_response(copy.deepcopy(record))

    async def _create(self, request: web.Request) -> web.Response:
        kind, store = self._store(request)
        body = request["body"] or {}
        if not body.get("name"):
            return web.json_response(
                {"title": "Unprocessable", "status": 422, "detail": "name is required"}, status=422
            )
        prefix = {"serverless": "ep", "templates": "tpl", "network-volumes": "vol"}[kind]
        record = {"id": self._new_id(prefix), **copy.deepcopy(body)}
        if kind == "serverless":
            record["createdAt"] = "2026-01-01T00:00:00Z"
        store[record["id"]] = record
        return web.json_response(copy.deepcopy(record), status=201)

    async def _patch(self, request: web.Request) -> web.Response:
        _, store = self._store(request)
        record = store.get(request.match_info["id"])
        if record is None:
            return web.json_response({"title": "Not Found", "status": 404}, status=404)
        record.update(copy.deepcopy(request["body"] or {}))
        return web.json_response(copy.deepcopy(record))
