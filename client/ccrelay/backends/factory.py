"""Build the configured backends, sharing one aiohttp session among them."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from ccrelay.backends.base import Backend
from ccrelay.backends.registry import BackendRegistry
from ccrelay.errors import UnknownBackendError
from ccrelay.http.retry import Sleep
from ccrelay.latency.observer import AttemptObserver
from ccrelay_config.loader import IGNORED_CONFIG_NOTE, load_config
from ccrelay_config.models import CcrelayConfig


def load_client_config(
    environ: Mapping[str, str], registry: BackendRegistry | None = None
) -> CcrelayConfig:
    """`config.load_config` fed by the backend registry: the entry points' settings models."""
    registry = registry or BackendRegistry()
    return load_config(environ, registry.settings_for, registry.known_types)


_PROXY_VARIABLES = (
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "https_proxy",
    "http_proxy",
    "all_proxy",
)


def proxy_configured(environ: Mapping[str, str]) -> bool:
    return any(environ.get(name) for name in _PROXY_VARIABLES)


def new_session(limit: int = 100, *, trust_env: bool = False) -> aiohttp.ClientSession:
    """The process's one client session. Keep-alive pools connections per provider host.

    `trust_env` (proxy variables, ~/.netrc) makes aiohttp look both up in a worker thread on
    every request, two thread hops each time; turn it on only where a proxy is configured. No
    cookie jar: no provider API relies on cookies, and a jar is consulted on every request.
    """
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=True,
        trust_env=trust_env,
        cookie_jar=aiohttp.DummyCookieJar(),  # APIs set no cookies we want; skips a lookup per call
    )


class BackendFactory:
    def __init__(
        self,
        config: CcrelayConfig,
        session: aiohttp.ClientSession,
        *,
        registry: BackendRegistry | None = None,
        observer: AttemptObserver | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.session = session
        self.registry = registry or BackendRegistry()
        self.observer = observer
        self._sleep = sleep
        self._rng = rng
        self._built: dict[str, Backend[Any]] = {}

    def get(self, name: str) -> Backend[Any]:
        if name in self._built:
            return self._built[name]
        settings = self.config.backends.get(name)
        if settings is None:
            hint = IGNORED_CONFIG_NOTE if self.config.ignored_file else ""
            raise UnknownBackendError(name, list(self.config.backends), hint)
        cls = self.registry.backend_class(settings.type)
        if cls is None:  # the loader checked types; only a changed registry gets here
            raise UnknownBackendError(settings.type, self.registry.known_types())
        backend = cls(
            name, settings, self.session, observer=self.observer, sleep=self._sleep, rng=self._rng
        )
        self._built[name] = backend
        return backend

    def all(self) -> list[Backend[Any]]:
        return [self.get(name) for name in self.config.backends]

    async def aclose(self) -> None:
        for backend in self._built.values():
            await backend.aclose()
        self._built.clear()
