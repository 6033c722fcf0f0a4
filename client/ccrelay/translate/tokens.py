"""A cheap, deterministic input-token estimate for ``count_tokens`` and ``message_start``.

Characters / 4 (rounded up) over every piece of text the model would read: the system
prompt, each message's text, tool_use names and inputs (as compact JSON), tool results,
thinking text, plain-text documents, and each tool's name, description and input schema (as
compact JSON). Images and non-text documents count a flat `IMAGE_TOKENS` each: their base64
length says nothing about their cost. It is a rough estimate, no tokenizer; real counts come
from the backend's usage.
"""

from __future__ import annotations

import math
from typing import Any

from ccrelay.errors import InvalidRequestError
from ccrelay.translate._common import compact_json

IMAGE_TOKENS = 1_600
"""About what Anthropic charges for a full-size (1.15 megapixel) image."""

_CHARS_PER_TOKEN = 4


def estimate_tokens(request: dict[str, Any]) -> int:
    """Estimated input tokens of an Anthropic Messages request; never raises on odd content."""
    if not isinstance(request, dict):
        raise InvalidRequestError("request: must be a JSON object")
    counter = _Counter()
    counter.content(request.get("system"))
    messages = request.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                counter.content(message.get("content"))
    tools = request.get("tools")
    if isinstance(tools, list):
        for tool in tools:
            if isinstance(tool, dict):
                for key in ("name", "description"):
                    counter.text(tool.get(key))
                if "input_schema" in tool:
                    counter.chars += len(compact_json(tool["input_schema"]))
    return math.ceil(counter.chars / _CHARS_PER_TOKEN) + counter.images * IMAGE_TOKENS


class _Counter:
    def __init__(self) -> None:
        self.chars = 0
        self.images = 0

    def text(self, value: object) -> None:
        if isinstance(value, str):
            self.chars += len(value)

    def content(self, content: object) -> None:
        if isinstance(content, str):
            self.chars += len(content)
        elif isinstance(content, list):
            for block in content:
                if isinstance(block, dict):
                    self.block(block)

    def block(self, block: dict[str, Any]) -> None:
        kind = block.get("type")
        if kind == "text":
            self.text(block.get("text"))
        elif kind in ("tool_use", "server_tool_use"):
            self.text(block.get("name"))
            self.chars += len(compact_json(block.get("input", {})))
        elif kind == "tool_result":
            self.content(block.get("content"))
        elif kind == "thinking":
            self.text(block.get("thinking"))
        elif kind == "image":
            self.images += 1
        elif kind == "document":
            source = block.get("source")
            source = source if isinstance(source, dict) else {}
            if source.get("type") == "text":
                self.text(block.get("title"))
                self.text(source.get("data"))
            elif source.get("type") == "content":
                self.text(block.get("title"))
                self.content(source.get("content"))
            else:
                self.images += 1
        elif kind == "search_result":
            self.text(block.get("title"))
            self.content(block.get("content"))
