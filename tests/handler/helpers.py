"""Small helpers shared by the handler tests."""

from __future__ import annotations

import pytest

from ccrelay_handler.request import ChatRequest, parse_chat_request


def chat(text: str = "hello", **fields: object) -> ChatRequest:
    """A one-message chat request."""
    return parse_chat_request({"messages": [{"role": "user", "content": text}], **fields})


def cache_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The per-request lines the handler logged, in order."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "ccrelay.handler" and " cache=" in r.getMessage()
    ]
