"""What a process needs to send requests, built once at an entry point and closed once.

The CLI commands and the gateway each build one `Runtime`: the resolved config, the process's
single aiohttp session, the backend factory, the failover router and the attempt observer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from types import TracebackType

import aiohttp

from client.backend import AttemptObserver
from client.factory import BackendFactory, load_client_config, new_session, proxy_configured
from client.registry import BackendRegistry
from client.retry import Sleep
from client.router import Router
from config.models import CcrelayConfig


class Runtime:
    def __init__(
        self,
        config: CcrelayConfig,
        session: aiohttp.ClientSession,
        *,
        registry: BackendRegistry | None = None,
        observer: AttemptObserver | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.config = config
        self.session = session
        self.observer = observer
        self.factory = BackendFactory(
            config, session, registry=registry, observer=observer, sleep=sleep
        )
        self.router = Router(self.factory, **({"clock": clock} if clock else {}))

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str],
        *,
        registry: BackendRegistry | None = None,
        observer: AttemptObserver | None = None,
    ) -> Runtime:
        """Must run inside the event loop (the session binds to it)."""
        registry = registry or BackendRegistry()
        config = load_client_config(environ, registry)
        session = new_session(trust_env=proxy_configured(environ))
        return cls(config, session, registry=registry, observer=observer)

    async def aclose(self) -> None:
        await self.factory.aclose()
        await self.session.close()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
