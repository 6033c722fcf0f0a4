"""Anthropic ``system`` + ``messages`` -> OpenAI chat ``messages``.

Decisions (what an OpenAI-compatible server can take, and what it cannot):

- The top-level ``system`` (a string or a list of text blocks) becomes ONE leading system
  message, the blocks' texts joined with a blank line. Claude Code's first system block,
  ``x-anthropic-billing-header: cc_version=...; cc_entrypoint=...;`` with a per-session hash,
  is Anthropic-only metadata: it is dropped (unless `keep_billing`), so every session sends the
  same prompt prefix and the upstream's prefix cache and the worker's response cache work
  across sessions. It is dropped wherever system text starts with it: a system string, a system
  block, a ``role: "system"`` message (string or blocks).
- ``role: "system"`` entries inside ``messages`` (Claude Code 2.x sends them) keep their text
  but not their role: Ollama's qwen3-coder template keeps only the first system message, and a
  system message mid-conversation changes the prompt prefix. Each becomes a
  ``<system-reminder>`` text in the user turn at the same place (merged with an adjacent user
  message), the way Claude Code itself phrases reminders. Only a leading one, when there is no
  top-level ``system``, stays the system message.
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
- Images, documents and other user-side blocks: `ccrelay_translate.content` (what a backend
  cannot take becomes a short note, never an error).
- Thinking blocks in an assistant turn: their texts, joined, go as the message's
  ``reasoning`` or ``reasoning_content`` where the backend reads them
  (`Capabilities.reasoning_history`; vLLM and Ollama read ``reasoning``, DeepSeek needs
  ``reasoning_content`` on every tool-calling turn, so there it is sent even empty); else
  dropped. Signatures are dropped (only Anthropic can check them), and so are
  ``redacted_thinking`` blocks (encrypted for Anthropic: no other model can read them).
- Dropped: server-tool and MCP blocks (``server_tool_use``, ``*_tool_result``,
  ``mcp_*``, ``container_upload``: they ran on Anthropic's side and cannot be replayed),
  ``cache_control`` and ``citations`` everywhere.
- An assistant turn: its texts become ``content`` (None when it only calls tools, as OpenAI
  specifies), its ``tool_use`` blocks ``tool_calls`` with compact-JSON ``arguments``. Ids and
  names go back the way the upstream knows them (`ccrelay_translate.naming`): an id ccrelay
  encoded is decoded (in ``tool_result`` too), a name over 64 characters is shortened, a blank
  name (what a streamed call without one used to leave) is `UNNAMED_TOOL`.
"""

from __future__ import annotations

from typing import Any

from ccrelay_translate._common import compact_json
from ccrelay_translate.capabilities import Capabilities
from ccrelay_translate.content import blocks as _blocks
from ccrelay_translate.content import content_parts
from ccrelay_translate.content import text_of_block as _text
from ccrelay_translate.documents import DocumentTexts
from ccrelay_translate.errors import InvalidRequest, brief
from ccrelay_translate.naming import openai_tool_name, upstream_tool_id

BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"

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


def translate_messages(
    request: dict[str, Any],
    caps: Capabilities | None = None,
    documents: DocumentTexts | None = None,
    *,
    keep_billing: bool = False,
) -> list[dict[str, Any]]:
    caps = caps or Capabilities()
    out: list[dict[str, Any]] = []
    system = request.get("system")
    if system is not None:
        text = _system_text(system, "system", keep_billing=keep_billing)
        if text:
            out.append({"role": "system", "content": text})
    messages = request.get("messages")
    if not isinstance(messages, list):
        raise InvalidRequest("messages: must be a list of messages")
    if not messages:
        raise InvalidRequest("messages: must hold at least one message")
    turns = _Turns(caps, documents)
    for i, message in enumerate(messages):
        path = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"{path}: a message must be an object")
        role = message.get("role")
        content = message.get("content")
        if role == "user":
            out.extend(turns.user(content, path))
        elif role == "assistant":
            out.append(_assistant(content, path, caps))
        elif role == "system":
            text = _system_text(content, f"{path}.content", keep_billing=keep_billing)
            if not out:
                out.append({"role": "system", "content": text})
            elif text:
                out.append({"role": "user", "content": _reminder(text)})
        else:
            raise InvalidRequest(
                f'{path}.role: unknown role {brief(role)}; expected "user", "assistant" or "system"'
            )
    return _merge_user_turns(out)


def _reminder(text: str) -> str:
    return f"<system-reminder>\n{text}\n</system-reminder>"


def _merge_user_turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adjacent user messages (a reminder beside a turn) as one, as chat templates expect."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        last = merged[-1] if merged else None
        if last is not None and last["role"] == message["role"] == "user":
            merged[-1] = {"role": "user", "content": _join(last["content"], message["content"])}
        else:
            merged.append(message)
    return merged


def _join(first: str | list[dict[str, Any]], second: str | list[dict[str, Any]]) -> Any:
    if isinstance(first, str) and isinstance(second, str):
        return "\n\n".join(t for t in (first, second) if t)

    def parts(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"type": "text", "text": content}] if isinstance(content, str) else content

    return [p for p in parts(first) + parts(second) if p["type"] != "text" or p["text"]]


def _system_text(system: object, path: str, *, keep_billing: bool) -> str:
    if isinstance(system, str):
        return system if keep_billing else without_billing_header(system)
    texts = []
    for j, block in enumerate(_blocks(system, path)):
        if block["type"] != "text":
            raise InvalidRequest(
                f"{path}[{j}]: system content must be text blocks, not {brief(block['type'])}"
            )
        text = _text(block, f"{path}[{j}]")
        texts.append(text if keep_billing else without_billing_header(text))
    return "\n\n".join(t for t in texts if t)


def without_billing_header(text: str) -> str:
    """`text` without the ``x-anthropic-billing-header:`` line(s) it starts with (unchanged when
    it starts otherwise: only a leading line is the header, a mention further on is content)."""
    while text.startswith(BILLING_HEADER_PREFIX):
        _, _, text = text.partition("\n")
        text = text.lstrip("\n")
    return text


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Parts as OpenAI content: one string when all are text, else the list of parts."""
    if all(part["type"] == "text" for part in parts):
        return "\n\n".join(part["text"] for part in parts)
    return parts


class _Turns:
    """User turns under one backend's capabilities (and its prepared PDF texts)."""

    def __init__(self, caps: Capabilities, documents: DocumentTexts | None) -> None:
        self.caps = caps
        self.documents = documents

    def user(self, content: object, path: str) -> list[dict[str, Any]]:
        if isinstance(content, str):
            return [{"role": "user", "content": content}]
        tool_messages: list[dict[str, Any]] = []
        carried: list[dict[str, Any]] = []  # images out of tool results
        parts: list[dict[str, Any]] = []
        for j, block in enumerate(_blocks(content, f"{path}.content")):
            bpath = f"{path}.content[{j}]"
            if block["type"] == "tool_result":
                message, images = self.tool_result(block, bpath)
                tool_messages.append(message)
                if images:
                    carried.append(
                        {
                            "type": "text",
                            "text": f"Images from tool call {message['tool_call_id']}:",
                        }
                    )
                    carried.extend(images)
            else:
                parts.extend(self.parts(block, bpath, where="a user message"))
        out = tool_messages
        parts = [p for p in carried + parts if p["type"] != "text" or p["text"]]
        if parts or not tool_messages:
            out.append({"role": "user", "content": _content(parts) if parts else ""})
        return out

    def parts(self, block: dict[str, Any], path: str, *, where: str) -> list[dict[str, Any]]:
        """OpenAI content parts for a user-side block (top level, or inside a tool_result)."""
        found = content_parts(block, path, self.caps, self.documents, where=where)
        if found is not None:
            return found
        block_type = block["type"]
        if _dropped(block_type):
            return []
        if block_type in _PLACEMENT:
            raise InvalidRequest(
                f"{path}: a {block_type} block belongs in {_PLACEMENT[block_type]}, not in {where}"
            )
        raise InvalidRequest(
            f"{path}: unsupported content block type {brief(block_type)} in {where}"
        )

    def tool_result(
        self, block: dict[str, Any], path: str
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        tool_use_id = block.get("tool_use_id")
        if not isinstance(tool_use_id, str) or not tool_use_id:
            raise InvalidRequest(f'{path}: tool_result block needs a "tool_use_id"')
        tool_use_id = upstream_tool_id(tool_use_id)
        content = block.get("content")
        texts: list[str] = []
        images: list[dict[str, Any]] = []
        if isinstance(content, str):
            texts.append(content)
        elif content is not None:
            for k, item in enumerate(_blocks(content, f"{path}.content")):
                for part in self.parts(item, f"{path}.content[{k}]", where="a tool result"):
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


def _assistant(content: object, path: str, caps: Capabilities) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(_blocks(content, f"{path}.content")):
        bpath = f"{path}.content[{j}]"
        block_type = block["type"]
        if block_type == "text":
            texts.append(_text(block, bpath))
        elif block_type == "tool_use":
            calls.append(_tool_call(block, bpath))
        elif block_type == "thinking":
            thought = block.get("thinking")
            if isinstance(thought, str) and thought:
                thoughts.append(thought)
        elif _dropped(block_type):
            continue
        elif block_type in _PLACEMENT:
            raise InvalidRequest(
                f"{bpath}: a {block_type} block belongs in {_PLACEMENT[block_type]}, "
                "not in an assistant message"
            )
        else:
            raise InvalidRequest(
                f"{bpath}: unsupported content block type {brief(block_type)} in an assistant "
                "message"
            )
    text = "\n\n".join(t for t in texts if t)
    message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
    field = caps.reasoning_history
    if field != "off" and (thoughts or (calls and field == "reasoning_content")):
        message[field] = "\n\n".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_call(block: dict[str, Any], path: str) -> dict[str, Any]:
    call_id, name = block.get("id"), block.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f'{path}: tool_use block needs an "id"')
    if not isinstance(name, str):
        raise InvalidRequest(f'{path}: tool_use block needs a "name" string')
    arguments = block.get("input", {})
    if not isinstance(arguments, dict):
        raise InvalidRequest(f'{path}: tool_use "input" must be an object')
    return {
        "id": upstream_tool_id(call_id),
        "type": "function",
        "function": {"name": openai_tool_name(name), "arguments": compact_json(arguments)},
    }
