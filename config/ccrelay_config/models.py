"""Pydantic models of ccrelay's client-side configuration.

Every model forbids unknown fields (a typo is an error, not a silently ignored setting) and is
frozen (config is read once at an entry point and passed down). Backend types add their own
fields by subclassing `BackendSettings`; the loader picks the subclass from the backend registry.
"""

from __future__ import annotations

import fnmatch
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)

from ccrelay_config.pricing import PriceTable
from ccrelay_config.telemetry import TelemetrySettings


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_http_url(value: str) -> str:
    """Accept http(s) URLs with a host; strip a trailing slash so paths join predictably."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value.rstrip("/")


HttpUrlStr = Annotated[str, Field(min_length=1)]


class RetrySettings(_Frozen):
    """Exponential backoff with full jitter; Retry-After wins when the provider sends one."""

    max_attempts: int = Field(3, ge=1, le=10)
    initial_backoff_s: float = Field(0.5, ge=0)
    max_backoff_s: float = Field(8.0, ge=0)
    max_retry_after_s: float = Field(
        60.0, ge=0, description="a Retry-After longer than this fails at once instead of waiting"
    )


class TimeoutSettings(_Frozen):
    connect_s: float = Field(10.0, gt=0)
    first_byte_s: float = Field(120.0, gt=0, description="until response headers / first event")
    idle_s: float = Field(60.0, gt=0, description="longest gap between two streamed chunks")
    total_s: float = Field(900.0, gt=0)


class LimitSettings(_Frozen):
    """How much of a reply the gateway holds: past a limit the attempt fails with a clear 502.

    Generous: Claude Code's longest answers are a few hundred KB; a RunPod streamed chunk is at
    most 1 MB.
    """

    max_reply_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="a non-streamed reply body")
    max_event_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="one streamed (SSE) event")


class CircuitSettings(_Frozen):
    failure_threshold: int = Field(5, ge=1)
    cooldown_s: float = Field(30.0, ge=0)


CONTEXT_EDITING_MAX_WINDOW = 262_144
"""The largest window `ClearToolUsesPolicy` applies to by default: past it, a session's tool
results rarely crowd the prompt before Claude Code's own compaction would run."""


class ClearToolUsesPolicy(_Frozen):
    """A ``clear_tool_uses_20250919`` edit the gateway adds for a non-Anthropic backend with a
    small window, with Anthropic's documented semantics: once the prompt passes the trigger,
    the results of all but the last ``keep_tool_uses`` tool uses become ``[Old tool result
    content cleared]`` (the ``tool_use`` blocks stay), unless that would clear fewer than
    ``clear_at_least_tokens``.

    Why the gateway adds it: Claude Code 2.1.332 asks only for ``clear_thinking_20251015``
    (``keep: all``); it adds ``clear_tool_uses_20250919`` only when a session comes back after
    a long idle spell, behind server flags. On a 32k-64k window, its tool results fill the prompt
    within a few turns and force full auto-compactions; clearing old tool results is what
    Anthropic does server-side. Once the trigger is passed, each request clears at most one
    result more than the one before, so the prompt up to there is what the engine saw last
    time and its prefix (KV) cache keeps most of it.
    A request that carries its own ``clear_tool_uses_20250919`` edit is left as it is. Usage
    reports what the model saw (the edited prompt), as Anthropic's does, and the answer's
    ``context_management.applied_edits`` says what was cleared."""

    at_fraction: float = Field(
        0.6,
        gt=0,
        le=1,
        description="trigger: this share of the backend's prompt limit (its window less the "
        "output reserve), in input tokens",
    )
    keep_tool_uses: int = Field(3, ge=0, description="the most recent tool uses kept whole")
    clear_at_least_tokens: int = Field(
        4000, ge=0, description="skip the edit when it would clear fewer input tokens"
    )
    max_window_tokens: int = Field(
        CONTEXT_EDITING_MAX_WINDOW,
        ge=1024,
        description="applies only while the backend's window is known and at most this",
    )


class ContextEditingSettings(_Frozen):
    """Context edits the gateway adds to requests for a non-Anthropic backend (applied by the
    gateway, or by the ccrelay worker for a ``runpod`` backend, as Anthropic applies them)."""

    clear_tool_uses: ClearToolUsesPolicy | None = Field(
        default_factory=ClearToolUsesPolicy,
        description="clear old tool results on a small window (null: off)",
    )


class BackendSettings(_Frozen):
    """Fields every backend type has. `type` picks the class from the registry."""

    type: str
    base_url: HttpUrlStr | None = None
    api_key: SecretStr | None = None
    model: str | None = Field(None, description="default backend model")
    models: dict[str, str] = Field(
        default_factory=dict,
        description="Claude model name patterns (fnmatch wildcards) -> backend model, first match wins",
    )
    max_tokens_limit: int | None = Field(None, ge=1)
    context_window: int | None = Field(
        None,
        ge=1024,
        description="tokens the backend's model can read; a prompt that does not fit is never "
        "sent (unset: the worker's own report, or the type's default, or no check)",
    )
    output_reserve_tokens: int | None = Field(
        None, ge=0, description="window kept for the answer (default: 1/8 of it, at most 4096)"
    )
    context_editing: ContextEditingSettings = Field(
        default_factory=ContextEditingSettings,
        description="edits added for a small window (ClearToolUsesPolicy says why); not for an "
        "anthropic backend, where Anthropic edits and Claude Code asks",
    )
    timeouts: TimeoutSettings = Field(default_factory=TimeoutSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    circuit: CircuitSettings = Field(default_factory=CircuitSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    headers: dict[str, str] = Field(
        default_factory=dict,
        repr=False,  # may carry a credential (`Authorization: Bearer ${TOKEN}`)
        description="extra request headers",
    )

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)

    @model_validator(mode="after")
    def _edits_apply(self) -> BackendSettings:
        if self.type == "anthropic" and "context_editing" in self.model_fields_set:
            raise ValueError(
                "context_editing does not apply to an anthropic backend: Anthropic applies "
                "context edits itself, as Claude Code asks for them; remove it"
            )
        return self

    @field_serializer("headers")
    def _mask_headers(self, headers: dict[str, str]) -> dict[str, str]:
        """Every dump (``model_dump``, JSON, ``config check``) masks header values: any of them
        may be a credential. A few that never are stay readable."""
        return {k: v if k.lower() in _PLAIN_HEADERS else MASK for k, v in headers.items()}

    def names_backends(self) -> dict[str, str]:
        """Other backends this one's settings name (field path -> name), checked to exist."""
        return {}

    def map_model(self, requested: str | None) -> str | None:
        """The `models` map's target for a requested (Claude) model name, if a pattern matches."""
        if requested:
            for pattern, target in self.models.items():
                if fnmatch.fnmatchcase(requested, pattern):
                    return target
        return None

    def resolve_model(self, requested: str | None) -> str | None:
        """The backend model for a requested (Claude) model name."""
        return self.map_model(requested) or self.model or requested


class Route(_Frozen):
    """Where a routing rule sends a request: a backend, and optionally its model."""

    backend: str
    model: str | None = None


class LongContextRoute(Route):
    threshold_tokens: int = Field(
        ..., ge=1, description="prompts estimated above this go to this backend"
    )


REQUEST_CLASSES = ("main", "subagent", "workflow", "compaction", "auxiliary", "side_reply")
"""What Claude Code 2.1.332+ says a request is (``x-claude-code-request-class``, sent with
``CLAUDE_CODE_GATEWAY_HINT_HEADERS=1``, which ``ccrelay code`` sets)."""


class RoutingSettings(_Frozen):
    """Per-request routing rules (the first that applies wins, in this order): a model written
    ``BACKEND,MODEL`` (or a picker id from ``GET /v1/models``), the ``x-ccrelay-backend``
    header, ``long_context``, the request's class (``classes``, ``agent_types``), ``background``,
    ``thinking``; else the active backend and its fallbacks.

    Where Claude Code says what a request is, that beats the guesses: ``background`` then
    applies to the ``auxiliary`` class (titles, summaries, quota checks) rather than to a
    haiku-class model name."""

    background: Route | None = None
    long_context: LongContextRoute | None = None
    thinking: Route | None = None
    classes: dict[str, Route] = Field(
        default_factory=dict,
        description="request class (main, subagent, workflow, compaction, auxiliary, "
        "side_reply) -> where it goes",
    )
    agent_types: dict[str, Route] = Field(
        default_factory=dict,
        description="sub-agent type (x-claude-code-agent-type, e.g. Explore) -> where it goes",
    )
    background_models: list[str] = Field(
        default_factory=lambda: ["claude-*haiku*", "claude-haiku-*"],
        description="requested models (fnmatch) that are background (haiku-class) requests "
        "when Claude Code does not say the request's class",
    )

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: dict[str, Route]) -> dict[str, Route]:
        unknown = sorted(set(value) - set(REQUEST_CLASSES))
        if unknown:
            raise ValueError(
                f"unknown request class {unknown[0]!r}; Claude Code sends: "
                + ", ".join(REQUEST_CLASSES)
            )
        return value

    def routes(self) -> dict[str, Route]:
        """Every configured route by its rule name (``class:compaction``, ``agent:Explore``)."""
        found: dict[str, Route | None] = {
            "background": self.background,
            "long_context": self.long_context,
            "thinking": self.thinking,
        }
        found.update({f"class:{name}": route for name, route in self.classes.items()})
        found.update({f"agent:{name}": route for name, route in self.agent_types.items()})
        return {name: route for name, route in found.items() if route is not None}


MASK = "********"
_PLAIN_HEADERS = frozenset(
    {"accept", "anthropic-version", "anthropic-beta", "content-type", "user-agent", "x-title"}
)


class InboundSettings(_Frozen):
    """How long a caller may take to send a request, and how many may be part-way at once
    (``ccrelay_wire.inbound``; docs/deploy.md, "Inbound limits", says why each default is safe)."""

    header_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="from a request's first byte to the end of its headers"
    )
    body_timeout_s: float = Field(600.0, gt=0, le=86400, description="to read a whole body")
    body_gap_s: float = Field(60.0, gt=0, le=3600, description="longest pause inside a body")
    idle_timeout_s: float = Field(
        75.0, gt=0, le=86400, description="a connection with no request (new or kept alive)"
    )
    max_pending: int = Field(
        256, ge=1, le=1_000_000, description="connections new or sending headers at once"
    )


class GatewaySettings(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(8082, ge=0, le=65535)
    drain_s: float = Field(
        5.0, ge=0, le=600, description="on SIGTERM/SIGINT, how long in-flight requests may finish"
    )
    inbound: InboundSettings = Field(default_factory=InboundSettings)


class CcrelayConfig(BaseModel):
    """The whole resolved configuration. Built by `config.loader.load_config`."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    source: str = Field("(built-in default)", exclude=True)
    ignored_file: bool = Field(False, exclude=True)
    """LLM_BACKEND_CONFIG was set but ENABLE_MULTI_BACKEND was not: errors say why."""
    multi_backend_enabled: bool = True
    active: str
    fallback: list[str] = Field(default_factory=list)
    backends: dict[str, BackendSettings]
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    prices: PriceTable = Field(default_factory=PriceTable)

    @model_validator(mode="after")
    def _names_exist(self) -> CcrelayConfig:
        routed = [route.backend for route in self.routing.routes().values()]
        for name in [self.active, *self.fallback, *routed]:
            if name not in self.backends:
                raise ValueError(f"backend {name!r} is not defined under backends")
        for owner, settings in self.backends.items():
            for field_path, name in settings.names_backends().items():
                if name not in self.backends:
                    raise ValueError(
                        f"backends.{owner}.{field_path} names {name!r}, which is not defined "
                        f"under backends; use one of: {', '.join(sorted(self.backends))}"
                    )
        for name in self.prices.backends:
            if name not in self.backends:
                raise ValueError(
                    f"prices.backends names {name!r}, which is not defined under backends; "
                    f"use one of: {', '.join(sorted(self.backends))}"
                )
        return self

    def chain(self, first: str | None = None) -> list[str]:
        """Backend names in the order a request tries them: the chosen one, then the fallbacks."""
        head = first or self.active
        return [head, *(n for n in self.fallback if n != head)]

    def masked(self) -> dict[str, Any]:
        """A JSON-able view with every secret masked, for `ccrelay config check`."""
        data = self.model_dump(mode="json", exclude={"source"})
        for name, settings in self.backends.items():
            data["backends"][name] = settings.model_dump(mode="json")  # headers masked there
            if settings.api_key is not None:
                data["backends"][name]["api_key"] = MASK
        return data


_SECRET_HEADER_WORDS = ("authorization", "key", "token", "secret", "cookie", "password")


def is_secret_header(header: str) -> bool:
    """Extra headers may carry a credential (`Authorization: Bearer ${TOKEN}`): mask those."""
    lowered = header.lower()
    return any(word in lowered for word in _SECRET_HEADER_WORDS)
