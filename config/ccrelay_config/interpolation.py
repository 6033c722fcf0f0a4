"""`${VAR}` and `${VAR:-default}` references inside config values.

Interpolation runs on parsed values (after YAML/JSON decoding), so a variable's value can never
change the document's structure. `$${` writes a literal `${`.

`interpolate` reports unset variables as `ConfigProblem`s; `substitute` is the same walk with the
caller deciding what an unset variable means (serverless.yml's loader uses it with its own problems).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ccrelay_config.errors import ConfigProblem

__all__ = ["has_reference", "interpolate", "substitute"]

_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")

Missing = Callable[[str, str], None]
"""Called with (field path, variable name) for each reference to an unset variable without a default."""


def interpolate(
    value: Any, environ: Mapping[str, str], path: str = ""
) -> tuple[Any, list[ConfigProblem]]:
    """Return `value` with every reference resolved, and the problems found on the way."""
    problems: list[ConfigProblem] = []

    def missing(where: str, name: str) -> None:
        problems.append(
            ConfigProblem(
                where,
                f"environment variable {name} is not set (or is empty)",
                f"export {name}=... before running, or write ${{{name}:-default}}",
            )
        )

    resolved = substitute(value, environ, missing, path)
    return resolved, problems


def substitute(value: Any, environ: Mapping[str, str], missing: Missing, path: str = "") -> Any:
    """Return `value` with every reference resolved; an unset variable becomes "" and `missing` is told."""
    if isinstance(value, str):
        return _substitute(value, environ, path, missing)
    if isinstance(value, dict):
        return {k: substitute(v, environ, missing, _join(path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, environ, missing, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def has_reference(text: str) -> bool:
    """Whether `text` holds a `${VAR}` reference (a `$${` escape is not one)."""
    return any(m.group(0) != "$${" for m in _REFERENCE.finditer(text))


def _substitute(text: str, environ: Mapping[str, str], path: str, missing: Missing) -> str:
    if "$" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        found = environ.get(name)
        if found:
            return found
        if default is not None:
            return default
        missing(path, name)
        return ""

    return _REFERENCE.sub(replace, text)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
