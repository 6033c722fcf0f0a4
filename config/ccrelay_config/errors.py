"""The exception tree of the config package.

Every message names where the problem is (the file, or "LLM_BACKEND_CONFIG (inline JSON)"), the
field path inside it, what is wrong, and how to fix it. No message ever contains a field's value,
because the value may be a secret: pydantic's own error text (which echoes inputs) is never shown.

    ConfigError                      (source, path, problem, fix)
    ├── ConfigFileError              the file is missing, unreadable, or not valid YAML/JSON
    ├── MissingVariableError         a ${VAR} reference with no value and no default
    ├── ConfigValidationError        a field is wrong (one or more problems, all listed)
    └── UnknownBackendTypeError      a backend's `type` names no registered backend class
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a document: where (dotted field path), what, and how to fix it."""

    path: str
    problem: str
    fix: str

    def render(self) -> str:
        where = self.path or "(top level)"
        return f"{where}: {self.problem}; fix: {self.fix}"


def render_problems(source: str, problems: Sequence[ConfigProblem]) -> str:
    """``source: problem`` for one problem; a count then one ``  - problem`` line each for more."""
    if len(problems) == 1:
        return f"{source}: {problems[0].render()}"
    lines = [f"{source}: {len(problems)} problems"]
    lines.extend(f"  - {p.render()}" for p in problems)
    return "\n".join(lines)


class ConfigError(Exception):
    """Root of every configuration error."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(render_problems(source, problems))

    @classmethod
    def single(cls, source: str, path: str, problem: str, fix: str) -> ConfigError:
        return cls(source, [ConfigProblem(path, problem, fix)])


class ConfigFileError(ConfigError):
    pass


class MissingVariableError(ConfigError):
    pass


class ConfigValidationError(ConfigError):
    pass


class UnknownBackendTypeError(ConfigError):
    pass
