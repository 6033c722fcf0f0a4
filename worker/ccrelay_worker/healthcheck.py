"""`python -m ccrelay_worker.healthcheck`: the image's Docker HEALTHCHECK.

Healthy when Ollama answers GET /api/version on its loopback address and, in HTTP mode
(``CCRELAY_WORKER_MODE=http``), when the worker's own GET /health answers 200. A short-lived
process with no event loop, so the standard library's blocking client is the right tool.
Exit 0 healthy, 1 unhealthy (the reason on stderr).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping

from ccrelay_worker.errors import WorkerConfigError
from ccrelay_worker.settings import WorkerSettings

__all__ = ["check", "main"]


def check(environ: Mapping[str, str], timeout: float = 3.0) -> str | None:
    """None when healthy, else why not."""
    try:
        settings = WorkerSettings.from_env(environ)
    except WorkerConfigError as exc:
        return str(exc)
    urls = [f"{settings.ollama_url}/api/version"]
    if settings.mode == "http":
        host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::", "") else settings.http_host
        urls.append(f"http://{host}:{settings.http_port}/health")
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                if response.status != 200:
                    return f"GET {url} answered HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return f"GET {url} answered HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            return f"GET {url} failed: {exc}"
    return None


def main(environ: Mapping[str, str] | None = None) -> int:
    problem = check(os.environ if environ is None else environ)
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
