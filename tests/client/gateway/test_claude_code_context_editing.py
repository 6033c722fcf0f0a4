"""Issue 23 (c), and (a) as it happens on a small window, with the real Claude Code 2.1.332
through `ccrelay code`: long tool-using sessions on a small context window.

Claude Code 2.1.332 asks only for ``clear_thinking_20251015`` (``keep: all``), so by itself
nothing clears its old tool results. The backend's default `ClearToolUsesPolicy` (trigger: 0.6
of the prompt limit, keep 3, clear at least 4000 tokens) adds a ``clear_tool_uses_20250919``
edit. The fake model (`Reader`) reads `READS` files of a few KB one by one, then answers.

- Saving: the session runs twice on a 48k window, with the default policy and with
  ``clear_tool_uses: null``; the model reads fewer prompt tokens with it, the cleared results
  hold the placeholder, and the session completes both ways. The fake Ollama
  (tests/fakes/ollama/) reports what the model read of every prompt (its usage), and would cut
  a prompt past its window silently (``truncated``): it must not.
- Past a 32k window, the gateway refuses the prompt in the words Claude Code compacts on
  (2.1.332 takes no ``CLAUDE_CODE_AUTO_COMPACT_WINDOW`` under 100k, so this is how it compacts
  there), and the compaction goes where ``routing.classes.compaction`` says.
- With tool clearing the same session fits the window and never compacts: the router holds
  what the model reads (`ccrelay.backends.context_policy.tokens_after_edits`), not the whole
  history, against the window.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from ccrelay_translate import CLEARED_TOOL_RESULT
from tests.claude_code_hints import CURRENT, ccrelay_code, request_records
from tests.fakes.ollama.models import tokens_of
from tests.fakes.openai_compat import Answer, ProfiledServer

pytestmark = [pytest.mark.claude_cli, pytest.mark.slow]

READS = 16
FILE_LINES = 60
WINDOW = 49_152
DONE = "Read every file: CONTEXT-SESSION-DONE"
COMPACTION_PROMPT = "CRITICAL: Respond with TEXT ONLY"
SUMMARY = "Summary: the modules were read. COMPACTED-SESSION"


def tool_names(body: dict[str, Any]) -> set[str]:
    return {t["function"]["name"] for t in body.get("tools") or []}


def common_prefix(a: list[Any], b: list[Any]) -> list[Any]:
    same = 0
    while same < min(len(a), len(b)) and a[same] == b[same]:
        same += 1
    return a[:same]


def tool_results(body: dict[str, Any]) -> list[str]:
    return [str(m.get("content")) for m in body["messages"] if m["role"] == "tool"]


class Reader:
    """The fake model: Read file N while fewer than `READS` results came back, then answer; a
    compaction is answered with a summary, and a session that was compacted is done."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def __call__(self, body: dict[str, Any]) -> Answer:
        text = json.dumps(body["messages"])
        if COMPACTION_PROMPT in text:
            return Answer(text=SUMMARY)
        if body.get("response_format"):  # the session title
            return Answer(text=json.dumps({"title": "Read the files"}))
        if "Read" not in tool_names(body):
            return Answer(text="Side request answered.")
        step = len(tool_results(body))
        if step >= READS or "COMPACTED-SESSION" in text:
            return Answer(text=DONE)
        path = self.workdir / f"module_{step:02d}.py"
        return Answer(tool_calls=[("Read", json.dumps({"file_path": str(path)}))])


def workspace(tmp_path: Path, name: str) -> tuple[Path, Path]:
    workdir, home = tmp_path / f"work-{name}", tmp_path / f"home-{name}"
    workdir.mkdir()
    home.mkdir()
    for n in range(READS):
        lines = [
            f"def function_{n}_{i}(value):  # step {i} of module {n}: keeps the value in range"
            for i in range(FILE_LINES)
        ]
        (workdir / f"module_{n:02d}.py").write_text("\n".join(lines) + "\n")
    return workdir, home


PROMPT = f"Read module_00.py to module_{READS - 1:02d}.py one at a time, then say you are done."


async def read_session(claude: Path, workdir: Path, home: Path, config: dict[str, Any]) -> None:
    """The session through `ccrelay code`; it must complete."""
    run = await ccrelay_code(claude, workdir, home, config, "-p", PROMPT, "--allowedTools", "Read")
    assert run.returncode == 0, f"stdout: {run.stdout}\nstderr: {run.stderr}"
    assert DONE in run.stdout, run.stdout


def ollama_backend(server: ProfiledServer, window: int, **fields: Any) -> dict[str, Any]:
    return {"type": "ollama", "base_url": server.base_url, "context_window": window, **fields}


async def run_session(
    claude: Path, tmp_path: Path, profiled: Any, name: str, policy: dict[str, Any] | None
) -> tuple[ProfiledServer, list[dict[str, Any]], list[int], Path]:
    """The session on the 48k window: (the fake, its main request bodies, the prompt tokens
    the model read of each, the run's HOME)."""
    workdir, home = workspace(tmp_path, name)
    server: ProfiledServer = await profiled("ollama", Reader(workdir), context_length=WINDOW)
    fields = {} if policy is None else {"context_editing": policy}
    backend = ollama_backend(server, WINDOW, **fields)
    await read_session(claude, workdir, home, {"backends": {"local": backend}})
    assert server.profile.truncated == 0  # Ollama never had to cut a prompt
    main = [
        (body, tokens)
        for body, tokens in zip(server.requests, map(tokens_of, server.seen_prompts), strict=True)
        if "Read" in tool_names(body)
    ]
    assert [len(tool_results(body)) for body, _ in main] == list(range(READS + 1))
    return server, [body for body, _ in main], [tokens for _, tokens in main], home


async def test_tool_clearing_saves_prompt_tokens_in_a_long_session(
    claude_release: Any, tmp_path: Path, profiled: Any
) -> None:
    claude = claude_release(CURRENT)
    _, on_bodies, on, on_home = await run_session(claude, tmp_path, profiled, "on", None)
    _, off_bodies, off, _ = await run_session(
        claude, tmp_path, profiled, "off", {"clear_tool_uses": None}
    )
    saved = sum(off) - sum(on)
    print(
        f"\n{READS} Read rounds, {WINDOW}-token window: the model read {sum(on)} prompt tokens "
        f"with tool clearing, {sum(off)} without (saved {saved}, {saved / sum(off):.0%}); "
        f"last request {on[-1]} vs {off[-1]}"
    )
    # the same prompts until the trigger, then every one smaller: the last under half
    edited = [n for n, (a, b) in enumerate(zip(on, off, strict=True)) if a != b]
    assert edited, (on, off)
    first = edited[0]
    assert first > 3 and edited == list(range(first, READS + 1)), (on, off)
    assert all(a < b for a, b in zip(on[first:], off[first:], strict=True))
    assert on[-1] < off[-1] / 2
    assert saved > sum(off) / 5
    # from the trigger on, every result but the last 3 holds the placeholder; never without
    for body in on_bodies[first:]:
        results = tool_results(body)
        assert results[:-3] == [CLEARED_TOOL_RESULT] * (len(results) - 3)
        assert all("def function_" in r for r in results[-3:])
    assert CLEARED_TOOL_RESULT not in json.dumps(on_bodies[:first] + off_bodies)
    # after the first clearing, each prompt starts as the one before did (one more result
    # cleared, further on), so an engine's prefix cache keeps most of it
    shares = [
        tokens_of(common_prefix(before["messages"], after["messages"]))
        / tokens_of(before["messages"])
        for before, after in itertools.pairwise(on_bodies[first:])
    ]
    print("prefix kept from one edited prompt to the next:", [f"{s:.0%}" for s in shares])
    assert min(shares) > 0.5, shares
    # Claude Code was told what the model read, as Anthropic reports it: the edited prompt
    records = [r for r in request_records(on_home / "state") if r["request_class"] == "main"]
    assert [r["tokens_in"] for r in records] == on


SMALL_WINDOW = 32_768


async def past_the_window(
    claude: Path, tmp_path: Path, profiled: Any, name: str, **fields: Any
) -> tuple[ProfiledServer, ProfiledServer, list[dict[str, Any]], list[str]]:
    """The session on a 32k window (`fields` added to its backend), compactions routed to a
    second backend: (the main fake, the summarizer fake, the gateway's request records, its log)."""
    workdir, home = workspace(tmp_path, name)
    reader = Reader(workdir)
    server: ProfiledServer = await profiled("ollama", reader, context_length=SMALL_WINDOW)
    summarizer: ProfiledServer = await profiled("openai", reader)
    config = {
        "active": "local",
        "backends": {
            "local": ollama_backend(server, SMALL_WINDOW, **fields),
            "summarizer": {
                "type": "openai",
                "base_url": summarizer.base_url,
                "model": "fake-model",
            },
        },
        "routing": {"classes": {"compaction": {"backend": "summarizer"}}},
    }
    await read_session(claude, workdir, home, config)
    assert server.profile.truncated == 0
    (log_file,) = (home / "state" / "logs").glob("code-*.log")
    log = log_file.read_text(encoding="utf-8").splitlines()
    return server, summarizer, request_records(home / "state"), log


async def test_past_the_window_the_compaction_goes_to_its_class_backend(
    claude_release: Any, tmp_path: Path, profiled: Any
) -> None:
    off = {"clear_tool_uses": None}  # the prompt outgrows the window whatever the router holds
    server, summarizer, records, log = await past_the_window(
        claude_release(CURRENT), tmp_path, profiled, "compact", context_editing=off
    )
    # the gateway refused a main prompt in the words Claude Code compacts on (its access
    # log: a refusal before any backend leaves no latency record) ...
    access = [line for line in log if " ccrelay.gateway: POST /v1/messages " in line]
    refused = [n for n, line in enumerate(access) if " 400 " in line]
    assert refused and all(" class=main " in access[n] for n in refused), access
    # ... Claude Code compacted, on the backend its class names, and finished after it
    compacted = [n for n, line in enumerate(access) if " class=compaction " in line]
    assert compacted and compacted[0] > refused[0], access
    compacting = [r for r in records if r["request_class"] == "compaction"]
    assert {(r["route"], r["backend"], r["outcome"]) for r in compacting} == {
        ("class:compaction", "summarizer", "ok")
    }
    assert all(COMPACTION_PROMPT in json.dumps(b) for b in summarizer.requests)
    assert len(summarizer.requests) == len(compacting)
    assert not [b for b in server.requests if COMPACTION_PROMPT in json.dumps(b)]
    assert "COMPACTED-SESSION" in json.dumps(server.requests[-1]["messages"])


async def test_with_tool_clearing_the_session_fits_the_window_without_compacting(
    claude_release: Any, tmp_path: Path, profiled: Any
) -> None:
    _, summarizer, records, log = await past_the_window(
        claude_release(CURRENT), tmp_path, profiled, "fits"
    )
    assert not [line for line in log if "POST /v1/messages 400 " in line]
    assert summarizer.requests == []
    assert {r["request_class"] for r in records} == {"main"}
