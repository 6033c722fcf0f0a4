"""PDF documents as text, for backends that cannot read PDFs (every OpenAI-compatible one).

Claude Code's Read tool sends a PDF as a base64 ``document`` block, and the block stays in the
history for every later turn. Refusing it would fail that turn and every one after it, so the
PDF's text is sent instead, extracted with pypdf, capped in pages and characters, with a header
that says what was cut.

Extraction is CPU work, so it never runs on the event loop: a backend awaits `DocumentTexts.
prepare` (a worker thread) before translating, and the translation only looks the text up. The
texts of the last few PDFs are kept, since the same PDF comes back with every turn.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import logging
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

__all__ = ["DocumentTexts", "extract_pdf_text", "pdf_blocks"]

log = logging.getLogger("ccrelay.translate")

_KEEP = 16


def extract_pdf_text(data: str, *, max_pages: int, max_chars: int) -> str:
    """The text of a base64 PDF, with a header naming its size and what was left out."""
    from pypdf import PdfReader  # only requests with a PDF pay for the import

    try:
        raw = base64.b64decode(data, validate=False)
        reader = PdfReader(io.BytesIO(raw))
        total = len(reader.pages)
        pages = [
            (reader.pages[i].extract_text() or "").strip() for i in range(min(total, max_pages))
        ]
    except (binascii.Error, Exception):  # pypdf raises many kinds: a bad file must not fail a turn
        log.info("a PDF document could not be read; a placeholder was sent instead")
        return "[PDF document left out: it could not be read as a PDF]"
    notes = []
    if total > max_pages:
        notes.append(f"pages {max_pages + 1}-{total} left out")
    text = "\n\n".join(f"--- page {n} ---\n{page}" for n, page in enumerate(pages, 1) if page)
    if len(text) > max_chars:
        text = text[:max_chars]
        notes.append(f"text cut at {max_chars} characters")
    if not text:
        notes.append("no text layer (a scanned PDF?)")
    cut = f"; {', '.join(notes)}" if notes else ""
    header = f"[PDF document, {total} page(s), as text extracted by ccrelay{cut}]"
    return f"{header}\n{text}" if text else header


def pdf_blocks(request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every base64 PDF ``document`` block of a request, tool results included."""
    messages = request.get("messages")
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        yield from _pdfs_in(content)


def _pdfs_in(content: object) -> Iterator[dict[str, Any]]:
    if not isinstance(content, list):
        return
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "document":
            source = block.get("source")
            if (
                isinstance(source, dict)
                and source.get("type") == "base64"
                and source.get("media_type") == "application/pdf"
                and isinstance(source.get("data"), str)
            ):
                yield block
        elif kind == "tool_result":
            yield from _pdfs_in(block.get("content"))


class DocumentTexts:
    """The extracted texts of recent PDFs, keyed by their content's hash."""

    def __init__(self, *, max_pages: int, max_chars: int) -> None:
        self.max_pages = max_pages
        self.max_chars = max_chars
        self._texts: OrderedDict[str, str] = OrderedDict()

    async def prepare(self, request: dict[str, Any]) -> None:
        """Extract, in a worker thread, every PDF of `request` not seen lately."""
        for block in pdf_blocks(request):
            data = block["source"]["data"]
            key = _key(data)
            if key in self._texts:
                self._texts.move_to_end(key)
                continue
            text = await asyncio.to_thread(
                extract_pdf_text, data, max_pages=self.max_pages, max_chars=self.max_chars
            )
            self._texts[key] = text
            while len(self._texts) > _KEEP:
                self._texts.popitem(last=False)

    def text_of(self, data: str) -> str | None:
        """The text `prepare` extracted for this PDF data, or None."""
        return self._texts.get(_key(data))


def _key(data: str) -> str:
    return hashlib.sha256(data.encode("ascii", "replace")).hexdigest()
