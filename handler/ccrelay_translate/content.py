"""User-side content blocks (text, images, documents, search results) -> OpenAI content parts.

Whatever the backend cannot take (`Capabilities`) becomes a short text part naming what was left
out, never an error: a block Claude Code puts in the history comes back with every later turn,
so refusing it once would fail the whole session.

- ``text``: as is.
- ``image``: a base64 source of an accepted media type becomes a ``data:`` URL; a URL source is
  passed when the backend takes URLs; anything else is ``[image left out: ...]``.
- ``document``: plain text (``text``, ``content`` sources) becomes text, its title first; a
  base64 PDF becomes its extracted text (`DocumentTexts`); URL and file sources, and other
  media, are ``[document left out: ...]``.
- ``search_result``: its title, source and texts; ``tool_reference`` (in a tool result): one line.
"""

from __future__ import annotations

from typing import Any

from ccrelay_translate.capabilities import Capabilities
from ccrelay_translate.documents import DocumentTexts, extract_pdf_text
from ccrelay_translate.errors import InvalidRequest

__all__ = ["blocks", "content_parts", "text_of_block"]


def blocks(content: object, path: str) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        raise InvalidRequest(f"{path}: must be a string or a list of content blocks")
    for j, block in enumerate(content):
        if not isinstance(block, dict):
            raise InvalidRequest(f"{path}[{j}]: a content block must be an object")
        if not isinstance(block.get("type"), str):
            raise InvalidRequest(f'{path}[{j}]: content block needs a "type"')
    return content


def text_of_block(block: dict[str, Any], path: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise InvalidRequest(f'{path}: text block needs a "text" string')
    return text


def content_parts(
    block: dict[str, Any],
    path: str,
    caps: Capabilities,
    documents: DocumentTexts | None,
    *,
    where: str,
) -> list[dict[str, Any]] | None:
    """The OpenAI parts for one user-side block; None for a type this module does not handle."""
    block_type = block["type"]
    if block_type == "text":
        return [{"type": "text", "text": text_of_block(block, path)}]
    if block_type == "image":
        return [_image(block, path, caps)]
    if block_type == "document":
        return _document(block, path, caps, documents)
    if block_type == "search_result":
        texts = [block.get("title"), block.get("source")]
        texts += [b.get("text") for b in blocks(block.get("content"), f"{path}.content")]
        return [{"type": "text", "text": "\n\n".join(t for t in texts if isinstance(t, str) and t)}]
    if block_type == "tool_reference" and where == "a tool result":
        return [{"type": "text", "text": f"Tool loaded: {block.get('tool_name', '')}"}]
    return None


def _left_out(what: str, why: str) -> dict[str, Any]:
    return {"type": "text", "text": f"[{what} left out: {why}]"}


def _image(block: dict[str, Any], path: str, caps: Capabilities) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise InvalidRequest(f'{path}: image block needs a "source" object')
    kind = source.get("type")
    if kind == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        if not isinstance(media_type, str) or not isinstance(data, str):
            raise InvalidRequest(
                f'{path}.source: a base64 image needs "media_type" and "data" strings'
            )
        if media_type.lower() not in caps.image_types:
            return _left_out("image", f"this backend does not take {media_type} images")
        return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{data}"}}
    if kind == "url":
        url = source.get("url")
        if not isinstance(url, str) or not url:
            raise InvalidRequest(f'{path}.source: a url image needs a "url" string')
        if not caps.image_urls:
            return _left_out("image", f"this backend does not fetch image URLs ({url})")
        return {"type": "image_url", "image_url": {"url": url}}
    return _left_out("image", f"{kind} image sources cannot be sent to this backend")


def _document(
    block: dict[str, Any], path: str, caps: Capabilities, documents: DocumentTexts | None
) -> list[dict[str, Any]]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise InvalidRequest(f'{path}: document block needs a "source" object')
    kind = source.get("type")
    title = block.get("title")
    parts: list[dict[str, Any]] = []
    if isinstance(title, str) and title:
        parts.append({"type": "text", "text": title})
    if kind == "text":
        data = source.get("data")
        if not isinstance(data, str):
            raise InvalidRequest(f'{path}.source: a text document needs a "data" string')
        parts.append({"type": "text", "text": data})
    elif kind == "content":
        inner = source.get("content")
        if isinstance(inner, str):
            parts.append({"type": "text", "text": inner})
        else:
            for k, item in enumerate(blocks(inner, f"{path}.source.content")):
                inner_parts = content_parts(
                    item, f"{path}.source.content[{k}]", caps, documents, where="a document"
                )
                parts.extend(inner_parts or [])
    elif kind == "base64" and source.get("media_type") == "application/pdf":
        data = source.get("data")
        if not isinstance(data, str):
            raise InvalidRequest(f'{path}.source: a base64 document needs a "data" string')
        text = documents.text_of(data) if documents is not None else None
        if text is None:  # not prepared (a caller outside a backend): extract here
            text = extract_pdf_text(
                data, max_pages=caps.pdf_max_pages, max_chars=caps.pdf_max_chars
            )
        parts.append({"type": "text", "text": text})
    else:
        media = source.get("media_type") or kind
        parts.append(_left_out("document", f"{media} documents cannot be sent to this backend"))
    if len(parts) > 1 and all(p["type"] == "text" for p in parts):
        return [{"type": "text", "text": "\n\n".join(p["text"] for p in parts)}]
    return parts
