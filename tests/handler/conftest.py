"""The handler tests' fixtures (`make_settings`, `service`) live in tests/conftest.py: the client's
RunPod tests run the real handler too."""

from __future__ import annotations

from collections.abc import Callable

from ccrelay_handler.settings import HandlerSettings

MakeSettings = Callable[..., HandlerSettings]
