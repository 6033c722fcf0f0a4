"""serverless.yml: the declared RunPod endpoint, as pydantic models, and its loader.

``type`` is ``QUEUE`` (the default: jobs through RunPod's queue, the worker's serverless
handler) or ``LOAD_BALANCER`` (requests straight to the workers' own HTTP server: the worker in
HTTP mode on ``port``, answering RunPod's ``/ping`` on ``health_port``). The environment a
load-balanced worker needs is set here (`LOAD_BALANCER_ENV`), never by hand.

``${VAR}`` (and ``${VAR:-default}``; ``$${`` writes a literal ``${``) references anywhere in the
file are resolved from the environment at deploy time. Values under ``env`` that came from a
reference are secrets: they are sent to RunPod and never printed. Every error names the file,
the field path and the fix, and never echoes a value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ccrelay.deploy.errors import Problem, ServerlessConfigError
from ccrelay.deploy.problems import REFERENCE_DOC, problems_from
from ccrelay_config.interpolation import has_reference, substitute
from ccrelay_wire.defaults import DEFAULT_MODEL

__all__ = [
    "DEFAULT_LB_REQUEST_COUNT",
    "DEFAULT_PORT",
    "IMAGE_OWNER_VARIABLE",
    "LOAD_BALANCER_ENV",
    "PLACEHOLDER_IMAGE_OWNERS",
    "DeploySpec",
    "GpuSpec",
    "NetworkVolumeSpec",
    "ScalerSpec",
    "ServerlessSpec",
    "TemplateSpec",
    "WorkersSpec",
    "load_spec",
    "parse_spec",
]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
IMAGE_OWNER_VARIABLE = "CCRELAY_IMAGE_OWNER"
"""Whose registry namespace the worker image is in: serverless.yml's image is
``ghcr.io/${CCRELAY_IMAGE_OWNER:-you}/ccrelay-worker:${CCRELAY_IMAGE_TAG:-0.1.0}``."""
PLACEHOLDER_IMAGE_OWNERS = frozenset({"you", "your-org"})
"""Owners the repository's examples have used: an image under one is not one anybody pushed."""
DEFAULT_PORT = 8000
"""A load-balanced worker's HTTP port: the worker's own default (``CCRELAY_HTTP_PORT``), and
one a non-root server may bind (RunPod's default ``PORT`` is 80)."""
DEFAULT_LB_REQUEST_COUNT = 4
"""In-flight requests per worker before RunPod starts another: the image's
``OLLAMA_NUM_PARALLEL``, the requests one worker serves at once."""
LOAD_BALANCER_ENV = (
    "CCRELAY_WORKER_MODE",
    "CCRELAY_HTTP_PORT",
    "PORT",
    "PORT_HEALTH",
)
"""Set by ``ccrelay deploy`` for ``type: LOAD_BALANCER``; serverless.yml's ``env`` may not."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuSpec(_Strict):
    types: list[str] = Field(min_length=1, description="RunPod GPU pool ids, in priority order")
    count: int = Field(1, ge=1, le=8, description="GPUs per worker")


class WorkersSpec(_Strict):
    min: int = Field(0, ge=0, description="always-on workers (billed while idle)")
    max: int = Field(3, ge=1, description="most workers at once")

    @model_validator(mode="after")
    def _order(self) -> WorkersSpec:
        if self.min > self.max:
            raise ValueError("min must not be greater than max")
        return self


class ScalerSpec(_Strict):
    """RunPod's autoscaling signal: ``QUEUE_DELAY`` (``value``: seconds a job may wait, at
    least 0.5) or ``REQUEST_COUNT`` (``value``: in-flight jobs per worker, a whole number)."""

    type: Literal["QUEUE_DELAY", "REQUEST_COUNT"] = "QUEUE_DELAY"
    value: float = Field(
        4, ge=0.5, description="seconds a job may wait (QUEUE_DELAY) or jobs per worker"
    )

    @model_validator(mode="after")
    def _whole_count(self) -> ScalerSpec:
        if self.type == "REQUEST_COUNT" and (self.value < 1 or self.value != int(self.value)):
            raise ValueError("value must be a whole number of at least 1 for REQUEST_COUNT")
        return self

    def wire(self) -> dict[str, Any]:
        """The scaling object of RunPod's REST v2 (a union on ``type``)."""
        if self.type == "REQUEST_COUNT":
            return {"type": "REQUEST_COUNT", "requestCount": int(self.value)}
        return {"type": "QUEUE_DELAY", "queueDelay": _number(self.value)}


def _number(value: float) -> int | float:
    return int(value) if value == int(value) else value


class NetworkVolumeSpec(_Strict):
    """Either an existing volume (``id``) or one to create (``name``, ``size_gb``, ``data_center``)."""

    id: str | None = Field(None, min_length=1)
    name: str | None = Field(None, min_length=1)
    size_gb: int | None = Field(None, ge=10, le=4000)
    data_center: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_way(self) -> NetworkVolumeSpec:
        create = (self.name, self.size_gb, self.data_center)
        if self.id is not None and any(v is not None for v in create):
            raise ValueError("give either id, or name + size_gb + data_center, not both")
        if self.id is None and not all(v is not None for v in create):
            raise ValueError("needs id, or all of name, size_gb and data_center")
        return self


class TemplateSpec(_Strict):
    name: str | None = Field(None, min_length=1, description="default: '<endpoint name>-template'")


class ServerlessSpec(_Strict):
    name: str = Field(min_length=1, max_length=120)
    type: Literal["QUEUE", "LOAD_BALANCER"] = Field(
        "QUEUE", description="RunPod's request routing: its job queue, or its load balancer"
    )
    port: int | None = Field(None, ge=1, le=65535, description="LOAD_BALANCER: the HTTP port")
    health_port: int | None = Field(
        None, ge=1, le=65535, description="LOAD_BALANCER: where RunPod polls /ping"
    )
    image: str = Field(min_length=1)
    model: str = Field(DEFAULT_MODEL, min_length=1)
    gpu: GpuSpec
    workers: WorkersSpec = Field(default_factory=WorkersSpec)
    idle_timeout: int = Field(5, ge=1, le=3600, description="seconds an idle worker stays up")
    scaler: ScalerSpec = Field(default_factory=ScalerSpec)
    flashboot: Literal["OFF", "FLASHBOOT", "PRIORITY_FLASHBOOT"] = "FLASHBOOT"
    execution_timeout: int = Field(600, ge=5, le=7 * 24 * 3600, description="seconds per job")
    container_disk_gb: int = Field(20, ge=5, le=500)
    network_volume: NetworkVolumeSpec | None = None
    data_centers: list[str] = Field(default_factory=list)
    env: dict[str, str | int | float | bool] = Field(default_factory=dict)
    template: TemplateSpec = Field(default_factory=TemplateSpec)

    @model_validator(mode="before")
    @classmethod
    def _load_balancer_scaler(cls, data: Any) -> Any:
        """A load-balanced endpoint scales on in-flight requests: RunPod allows nothing else."""
        if not isinstance(data, dict) or data.get("type") != "LOAD_BALANCER":
            return data
        scaler = data.get("scaler")
        if scaler is None:
            scaler = {"type": "REQUEST_COUNT", "value": DEFAULT_LB_REQUEST_COUNT}
        elif isinstance(scaler, dict):
            scaler = {"type": "REQUEST_COUNT", **scaler}
        return {**data, "scaler": scaler}

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if any(ch.isspace() for ch in value):
            raise ValueError("must not contain spaces")
        last = value.rsplit("/", 1)[-1]
        if "@" not in last and ":" not in last:
            raise ValueError("has no tag; pin one so an update rolls out new workers")
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not _ENV_NAME.match(key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
        if "CCRELAY_MODEL" in value:
            raise ValueError("CCRELAY_MODEL is set from `model:`; remove it from env")
        if "CCRELAY_WORKER_MODE" in value:
            raise ValueError("CCRELAY_WORKER_MODE is set from `type:`; remove it from env")
        return value

    @model_validator(mode="after")
    def _idle_timeout_applies(self) -> ServerlessSpec:
        if (
            self.type == "QUEUE"
            and self.scaler.type == "REQUEST_COUNT"
            and "idle_timeout" in self.model_fields_set
        ):
            raise ValueError(
                "idle_timeout does not apply to a QUEUE endpoint with scaler.type REQUEST_COUNT "
                "(RunPod refuses it); remove idle_timeout, or use scaler.type QUEUE_DELAY"
            )
        return self

    @model_validator(mode="after")
    def _routing(self) -> ServerlessSpec:
        if self.type == "QUEUE":
            given = [f for f in ("port", "health_port") if f in self.model_fields_set]
            if given:
                raise ValueError(
                    f"{' and '.join(given)} apply only to type LOAD_BALANCER (a queue worker "
                    "serves no port); remove them, or set type: LOAD_BALANCER"
                )
            return self
        if self.scaler.type != "REQUEST_COUNT":
            raise ValueError(
                "a LOAD_BALANCER endpoint scales on scaler.type REQUEST_COUNT (RunPod refuses "
                "QUEUE_DELAY there: there is no queue); set scaler: {type: REQUEST_COUNT, value: "
                f"{DEFAULT_LB_REQUEST_COUNT}}}, or leave scaler out"
            )
        reserved = sorted(set(self.env) & set(LOAD_BALANCER_ENV))
        if reserved:
            raise ValueError(
                f"env sets {', '.join(reserved)}, which type LOAD_BALANCER sets from port and "
                "health_port; remove them from env"
            )
        return self

    @property
    def http_port(self) -> int:
        """The port a load-balanced worker serves on (RunPod's ``PORT``)."""
        return self.port or DEFAULT_PORT

    @property
    def ping_port(self) -> int:
        """Where RunPod's load balancer polls ``/ping`` (``PORT_HEALTH``)."""
        return self.health_port or self.http_port

    @model_validator(mode="after")
    def _volume_region(self) -> ServerlessSpec:
        volume = self.network_volume
        if (
            volume
            and volume.data_center
            and self.data_centers
            and volume.data_center not in self.data_centers
        ):
            raise ValueError(
                f"the network volume lives in {volume.data_center} but data_centers does not "
                "include it; workers must run where their volume is"
            )
        return self

    @property
    def template_name(self) -> str:
        return self.template.name or f"{self.name}-template"


@dataclass(frozen=True)
class DeploySpec:
    """A validated serverless.yml with its environment resolved."""

    source: str
    spec: ServerlessSpec
    env: dict[str, str]
    secret_keys: frozenset[str]

    @property
    def secret_values(self) -> tuple[str, ...]:
        return tuple(self.env[k] for k in sorted(self.secret_keys) if self.env.get(k))

    @property
    def warnings(self) -> list[str]:
        """What is valid but almost certainly not meant, said before any plan."""
        if not is_placeholder_image(self.spec.image):
            return []
        return [
            f"image {self.spec.image} is the example's placeholder, not an image you pushed: "
            "RunPod's workers would fail to pull it and the endpoint would never serve. Fix: "
            f"build and push the worker image, then export {IMAGE_OWNER_VARIABLE}=<your GitHub "
            "user or organisation> (serverless.yml's image is ghcr.io/${"
            f"{IMAGE_OWNER_VARIABLE}"
            "}/ccrelay-worker:${CCRELAY_IMAGE_TAG}), or set image: to yours; see docs/deploy.md"
        ]


def is_placeholder_image(image: str) -> bool:
    """Is `image` under a placeholder owner (``ghcr.io/you/...``, ``your-org/...``)?"""
    *namespace, _name = image.split("/")
    return any(part in PLACEHOLDER_IMAGE_OWNERS for part in namespace)


def load_spec(path: Path, environ: Mapping[str, str]) -> DeploySpec:
    source = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ServerlessConfigError(
            source,
            [
                Problem(
                    "",
                    "file not found",
                    "create it (the repository's serverless.yml is a starting point) or pass its "
                    "path: ccrelay deploy path/to/serverless.yml",
                )
            ],
        ) from None
    except OSError as exc:
        raise ServerlessConfigError(
            source, [Problem("", f"cannot be read ({exc.strerror})", "check its permissions")]
        ) from None
    return parse_spec(text, environ, source=source)


def parse_spec(
    text: str, environ: Mapping[str, str], *, source: str = "serverless.yml"
) -> DeploySpec:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ServerlessConfigError(
            source, [Problem(where, f"not valid YAML: {problem}", "fix the YAML syntax there")]
        ) from None
    if not isinstance(raw, dict):
        raise ServerlessConfigError(
            source,
            [
                Problem(
                    "", "must be a YAML mapping (name: ..., image: ..., gpu: ...)", REFERENCE_DOC
                )
            ],
        )

    problems: list[Problem] = []
    raw_env = raw.get("env")
    secret_keys = frozenset(
        str(key)
        for key, value in (raw_env.items() if isinstance(raw_env, dict) else ())
        if isinstance(value, str) and has_reference(value)
    )

    def missing(path: str, name: str) -> None:
        problems.append(
            Problem(
                path,
                f"environment variable {name} is not set",
                f"export {name}=... before `ccrelay deploy`, or write ${{{name}:-default}}",
            )
        )

    resolved = substitute(raw, environ, missing)
    try:
        spec = ServerlessSpec.model_validate(resolved)
    except ValidationError as exc:
        problems.extend(problems_from(exc, ServerlessSpec))
        raise ServerlessConfigError(source, problems) from None
    if problems:
        raise ServerlessConfigError(source, problems)
    env = {key: _env_text(value) for key, value in spec.env.items()}
    env["CCRELAY_MODEL"] = spec.model
    if spec.type == "LOAD_BALANCER":
        env.update(_load_balancer_env(spec))
    return DeploySpec(source=source, spec=spec, env=env, secret_keys=secret_keys)


def _load_balancer_env(spec: ServerlessSpec) -> dict[str, str]:
    """What the worker image reads to serve RunPod's load balancer: HTTP mode on ``PORT``,
    ``/ping`` on ``PORT_HEALTH`` (RunPod's names, runpod/docs serverless/load-balancing/
    overview.mdx), and the worker's own port setting beside them.

    RunPod's load balancer lets through only requests bearing the account's API key, and the
    workers have no address of their own, so HTTP mode may serve without a key of its own
    (which a client could not send anyway: the one Authorization header carries RunPod's key).
    A ``CCRELAY_WORKER_API_KEY`` in ``env`` is kept, and then the worker asks for it."""
    env = {
        "CCRELAY_WORKER_MODE": "http",
        "PORT": str(spec.http_port),
        "PORT_HEALTH": str(spec.ping_port),
        "CCRELAY_HTTP_PORT": str(spec.http_port),
    }
    if "CCRELAY_WORKER_API_KEY" not in spec.env:
        env.setdefault("CCRELAY_HTTP_ALLOW_UNAUTHENTICATED", "true")
    return env


def _env_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
