"""Backend classes by type name, fed by the `ccrelay.backends` entry-point group.

Built-ins and plugins register the same way (simonw/llm's hook idea): a provider is one file under
`client/ccrelay/backends/` plus one line in pyproject.toml. Classes load lazily, so a command that needs
one backend imports one module.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from ccrelay.backends.base import Backend
from ccrelay_config.models import BackendSettings

GROUP = "ccrelay.backends"


class BackendRegistry:
    def __init__(self, entries: list[EntryPoint] | None = None) -> None:
        found = entries if entries is not None else list(entry_points(group=GROUP))
        self._entries = {entry.name: entry for entry in found}
        self._loaded: dict[str, type[Backend[Any]]] = {}

    def register(self, type_name: str, cls: type[Backend[Any]]) -> None:
        self._loaded[type_name] = cls

    def known_types(self) -> list[str]:
        return sorted({*self._entries, *self._loaded})

    def backend_class(self, type_name: str) -> type[Backend[Any]] | None:
        if type_name in self._loaded:
            return self._loaded[type_name]
        entry = self._entries.get(type_name)
        if entry is None:
            return None
        cls = entry.load()
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            raise TypeError(f"entry point {GROUP}:{type_name} is not a Backend subclass")
        self._loaded[type_name] = cls
        return cls

    def settings_for(self, type_name: str) -> type[BackendSettings] | None:
        cls = self.backend_class(type_name)
        return None if cls is None else cls.Settings
