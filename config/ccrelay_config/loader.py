"""Read `LLM_BACKEND_CONFIG`, resolve `${VAR}` references and validate into a `CcrelayConfig`.

The loader runs once at an entry point (CLI, gateway). It reports every problem it finds in one
error, each naming the source, the field path and the fix, and never echoes a value.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from ccrelay_config.credentials import (
    ANTHROPIC_BASE_URL,
    trusts_user_credentials,
    upstream_from_environment,
)
from ccrelay_config.errors import (
    ConfigError,
    ConfigFileError,
    ConfigProblem,
    ConfigValidationError,
    MissingVariableError,
    UnknownBackendTypeError,
)
from ccrelay_config.interpolation import interpolate
from ccrelay_config.models import BackendSettings, CcrelayConfig

log = logging.getLogger("ccrelay.config")

SettingsResolver = Callable[[str], type[BackendSettings] | None]
"""Maps a backend `type` to its settings model, or None when no such type is registered."""

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})
IGNORED_CONFIG_NOTE = "LLM_BACKEND_CONFIG is ignored because ENABLE_MULTI_BACKEND is not true"
_INTERNAL_FIELDS = frozenset({"source", "multi_backend_enabled", "ignored_file"})
_ANTHROPIC = "anthropic"
_TRUST_FIELD = "forward_credentials"


def multi_backend_enabled(environ: Mapping[str, str]) -> bool:
    """The rollout gate; a value that is neither true nor false is a config error, not "off"."""
    value = environ.get("ENABLE_MULTI_BACKEND", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigValidationError.single(
        "environment",
        "ENABLE_MULTI_BACKEND",
        "is not a recognised boolean",
        "set ENABLE_MULTI_BACKEND=true to use LLM_BACKEND_CONFIG, or false (also 1/0, yes/no, on/off)",
    )


def load_config(
    environ: Mapping[str, str],
    settings_for_type: SettingsResolver,
    known_types: Callable[[], list[str]] = list,
) -> CcrelayConfig:
    """The configuration the environment asks for.

    `ENABLE_MULTI_BACKEND` unset or false means plain Anthropic whatever the file says (the rollout's
    phase 1); `LLM_BACKEND` overrides the file's `active`.
    """
    raw_source = environ.get("LLM_BACKEND_CONFIG", "").strip()
    if not multi_backend_enabled(environ):
        if raw_source:
            # Said on stderr by every command: the user set a config that does nothing.
            log.warning(
                "%s; using plain Anthropic (export ENABLE_MULTI_BACKEND=true)", IGNORED_CONFIG_NOTE
            )
        else:
            log.info(
                "multi-backend disabled: ENABLE_MULTI_BACKEND is not true, using plain Anthropic"
            )
        return default_config(environ, settings_for_type, enabled=False, ignored=bool(raw_source))
    if not raw_source:
        config = default_config(environ, settings_for_type, enabled=True)
    else:
        source, document = read_document(raw_source)
        config = build_config(source, document, environ, settings_for_type, known_types)
    return _override_active(config, environ.get("LLM_BACKEND", "").strip())


def default_config(
    environ: Mapping[str, str],
    settings_for_type: SettingsResolver,
    *,
    enabled: bool,
    ignored: bool = False,
) -> CcrelayConfig:
    settings_cls = settings_for_type(_ANTHROPIC) or BackendSettings
    entry = _anthropic_defaults({"type": _ANTHROPIC}, settings_cls, environ)
    entry.setdefault("base_url", ANTHROPIC_BASE_URL)
    anthropic = _with_environment_key(settings_cls(**entry), environ)
    return CcrelayConfig(
        source="(built-in default: plain Anthropic)",
        ignored_file=ignored,
        multi_backend_enabled=enabled,
        active=_ANTHROPIC,
        backends={_ANTHROPIC: anthropic},
    )


def _anthropic_defaults(
    entry: dict[str, Any], settings_cls: type[BackendSettings], environ: Mapping[str, str]
) -> dict[str, Any]:
    """An `anthropic` entry with no ``base_url`` goes where ``ANTHROPIC_BASE_URL_UPSTREAM``
    says, trusted with the user's credential: the user named that place themselves."""
    upstream = upstream_from_environment(environ)
    if upstream is None or entry.get("base_url"):
        return entry
    entry = {**entry, "base_url": upstream}
    if _TRUST_FIELD in settings_cls.model_fields:
        entry.setdefault(_TRUST_FIELD, True)
    return entry


def _with_environment_key(settings: BackendSettings, environ: Mapping[str, str]) -> BackendSettings:
    """An `anthropic` backend with no ``api_key`` reads ``ANTHROPIC_API_KEY``, where the user's
    credential may go (`ccrelay_config.credentials`)."""
    key = environ.get("ANTHROPIC_API_KEY", "").strip()
    if settings.type != _ANTHROPIC or settings.api_key is not None or not key:
        return settings
    if not trusts_user_credentials(settings.base_url, getattr(settings, _TRUST_FIELD, None)):
        return settings
    return settings.model_copy(update={"api_key": SecretStr(key)})


def read_document(raw: str) -> tuple[str, Any]:
    """(source label, parsed document) for a path or inline JSON."""
    if raw.startswith(("{", "[")):
        source = "LLM_BACKEND_CONFIG (inline JSON)"
        return source, _parse_json(source, raw)
    path = Path(raw).expanduser()
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError.single(
            source,
            "",
            "file not found",
            "point LLM_BACKEND_CONFIG at an existing YAML or JSON file",
        ) from None
    except UnicodeDecodeError:
        raise ConfigFileError.single(
            source, "", "the file is not UTF-8 text", "save it as UTF-8"
        ) from None
    except OSError as exc:
        reason = (exc.strerror or "it could not be opened").lower()
        raise ConfigFileError.single(
            source,
            "",
            f"cannot read the file: {reason}",
            "check its permissions and encoding (UTF-8)",
        ) from None
    if path.suffix.lower() == ".json":
        return source, _parse_json(source, text)
    return source, _parse_yaml(source, text)


def _parse_json(source: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigFileError.single(
            source,
            "",
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            "fix the JSON syntax there",
        ) from None


def _parse_yaml(source: str, text: str) -> Any:
    import yaml  # only YAML files need it: JSON and inline configs start faster without

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Only the problem and position: YAML's full message quotes the offending line.
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigFileError.single(
            source, "", f"not valid YAML ({where}{problem})", "fix the YAML syntax there"
        ) from None


def build_config(
    source: str,
    document: Any,
    environ: Mapping[str, str],
    settings_for_type: SettingsResolver,
    known_types: Callable[[], list[str]] = list,
) -> CcrelayConfig:
    if not isinstance(document, dict):
        raise ConfigValidationError.single(
            source,
            "",
            "the document must be a mapping with a `backends` section",
            "start from the example in README.md (active, fallback, backends)",
        )
    document, missing = interpolate(document, environ)
    if missing:
        raise MissingVariableError(source, missing)
    backends_raw = document.get("backends")
    if not isinstance(backends_raw, dict) or not backends_raw:
        raise ConfigValidationError.single(
            source,
            "backends",
            "missing or empty",
            "define at least one backend, e.g. backends: {cerebras: {type: cerebras, api_key: ${CEREBRAS_API_KEY}}}",
        )
    backends = _build_backends(source, backends_raw, settings_for_type, known_types, environ)
    internal = sorted(k for k in document if k in _INTERNAL_FIELDS)
    if internal:
        raise ConfigValidationError.single(
            source,
            internal[0],
            "is set by ccrelay itself, not by the config file",
            f"remove `{internal[0]}` (ENABLE_MULTI_BACKEND is an environment variable)",
        )
    top = {k: v for k, v in document.items() if k != "backends"}
    top.setdefault("active", next(iter(backends_raw)))
    undefined = _undefined_names(top, backends)
    if undefined:
        raise ConfigValidationError(source, undefined)
    try:
        return CcrelayConfig(source=source, backends=backends, **top)
    except ValidationError as exc:
        raise ConfigValidationError(
            source, problems_from_validation(exc, "", CcrelayConfig)
        ) from None


def _build_backends(
    source: str,
    raw: dict[str, Any],
    settings_for_type: SettingsResolver,
    known_types: Callable[[], list[str]],
    environ: Mapping[str, str],
) -> dict[str, BackendSettings]:
    built: dict[str, BackendSettings] = {}
    problems: list[ConfigProblem] = []
    for name, entry in raw.items():
        path = f"backends.{name}"
        if not isinstance(entry, dict):
            problems.append(
                ConfigProblem(
                    path,
                    "must be a mapping",
                    "give it fields such as type, base_url, api_key, model",
                )
            )
            continue
        entry = dict(entry)
        entry.setdefault("type", name)
        type_name = entry["type"]
        try:
            settings_cls = settings_for_type(str(type_name))
        except Exception as exc:  # a plugin's entry point that fails to import
            raise UnknownBackendTypeError.single(
                source,
                f"{path}.type",
                f"backend type {type_name!r} is registered but its module failed to import: "
                f"{str(exc)[:200] or 'no reason given'}",
                "reinstall the package that provides it, or pick another type",
            ) from None
        if settings_cls is None:
            known = ", ".join(sorted(known_types())) or "none registered"
            raise UnknownBackendTypeError.single(
                source,
                f"{path}.type",
                f"unknown backend type {type_name!r}",
                f"use one of: {known}",
            )
        if type_name == _ANTHROPIC:
            entry = _anthropic_defaults(entry, settings_cls, environ)
        try:
            built[name] = _with_environment_key(settings_cls.model_validate(entry), environ)
        except ValidationError as exc:
            problems.extend(problems_from_validation(exc, path, settings_cls))
    if problems:
        raise ConfigValidationError(source, problems)
    return built


def _undefined_names(
    top: dict[str, Any], backends: dict[str, BackendSettings]
) -> list[ConfigProblem]:
    """`active` and `fallback` entries that name no backend (wrong types are pydantic's to report)."""
    known = ", ".join(sorted(backends))
    named: list[tuple[str, Any]] = [("active", top.get("active"))]
    fallback = top.get("fallback")
    if isinstance(fallback, list):
        named.extend((f"fallback[{i}]", name) for i, name in enumerate(fallback))
    routing = top.get("routing")
    if isinstance(routing, dict):
        for rule, route in routing.items():
            if rule in ("classes", "agent_types") and isinstance(route, dict):
                for key, entry in route.items():
                    if isinstance(entry, dict):
                        named.append((f"routing.{rule}.{key}.backend", entry.get("backend")))
            elif isinstance(route, dict):
                named.append((f"routing.{rule}.backend", route.get("backend")))
    return [
        ConfigProblem(
            path,
            f"names backend {name!r}, which is not defined under backends",
            f"define it under backends or use one of: {known}",
        )
        for path, name in named
        if isinstance(name, str) and name not in backends
    ]


def _override_active(config: CcrelayConfig, chosen: str) -> CcrelayConfig:
    if not chosen or chosen == config.active:
        return config
    if chosen not in config.backends:
        known = ", ".join(sorted(config.backends))
        raise ConfigValidationError.single(
            "LLM_BACKEND",
            "",
            f"names backend {chosen!r}, which {config.source} does not define",
            f"use one of: {known}",
        )
    return config.model_copy(update={"active": chosen})


def problems_from_validation(
    exc: ValidationError, prefix: str, model: type[BaseModel]
) -> list[ConfigProblem]:
    """Pydantic errors as config problems, built from locations and types only, never inputs."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = [str(part) for part in error["loc"]]
        path = ".".join([prefix, *loc] if prefix else loc)
        problems.append(ConfigProblem(path, _problem_text(error), _fix_for(error, model)))
    return problems


def _problem_text(error: Any) -> str:
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _fix_for(error: Any, model: type[BaseModel]) -> str:
    kind = error["type"]
    field = str(error["loc"][-1]) if error["loc"] else ""
    if kind == "missing":
        return f"add `{field}`"
    if kind == "extra_forbidden":
        allowed = _allowed_fields(model, error["loc"][:-1])
        hint = f" (allowed here: {', '.join(allowed)})" if allowed else ""
        return f"remove `{field}` or correct its spelling{hint}"
    if not field:  # a check across fields (a model validator): its message names them
        return "set the fields the message names"
    if "url" in kind or "URL" in str(error["msg"]):
        return "write a full URL such as https://api.cerebras.ai/v1"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"give `{field}` a value of the right type"
    return f"correct `{field}`"


def _allowed_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(str(part))
        if field is None:
            return []
        current = field.annotation
    fields = getattr(current, "model_fields", None)
    if not fields:
        return []
    # Fields the file may not set (such as `source`, which the loader fills in) are not offered.
    return sorted(name for name, info in fields.items() if not info.exclude)


__all__ = ["ConfigError", "build_config", "load_config", "multi_backend_enabled", "read_document"]
