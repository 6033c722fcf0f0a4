"""The Ollama releases the fake can be: what changed on the wire, and in which release.

`CURRENT` is the release the worker image pins (v0.40.1, 2026-10-07). Its wire behaviour is
read from ollama/ollama at v0.33.0-rc2 (commit fb30760996871fa9460115c753afd2c60d4ab0f7, the
newest source we could read; release notes to v0.40.1 name no later change to these paths).

`OLLAMA_0_13_5` (ollama/ollama tag v0.13.5, commit 732579159, 2025-12-18) is kept for where a
user may still run an old Ollama: the client's ``ollama`` backend pointed at their own local
Ollama, and the worker's HTTP mode started outside the image on a host's own ``ollama``
binary (``CCRELAY_OLLAMA_COMMAND``). The worker image itself only ever runs `CURRENT`.

Each switch names the commit (and first tag) that flipped it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CURRENT", "OLLAMA_0_13_5", "RELEASES", "Release", "linux_asset"]


@dataclass(frozen=True)
class Release:
    version: str
    split_stream: bool
    """8edecb5c6 (#17485, v0.32.6): role only in the first chunk, ``finish_reason`` on a chunk of
    its own with an empty delta, usage on a ``choices: []`` chunk after it, ``"length"`` kept
    after tool calls, one ``created`` for the whole stream (``middleware/openai.go``
    ``ChatWriter.writeResponse``, ``openai/openai.go`` ``ToStreamChunks``/``FinishChunk``).
    Before: every chunk ``{"role": "assistant", "content": ...}``, ``finish_reason`` on the
    done chunk, ``"tool_calls"`` over any reason once a tool call was sent."""
    split_reasoning: bool
    """97013a190 (#14648, v0.18.0): one response holding reasoning and content (or tool calls)
    goes out as two chunks, the reasoning first (its ``content`` omitted)."""
    stable_tool_indexes: bool
    """cc90a035a (#14484, v0.17.4): the qwen3-coder parser numbers tool calls 0, 1, 2...
    (``model/parsers/qwen3coder.go``); before, every call had ``index: 0``."""
    vram_default_context: bool
    """0334ffa62 (v0.15.5): the default context follows total VRAM, < 24 GiB 4096, 24-48 GiB
    32768, >= 48 GiB 262144 (``server/routes.go`` thresholds at 23 and 47 GiB,
    ``docs/context-length.mdx``); before, 4096 (``envconfig/config.go``)."""
    llama_server: bool
    """9db4bdbad (#16031, v0.30.0): GGML models run under llama-server. An over-long prompt on
    the rendered path is cut to about half the context (``llm/llama_server.go``
    ``contextShiftPromptLimit``); a GGUF model without an Ollama parser uses llama-server's
    own template, and a prompt that still does not fit gets llama-server's 400
    ``exceed_context_size_error`` (its raw body as the message). ``/api/chat`` honours
    ``truncate: false``."""
    url_image_message: bool
    """38eac40d5 (v0.14.2): an http(s) image URL gets its own 400 message."""
    zstd_tarball: bool
    """34d0c55ea (#13651, v0.14.0): Linux release assets are ``.tar.zst`` (``.tgz`` before)."""


CURRENT = Release(
    version="0.40.1",
    split_stream=True,
    split_reasoning=True,
    stable_tool_indexes=True,
    vram_default_context=True,
    llama_server=True,
    url_image_message=True,
    zstd_tarball=True,
)

OLLAMA_0_13_5 = Release(
    version="0.13.5",
    split_stream=False,
    split_reasoning=False,
    stable_tool_indexes=False,
    vram_default_context=False,
    llama_server=False,
    url_image_message=False,
    zstd_tarball=False,
)

RELEASES = {release.version: release for release in (CURRENT, OLLAMA_0_13_5)}

_FIRST_ZSTD = (0, 14, 0)


def linux_asset(version: str, arch: str) -> str:
    """The Linux tarball a release publishes for ``arch`` (amd64 | arm64): ``.tar.zst`` from
    v0.14.0 on, ``.tgz`` before (``.github/workflows/release.yaml``; ``scripts/install.sh``
    tries ``.tar.zst`` first and falls back to ``.tgz``)."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(-rc\d+)?", version)
    if match is None:
        raise ValueError(f"not an Ollama release version: {version!r}")
    if arch not in ("amd64", "arm64"):
        raise ValueError(f"Ollama publishes Linux tarballs for amd64 and arm64, not {arch!r}")
    numbers = tuple(int(part) for part in match.groups()[:3])
    suffix = ".tar.zst" if numbers >= _FIRST_ZSTD else ".tgz"
    return f"ollama-linux-{arch}{suffix}"
