"""The worker's boot settings, read once from the environment at the entry point.

Every variable is optional; the defaults run Qwen3-Coder 30B from a RunPod network volume, with
Ollama sized for the GPU found (:mod:`ccrelay_worker.engine_sizing`). A bad value raises
:class:`worker.errors.WorkerConfigError` naming the variable and the fix.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from ccrelay_wire.defaults import DEFAULT_MODEL
from ccrelay_wire.inbound import InboundLimits
from ccrelay_worker.engine_sizing import EngineSizing, resolve_sizing
from ccrelay_worker.errors import WorkerConfigError

__all__ = [
    "DEFAULT_MODEL",
    "WorkerSettings",
    "http_exposure",
    "inbound_limits",
    "is_loopback",
    "normalize_model_name",
]

HTTP_IDLE_TIMEOUT_S = 905.0
"""HTTP mode keeps an idle connection longer than the gateway's 75 s: its callers are often
proxies that pool connections (Cloudflare, which RunPod's proxy answers through, reuses one up
to 900 s idle: developers.cloudflare.com/fundamentals/reference/connection-limits), and a
proxy that reuses a connection the worker is closing fails that request."""

# HTTP mode's inbound limits (ccrelay_wire.inbound; docs/deploy.md, "Inbound limits").
INBOUND_VARIABLES = {
    "header_timeout_s": "CCRELAY_HTTP_HEADER_TIMEOUT",
    "body_timeout_s": "CCRELAY_HTTP_BODY_TIMEOUT",
    "body_gap_s": "CCRELAY_HTTP_BODY_GAP",
    "idle_timeout_s": "CCRELAY_HTTP_IDLE_TIMEOUT",
    "max_pending": "CCRELAY_HTTP_MAX_PENDING",
}

DEFAULT_VOLUME_ROOT = "/runpod-volume"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# RunPod sets these in every serverless worker and pod; the runpod SDK reads them
# (runpod-python 1.12: serverless/modules/worker_state.py reads RUNPOD_POD_ID,
# rp_job.py RUNPOD_WEBHOOK_GET_JOB, rp_fastapi.py and rp_logger.py RUNPOD_ENDPOINT_ID).
RUNPOD_MARKERS = ("RUNPOD_POD_ID", "RUNPOD_ENDPOINT_ID", "RUNPOD_WEBHOOK_GET_JOB")


def normalize_model_name(name: str) -> str:
    """Ollama's canonical name: a model without a tag means ``:latest``."""
    name = name.strip()
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


class WorkerSettings(BaseModel):
    """Everything the boot needs; built by :meth:`from_env` and passed down."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = DEFAULT_MODEL
    models_dir: Path
    models_on_volume: bool = Field(description="the models dir is on a mounted network volume")
    volume_root: Path = Path(DEFAULT_VOLUME_ROOT)
    on_runpod: bool = Field(False, description="RunPod started this worker (its env vars are set)")
    allow_no_volume: bool = False
    ollama_host: str = "127.0.0.1"
    ollama_port: int = Field(11434, ge=1, le=65535)
    engine_command: tuple[str, ...] = ("ollama", "serve")
    ready_timeout_s: float = Field(120.0, gt=0)
    stop_grace_s: float = Field(10.0, ge=0)
    pull_lock_timeout_s: float = Field(3600.0, gt=0)
    pull_lock_stale_s: float = Field(120.0, gt=0)
    pull_log_interval_s: float = Field(10.0, ge=0)
    warm: bool = True
    warm_timeout_s: float = Field(900.0, gt=0)
    keep_alive: str | int = -1
    mode: Literal["serverless", "http"] = "serverless"
    http_host: str = "0.0.0.0"
    http_port: int = Field(8000, ge=1, le=65535)
    health_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="a second port that answers only /ping (RunPod's PORT_HEALTH when it "
        "differs from PORT); None: /ping is on http_port",
    )
    http_drain_s: float = Field(30.0, ge=0)
    sizing: EngineSizing = Field(
        default_factory=lambda: resolve_sizing({}, DEFAULT_MODEL, detect=lambda _path: None),
        description="Ollama's context, parallel slots and KV cache for this GPU",
    )
    http_inbound: InboundLimits = Field(
        default_factory=lambda: InboundLimits(idle_timeout_s=HTTP_IDLE_TIMEOUT_S)
    )

    def volume_refusal(self) -> str | None:
        """Why this worker must not boot without a volume, or None.

        On RunPod, a worker whose models are not on a network volume pulls the whole model onto
        its container disk (20 GB, wiped with the worker) on every cold start, and looks fine
        while doing it; so that is refused unless the user says it is what they want.
        """
        if self.models_on_volume or not self.on_runpod or self.allow_no_volume:
            return None
        return (
            f"no network volume is mounted at {self.volume_root}, so the model would be pulled "
            f"into {self.models_dir} on the container disk on every cold start; attach a network "
            "volume to the endpoint (serverless.yml `network_volume`), or set "
            "CCRELAY_ALLOW_NO_VOLUME=true to run without one"
        )

    @property
    def ollama_url(self) -> str:
        host = f"[{self.ollama_host}]" if ":" in self.ollama_host else self.ollama_host
        return f"http://{host}:{self.ollama_port}"

    @property
    def model_name(self) -> str:
        return normalize_model_name(self.model)

    def engine_environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """The child's environment: ours plus where to listen, where the models live, and the
        engine sizing (docs/engine-sizing.md) for what ``base`` does not set itself.

        OLLAMA_NOPRUNE=1 because `ollama serve` deletes blobs no manifest references when it
        starts; on a shared volume that would delete the half-pulled blobs of another worker.
        """
        env = dict(base)
        env["OLLAMA_HOST"] = f"{self.ollama_host}:{self.ollama_port}"
        env["OLLAMA_MODELS"] = str(self.models_dir)
        env.setdefault("OLLAMA_NOPRUNE", "1")
        for name, value in self.sizing.environment().items():
            if not (env.get(name) or "").strip():
                env[name] = value
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WorkerSettings:
        volume_root = Path(environ.get("CCRELAY_VOLUME_ROOT") or DEFAULT_VOLUME_ROOT)
        explicit = environ.get("OLLAMA_MODELS")
        if explicit:
            models_dir = Path(explicit).expanduser()
        elif volume_root.is_dir():
            models_dir = volume_root / "ollama"
        else:
            state = Path(environ.get("CCRELAY_STATE_DIR") or "~/.ccrelay").expanduser()
            models_dir = state / "ollama"
        mounted = _volume_mounted(volume_root, explicit=bool(environ.get("CCRELAY_VOLUME_ROOT")))
        on_volume = mounted and _is_relative_to(models_dir, volume_root)

        host, port = _ollama_address(environ.get("OLLAMA_HOST"))
        command = _command(environ.get("CCRELAY_OLLAMA_COMMAND"))
        mode = (environ.get("CCRELAY_WORKER_MODE") or "serverless").strip().lower()
        if mode not in ("serverless", "http"):
            raise WorkerConfigError(
                "CCRELAY_WORKER_MODE", f"unknown mode {mode!r}", "use 'serverless' or 'http'"
            )
        # RunPod's load balancer tells the worker where to listen with PORT, and where its
        # health check (/ping) knocks with PORT_HEALTH (runpod/docs serverless/load-balancing).
        http_port = int(
            _number(
                environ,
                "CCRELAY_HTTP_PORT" if environ.get("CCRELAY_HTTP_PORT") else "PORT",
                8000,
                positive=True,
            )
        )
        health_port = int(_number(environ, "PORT_HEALTH", http_port, positive=True))
        return cls(
            model=(environ.get("CCRELAY_MODEL") or DEFAULT_MODEL).strip(),
            models_dir=models_dir,
            models_on_volume=on_volume,
            volume_root=volume_root,
            on_runpod=any(environ.get(name) for name in RUNPOD_MARKERS),
            allow_no_volume=_flag(environ, "CCRELAY_ALLOW_NO_VOLUME", False),
            ollama_host=host,
            ollama_port=port,
            engine_command=command,
            ready_timeout_s=_number(environ, "CCRELAY_OLLAMA_READY_TIMEOUT", 120.0, positive=True),
            stop_grace_s=_number(environ, "CCRELAY_OLLAMA_STOP_GRACE", 10.0),
            pull_lock_timeout_s=_number(
                environ, "CCRELAY_PULL_LOCK_TIMEOUT", 3600.0, positive=True
            ),
            pull_lock_stale_s=_number(environ, "CCRELAY_PULL_LOCK_STALE", 120.0, positive=True),
            pull_log_interval_s=_number(environ, "CCRELAY_PULL_LOG_INTERVAL", 10.0),
            warm=_flag(environ, "CCRELAY_WARM", True),
            warm_timeout_s=_number(environ, "CCRELAY_WARM_TIMEOUT", 900.0, positive=True),
            keep_alive=_keep_alive(environ.get("CCRELAY_KEEP_ALIVE")),
            mode=mode,
            http_host=environ.get("CCRELAY_HTTP_HOST") or "0.0.0.0",
            http_port=http_port,
            health_port=health_port if health_port != http_port else None,
            http_drain_s=_number(environ, "CCRELAY_HTTP_DRAIN", 30.0),
            sizing=resolve_sizing(
                environ, normalize_model_name(environ.get("CCRELAY_MODEL") or DEFAULT_MODEL)
            ),
            http_inbound=inbound_limits(environ),
        )


def inbound_limits(environ: Mapping[str, str]) -> InboundLimits:
    """HTTP mode's inbound limits from ``CCRELAY_HTTP_*`` (each optional; `INBOUND_VARIABLES`)."""
    defaults = InboundLimits(idle_timeout_s=HTTP_IDLE_TIMEOUT_S)

    def seconds(field: str) -> float:
        return _number(environ, INBOUND_VARIABLES[field], getattr(defaults, field), positive=True)

    name = INBOUND_VARIABLES["max_pending"]
    pending = _number(environ, name, defaults.max_pending, positive=True)
    if pending != int(pending):
        raise WorkerConfigError(name, "is not a whole number", f"e.g. {defaults.max_pending}")
    return InboundLimits(
        header_timeout_s=seconds("header_timeout_s"),
        body_timeout_s=seconds("body_timeout_s"),
        body_gap_s=seconds("body_gap_s"),
        idle_timeout_s=seconds("idle_timeout_s"),
        max_pending=int(pending),
    )


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host in _LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_exposure(host: str, *, has_key: bool, allow_open: bool) -> str | None:
    """Why HTTP mode must not start on `host` (None: it may).

    Closed by default, as the gateway is: off loopback without ``CCRELAY_WORKER_API_KEY``
    anyone who reaches the port gets free inference on your GPU. ``allow_open`` (the
    ``--allow-unauthenticated`` flag, or ``CCRELAY_HTTP_ALLOW_UNAUTHENTICATED=true``) is for a
    private network that is already closed; the boot logs a warning when it is used.
    """
    if has_key or is_loopback(host) or allow_open:
        return None
    return (
        f"refusing to serve HTTP mode on {host} without an API key: anyone who can reach it "
        "could use the GPU. Set CCRELAY_WORKER_API_KEY to a long random value (clients send "
        "'Authorization: Bearer ...'), bind to 127.0.0.1 (--host), or, on a private network "
        "only, pass --allow-unauthenticated"
    )


def _volume_mounted(root: Path, *, explicit: bool) -> bool:
    """Is a volume there? The default root must be a mount point: a directory alone proves
    nothing, since a first boot without a volume creates /runpod-volume/ollama on the
    container disk. A root the user named (CCRELAY_VOLUME_ROOT) is taken at its word."""
    if not root.is_dir():
        return False
    return explicit or os.path.ismount(root)


def _is_relative_to(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _ollama_address(raw: str | None) -> tuple[str, int]:
    """OLLAMA_HOST as Ollama reads it: ``host``, ``host:port`` or a URL; loopback only."""
    if not raw:
        return "127.0.0.1", 11434
    text = raw if "://" in raw else f"http://{raw}"
    try:
        parts = urlsplit(text)
        port = parts.port or 11434
    except ValueError:
        raise WorkerConfigError(
            "OLLAMA_HOST", "is not host:port", "write e.g. OLLAMA_HOST=127.0.0.1:11434"
        ) from None
    host = parts.hostname or "127.0.0.1"
    if host not in _LOOPBACK:
        raise WorkerConfigError(
            "OLLAMA_HOST",
            f"{host!r} is not a loopback address; the worker keeps Ollama private",
            "use 127.0.0.1:<port> (the handler and HTTP mode are the public faces)",
        )
    return host, port


def _command(raw: str | None) -> tuple[str, ...]:
    if raw is None or not raw.strip():
        return ("ollama", "serve")
    try:
        parts = tuple(shlex.split(raw))
    except ValueError as exc:
        raise WorkerConfigError(
            "CCRELAY_OLLAMA_COMMAND", f"cannot be split into words ({exc})", "fix the quoting"
        ) from None
    return parts


def _number(
    environ: Mapping[str, str], name: str, default: float, *, positive: bool = False
) -> float:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise WorkerConfigError(
            name, "is not a number", f"set it to a number such as {default:g}"
        ) from None
    if value < 0 or (positive and value == 0):
        raise WorkerConfigError(
            name,
            "must be greater than zero" if positive else "must not be negative",
            f"e.g. {default:g}",
        )
    return value


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise WorkerConfigError(name, "is not a boolean", "use 1/0, true/false, yes/no or on/off")


def _keep_alive(raw: str | None) -> str | int:
    """Ollama's keep_alive: seconds as a number (-1 = keep loaded) or a duration such as '30m'."""
    if raw is None or not raw.strip():
        return -1
    text = raw.strip()
    try:
        return int(text)
    except ValueError:
        return text
