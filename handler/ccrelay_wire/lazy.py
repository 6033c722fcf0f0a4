"""Lazy package exports (PEP 562), so importing a package loads only what is used.

`ccrelay --help` must not load aiohttp, pydantic or yaml, and the worker's health check must not
load the runpod SDK: every package ``__init__`` names its public surface here and each name is
imported on first access.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for `package`, whose public names live in `exports`' modules."""
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        importlib.import_module(package).__dict__[name] = value  # next access is a plain lookup
        return value

    def __dir__() -> list[str]:
        return sorted({*importlib.import_module(package).__dict__, *where})

    return __getattr__, __dir__
