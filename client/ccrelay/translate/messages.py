"""Anthropic ``system`` + ``messages`` -> OpenAI chat ``messages``.

Decisions (what an OpenAI-compatible server can take, and what it cannot):

- The top-level ``system`` (a string or a list of text blocks) becomes ONE system message, the
  blocks' texts joined with a blank line: several leading system messages confuse some chat
  templates. ``role: "system"`` entries inside ``messages`` (Claude Code 2.x sends them)
  become system messages where they stand.
- A user turn's ``tool_result`` blocks become ``role: "tool"`` messages, in order, BEFORE the
  rest of that turn (OpenAI wants them right after the assistant's ``tool_calls``); the
  remaining blocks become one user message after them.
- Text-only content is sent as one string (blocks joined with a blank line), which every
  server and chat template accepts; content with images is sent as an array of parts.
- Images: a base64 source becomes a ``data:`` URL, a url source the URL itself. A
  ``tool_result`` cannot carry images in OpenAI chat (tool content is text only), so its images
  go into the user message that follows the tool messages, introduced by a line naming the
  ``tool_call_id``; the tool message says where they went.
- ``is_error: true`` on a ``tool_result`` prefixes its text with ``"Error: "``, the only way
  to say it in OpenAI chat.
- Documents: a plain-text source (``text``, or ``content`` blocks) becomes text, its title
  first; PDF, URL and file sources cannot be sent to an OpenAI chat model and are rejected
  with `InvalidRequestError`.
- Dropped: thinking and redacted_thinking blocks (another model's reasoning, signed for
  Anthropic only), server-tool and MCP blocks (``server_tool_use``, ``*_tool_result``,
  ``mcp_*``, ``container_upload``: they ran on Anthropic's side and cannot be replayed),
  ``cache_control`` and ``citations`` everywhere.
- An assistant turn: its texts become ``content`` (None when it only calls tools, as OpenAI
  specifies), its ``tool_use`` blocks ``tool_calls`` with compact-JSON ``arguments``.
"""

from __future__ import annotations

from typing import Any

from ccrelay.errors import InvalidRequestError
from ccrelay.translate._common import compact_json

_DROPPED_BLOCKS = frozenset(
    {"thinking", "redacted_thinking", "server_tool_use", "container_upload"}
)
_PLACEMENT = {
    "tool_use": "an assistant message",
    "tool_result": "a user message",
}


def _dropped(block_type: str) -> bool:
    return (
        block_type in _DROPPED_BLOCKS
        or block_type.startswith("mcp_")
        or (block_type.endswith("_tool_result") and block_type != "tool_result")
    )


def translate_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = request.get("system")
    if system is not None:
        text = _system_text(system, "system")
        if text:
            out.append({"role": "system", "content": text})
    messages = request.get("messages")
    if not isinstance(messages, list):
        raise InvalidRequestError("messages: must be a list of messages")
    if not messages:
        raise InvalidRequestError("messages: must hold at least one message")
    for i, message in enumerate(messages):
        path = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequestError(f"{path}: a message must be an object")
        role = message.get("role")
        content = message.get("content")
        if role == "user":
            out.extend(_user(content, path))
        elif role == "assistant":
            out.append(_assistant(content, path))
        elif role == "system":
            out.append({"role": "system", "content": _system_text(content, f"{path}.content")})
        else:
            raise InvalidRequestError(
                f'{path}.role: unknown role {role!r}; expected "user", "assistant" or "system"'
            )
    return out


def _system_text(system: object, path: str) -> str:
    if isinstance(system, str):
        return system
    texts = []
    for j, block in enumerate(_blocks(system, path)):
        if block["type"] != "text":
            raise InvalidRequestError(
                f"{path}[{j}]: system content must be text blocks, not {block['type']!r}"
            )
        texts.append(_text(block, f"{path}[{j}]"))
    return "\n\n".join(t for t in texts if t)


def _blocks(content: object, path: str) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        raise InvalidRequestError(f"{path}: must be a string or a list of content blocks")
    for j, block in enumerate(content):
        if not isinstance(block, dict):
            raise InvalidRequestError(f"{path}[{j}]: a content block must be an object")
        if not isinstance(block.get("type"), str):
            raise InvalidRequestError(f'{path}[{j}]: content block needs a "type"')
    return content


def _text(block: dict[str, Any], path: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise InvalidRequestError(f'{path}: text block needs a "text" string')
    return text


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Parts as OpenAI content: one string when all are text, else the list of parts."""
    if all(part["type"] == "text" for part in parts):
        return "\n\n".join(part["text"] for part in parts)
    return parts


def _user(content: object, path: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    blocks = _blocks(content, f"{path}.content")
    tool_messages: list[dict[str, Any]] = []
    carried: list[dict[str, Any]] = []  # images out of tool results
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        bpath = f"{path}.content[{j}]"
        if block["type"] == "tool_result":
            message, images = _tool_result(block, bpath)
            tool_messages.append(message)
            if images:
                carried.append(
                    {"type": "text", "text": f"Images from tool call {message['tool_call_id']}:"}
                )
                carried.extend(images)
        else:
            parts.extend(_parts(block, bpath, where="a user message"))
    out = tool_messages
    parts = [p for p in carried + parts if p["type"] != "text" or p["text"]]
    if parts or not tool_messages:
        out.append({"role": "user", "content": _content(parts) if parts else ""})
    return out


def _parts(block: dict[str, Any], path: str, *, where: str) -> list[dict[str, Any]]:
    """OpenAI content parts for a user-side block (top level, or inside a tool_result)."""
    block_type = block["type"]
    if block_type == "text":
        return [{"type": "text", "text": _text(block, path)}]
    if block_type == "image":
        return [_image(block, path)]
    if block_type == "document":
        return _document(block, path)
    if block_type == "search_result":
        texts = [block.get("title"), block.get("source")]
        texts += [b.get("text") for b in _blocks(block.get("content"), f"{path}.content")]
        return [{"type": "text", "text": "\n\n".join(t for t in texts if isinstance(t, str) and t)}]
    if block_type == "tool_reference" and where == "a tool result":
        return [{"type": "text", "text": f"Tool loaded: {block.get('tool_name', '')}"}]
    if _dropped(block_type):
        return []
    if block_type in _PLACEMENT:
        raise InvalidRequestError(
            f"{path}: a {block_type} block belongs in {_PLACEMENT[block_type]}, not in {where}"
        )
    raise InvalidRequestError(f"{path}: unsupported content block type {block_type!r} in {where}")


def _image(block: dict[str, Any], path: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise InvalidRequestError(f'{path}: image block needs a "source" object')
    kind = source.get("type")
    if kind == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        if not isinstance(media_type, str) or not isinstance(data, str):
            raise InvalidRequestError(
                f'{path}.source: a base64 image needs "media_type" and "data" strings'
            )
        url = f"data:{media_type};base64,{data}"
    elif kind == "url":
        given = source.get("url")
        if not isinstance(given, str) or not given:
            raise InvalidRequestError(f'{path}.source: a url image needs a "url" string')
        url = given
    else:
        raise InvalidRequestError(
            f"{path}.source: image source type {kind!r} cannot be sent to an OpenAI-compatible "
            'backend (use "base64" or "url")'
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _document(block: dict[str, Any], path: str) -> list[dict[str, Any]]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise InvalidRequestError(f'{path}: document block needs a "source" object')
    kind = source.get("type")
    title = block.get("title")
    parts: list[dict[str, Any]] = []
    if isinstance(title, str) and title:
        parts.append({"type": "text", "text": title})
    if kind == "text":
        data = source.get("data")
        if not isinstance(data, str):
            raise InvalidRequestError(f'{path}.source: a text document needs a "data" string')
        parts.append({"type": "text", "text": data})
    elif kind == "content":
        inner = source.get("content")
        if isinstance(inner, str):
            parts.append({"type": "text", "text": inner})
        else:
            for k, item in enumerate(_blocks(inner, f"{path}.source.content")):
                parts.extend(_parts(item, f"{path}.source.content[{k}]", where="a document"))
    else:
        media = source.get("media_type", kind)
        raise InvalidRequestError(
            f"{path}: {media} documents cannot be sent to an OpenAI-compatible backend; "
            "only plain-text documents are translated"
        )
    if len(parts) > 1 and all(p["type"] == "text" for p in parts):
        return [{"type": "text", "text": "\n\n".join(p["text"] for p in parts)}]
    return parts


def _tool_result(block: dict[str, Any], path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        raise InvalidRequestError(f'{path}: tool_result block needs a "tool_use_id"')
    content = block.get("content")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(content)
    elif content is not None:
        for k, item in enumerate(_blocks(content, f"{path}.content")):
            for part in _parts(item, f"{path}.content[{k}]", where="a tool result"):
                if part["type"] == "text":
                    texts.append(part["text"])
                else:
                    images.append(part)
    if images:
        texts.append(f"({len(images)} image(s) attached in the next user message)")
    text = "\n\n".join(t for t in texts if t)
    if block.get("is_error") is True:
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": tool_use_id, "content": text}, images


def _assistant(content: object, path: str) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(_blocks(content, f"{path}.content")):
        bpath = f"{path}.content[{j}]"
        block_type = block["type"]
        if block_type == "text":
            texts.append(_text(block, bpath))
        elif block_type == "tool_use":
            calls.append(_tool_call(block, bpath))
        elif _dropped(block_type):
            continue
        elif block_type in _PLACEMENT:
            raise InvalidRequestError(
                f"{bpath}: a {block_type} block belongs in {_PLACEMENT[block_type]}, "
                "not in an assistant message"
            )
        else:
            raise InvalidRequestError(
                f"{bpath}: unsupported content block type {block_type!r} in an assistant message"
            )
    text = "\n\n".join(t for t in texts if t)
    message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_call(block: dict[str, Any], path: str) -> dict[str, Any]:
    call_id, name = block.get("id"), block.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequestError(f'{path}: tool_use block needs an "id"')
    if not isinstance(name, str) or not name:
        raise InvalidRequestError(f'{path}: tool_use block needs a "name"')
    arguments = block.get("input", {})
    if not isinstance(arguments, dict):
        raise InvalidRequestError(f'{path}: tool_use "input" must be an object')
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": compact_json(arguments)},
    }
