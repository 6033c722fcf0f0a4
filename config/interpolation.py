"""`${VAR}` and `${VAR:-default}` references inside config values.

Interpolation runs on parsed values (after YAML/JSON decoding), so a variable's value can never
change the document's structure. `$${` writes a literal `${`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from config.errors import ConfigProblem

_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def interpolate(
    value: Any, environ: Mapping[str, str], path: str = ""
) -> tuple[Any, list[ConfigProblem]]:
    """Return `value` with every reference resolved, and the problems found on the way."""
    problems: list[ConfigProblem] = []
    resolved = _walk(value, environ, path, problems)
    return resolved, problems


def _walk(value: Any, environ: Mapping[str, str], path: str, problems: list[ConfigProblem]) -> Any:
    if isinstance(value, str):
        return _substitute(value, environ, path, problems)
    if isinstance(value, dict):
        return {k: _walk(v, environ, _join(path, str(k)), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, environ, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value


def _substitute(
    text: str, environ: Mapping[str, str], path: str, problems: list[ConfigProblem]
) -> str:
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
        problems.append(
            ConfigProblem(
                path,
                f"environment variable {name} is not set (or is empty)",
                f"export {name}=... before running, or write ${{{name}:-default}}",
            )
        )
        return ""

    return _REFERENCE.sub(replace, text)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
