"""Context editing done for the backends that are not Anthropic (issue 23): Anthropic's
documented semantics, its response shape checked with the official SDK's types, and a request
that stays valid (every tool_use answered, every cache breakpoint kept)."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from anthropic.types.beta import BetaContextManagementResponse, BetaRawMessageDeltaEvent

from ccrelay_translate import (
    CLEARED_TOOL_RESULT,
    anthropic_to_openai_request,
    apply_context_management,
    estimate_tokens,
)
from ccrelay_translate.errors import InvalidRequest

from .samples import claude_code_request

THINKING = "clear_thinking_20251015"
TOOL_USES = "clear_tool_uses_20250919"
CLAUDE_CODE_EDITS = {"edits": [{"type": THINKING, "keep": "all"}]}  # what 2.1.332 sends


def count(kind: str, value: int) -> dict[str, Any]:
    return {"type": kind, "value": value}


def result_text(n: int, size: int) -> str:
    return "".join(f"{k:6d}\tline {k} of file {n}: value = compute({k})\n" for k in range(size))


def tool_round(n: int, *, name: str = "Read", size: int = 40, thinking: bool = True) -> list[Any]:
    """One tool loop step: the assistant's call (with thinking) and the user's tool_result."""
    call: list[dict[str, Any]] = [
        {"type": "text", "text": f"Step {n}."},
        {"type": "tool_use", "id": f"toolu_{n:03d}", "name": name, "input": {"path": f"/r/{n}"}},
    ]
    if thinking:
        call.insert(0, {"type": "thinking", "thinking": f"Plan {n}. " * 20, "signature": "s"})
    result = {
        "type": "tool_result",
        "tool_use_id": f"toolu_{n:03d}",
        "content": result_text(n, size),
    }
    return [{"role": "assistant", "content": call}, {"role": "user", "content": [result]}]


def session(rounds: int, edits: list[dict[str, Any]], **round_options: Any) -> dict[str, Any]:
    messages: list[Any] = [{"role": "user", "content": "Fix the failing tests."}]
    for n in range(rounds):
        messages += tool_round(n, **round_options)
    return {
        "model": "claude-opus-4-8",
        "max_tokens": 1000,
        "messages": messages,
        "context_management": {"edits": edits},
    }


def conversation(messages: list[Any], *edits: dict[str, Any]) -> dict[str, Any]:
    return {"max_tokens": 10, "messages": messages, "context_management": {"edits": list(edits)}}


def apply(request: dict[str, Any], **options: Any) -> tuple[dict[str, Any], list[Any] | None]:
    before = copy.deepcopy(request)
    out, applied = apply_context_management(request, count_tokens=estimate_tokens, **options)
    assert request == before  # the caller's request is never changed
    assert "context_management" not in out
    if applied is not None:
        BetaContextManagementResponse.model_validate({"applied_edits": applied})
        assert_valid(out, before)
    return out, applied


def assert_valid(out: dict[str, Any], original: dict[str, Any]) -> None:
    """Still a request Anthropic takes: each tool_use answered in the next user message, no
    empty content, the same cache breakpoints; and one the translation takes."""
    messages = out["messages"]
    for i, message in enumerate(messages):
        content = message["content"]
        assert content, f"messages[{i}] is empty"
        if message["role"] != "assistant" or isinstance(content, str):
            continue
        ids = {b["id"] for b in content if b["type"] == "tool_use"}
        if ids and i + 1 < len(messages):
            answered = {b.get("tool_use_id") for b in messages[i + 1]["content"]}
            assert ids <= answered, f"messages[{i}]: a tool_use lost its result"
    assert str(out).count("cache_control") == str(original).count("cache_control")
    anthropic_to_openai_request(out, model="m")


def results(out: dict[str, Any]) -> list[Any]:
    return [
        b["content"]
        for m in out["messages"]
        if m["role"] == "user" and isinstance(m["content"], list)
        for b in m["content"]
        if b["type"] == "tool_result"
    ]


def thinking_blocks(message: dict[str, Any]) -> int:
    content = message["content"]
    return sum(1 for b in content if b["type"] in ("thinking", "redacted_thinking"))


# -- the field itself ---------------------------------------------------------------------------


def test_no_context_management_is_the_request_itself() -> None:
    request = session(3, [])
    del request["context_management"]
    assert apply_context_management(request, count_tokens=estimate_tokens) == (request, None)


def test_claude_codes_own_edit_changes_nothing_and_reports_an_empty_list() -> None:
    request = {**claude_code_request(), "context_management": CLAUDE_CODE_EDITS}
    out, applied = apply(request)
    assert applied == []
    assert out["messages"] is request["messages"]  # nothing copied
    assert {**out, "context_management": CLAUDE_CODE_EDITS} == request


def test_the_reply_event_takes_the_list_at_its_top_level() -> None:
    _, applied = apply(session(8, [{"type": TOOL_USES, "trigger": count("tool_uses", 2)}]))
    event = BetaRawMessageDeltaEvent.model_validate(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 5},
            "context_management": {"applied_edits": applied},
        }
    )
    assert event.context_management is not None
    (edit,) = event.context_management.applied_edits
    assert edit.type == TOOL_USES


# -- refusals, as Anthropic's -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("context_management", "path"),
    [
        ("all", "context_management:"),
        ({"edits": {"type": THINKING}}, "context_management.edits:"),
        ({"edits": ["x"]}, "context_management.edits[0]:"),
        ({"edits": [{"keep": "all"}]}, "context_management.edits[0].type:"),
        ({"edits": [{"type": TOOL_USES}, {"type": THINKING}]}, "context_management.edits[1]:"),
        ({"edits": [{"type": THINKING, "keep": "none"}]}, "context_management.edits[0].keep:"),
        (
            {"edits": [{"type": THINKING, "keep": count("thinking_turns", 0)}]},
            "context_management.edits[0].keep.value:",
        ),
        (
            {"edits": [{"type": THINKING, "keep": {"type": "thinking_turns"}}]},
            "context_management.edits[0].keep.value:",
        ),
        (
            {"edits": [{"type": TOOL_USES, "trigger": count("messages", 5)}]},
            "context_management.edits[0].trigger.type:",
        ),
        (
            {"edits": [{"type": TOOL_USES, "trigger": {"type": "input_tokens"}}]},
            "context_management.edits[0].trigger.value:",
        ),
        (
            {"edits": [{"type": TOOL_USES, "keep": count("tool_uses", -1)}]},
            "context_management.edits[0].keep.value:",
        ),
        (
            {"edits": [{"type": TOOL_USES, "keep": count("tool_uses", True)}]},
            "context_management.edits[0].keep.value:",
        ),
        (
            {"edits": [{"type": TOOL_USES, "keep": 3}]},
            "context_management.edits[0].keep:",
        ),
        (
            {"edits": [{"type": TOOL_USES, "clear_at_least": count("tool_uses", 1)}]},
            "context_management.edits[0].clear_at_least.type:",
        ),
        (
            {"edits": [{"type": TOOL_USES, "exclude_tools": "Read"}]},
            "context_management.edits[0].exclude_tools:",
        ),
        (
            {"edits": [{"type": TOOL_USES, "clear_tool_inputs": [1]}]},
            "context_management.edits[0].clear_tool_inputs:",
        ),
    ],
)
def test_an_edit_list_anthropic_refuses_is_refused_naming_the_field(
    context_management: Any, path: str
) -> None:
    request = {**session(2, []), "context_management": context_management}
    with pytest.raises(InvalidRequest) as caught:
        apply_context_management(request, count_tokens=estimate_tokens)
    assert caught.value.message.startswith(path), caught.value.message
    assert len(caught.value.message) < 200


def test_an_unknown_edit_type_is_passed_over_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    edits = [
        {"type": THINKING, "keep": count("thinking_turns", 1)},
        {"type": "compact_20260112", "trigger": count("input_tokens", 50_000)},
        {"type": TOOL_USES, "trigger": count("tool_uses", 2)},
    ]
    messages = [*closed_turns(2, 2), {"role": "user", "content": "Next?"}]
    with caplog.at_level(logging.INFO, logger="ccrelay.translate"):
        _, applied = apply(conversation(messages, *edits))
    assert applied is not None
    assert [edit["type"] for edit in applied] == [THINKING, TOOL_USES]
    assert "compact_20260112" in caplog.text
    assert "passed over" in caplog.text


# -- clear_thinking_20251015 ------------------------------------------------------------------


@pytest.mark.parametrize("keep", ["all", {"type": "all"}])
def test_keep_all_clears_no_thinking(keep: Any) -> None:
    request = session(5, [{"type": THINKING, "keep": keep}])
    out, applied = apply(request)
    assert applied == []
    assert out["messages"] is request["messages"]


def closed_turns(turns: int, steps: int) -> list[Any]:
    """`turns` user requests, each answered by a tool loop of `steps` calls and a final text."""
    messages: list[Any] = []
    for t in range(turns):
        messages.append({"role": "user", "content": [{"type": "text", "text": f"Task {t}"}]})
        for s in range(steps):
            messages += tool_round(t * 10 + s)
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Done thinking. " * 10, "signature": "s"},
                    {"type": "text", "text": f"Task {t} done."},
                ],
            }
        )
    return messages


def test_keep_n_counts_tool_loops_as_turns_and_reports_messages_cleared() -> None:
    # three turns of (2 tool calls + a final answer) = 3 assistant messages with thinking each
    messages = [*closed_turns(3, 2), {"role": "user", "content": "Next?"}]
    request = conversation(messages, {"type": THINKING, "keep": count("thinking_turns", 2)})
    out, applied = apply(request)
    assert applied is not None
    (edit,) = applied
    assert edit["type"] == THINKING
    assert edit["cleared_thinking_turns"] == 3  # the first turn's three assistant messages
    assert edit["cleared_input_tokens"] == estimate_tokens(request) - estimate_tokens(out)
    assert edit["cleared_input_tokens"] > 0
    assistants = [m for m in out["messages"] if m["role"] == "assistant"]
    assert [thinking_blocks(m) for m in assistants] == [0, 0, 0, 1, 1, 1, 1, 1, 1]


def test_mid_tool_loop_the_whole_loop_keeps_its_thinking() -> None:
    # an earlier turn, then a tool loop in progress (the request ends with a tool_result)
    messages = [*closed_turns(1, 1), {"role": "user", "content": "Now the parser."}]
    for n in range(50, 54):
        messages += tool_round(n)
    request = conversation(messages, {"type": THINKING, "keep": count("thinking_turns", 1)})
    out, applied = apply(request)
    assert applied is not None
    assert applied[0]["cleared_thinking_turns"] == 2
    assistants = [m for m in out["messages"] if m["role"] == "assistant"]
    assert [thinking_blocks(m) for m in assistants] == [0, 0, 1, 1, 1, 1]


def test_the_turns_anthropic_counted_in_a_probe() -> None:
    # [user, a(thinking, tool_use), result, a(thinking, text), user, a(tool_use), result]:
    # Anthropic reported cleared_thinking_turns 2 for keep thinking_turns 1
    messages = [*closed_turns(1, 1), {"role": "user", "content": "And beta?"}]
    messages += tool_round(99, thinking=False)
    request = conversation(messages, {"type": THINKING, "keep": count("thinking_turns", 1)})
    _, applied = apply(request)
    assert applied is not None
    assert applied[0]["cleared_thinking_turns"] == 2


def test_default_keep_is_one_turn_and_redacted_thinking_goes_too() -> None:
    messages = [*closed_turns(2, 0), {"role": "user", "content": "Next?"}]
    messages[1]["content"].insert(0, {"type": "redacted_thinking", "data": "EmwK"})
    request = conversation(messages, {"type": THINKING})
    out, applied = apply(request)
    assert applied is not None
    assert applied[0]["cleared_thinking_turns"] == 1
    assert [thinking_blocks(m) for m in out["messages"] if m["role"] == "assistant"] == [0, 1]


def test_an_assistant_message_of_thinking_only_is_dropped() -> None:
    messages: list[Any] = [
        {"role": "user", "content": "Hi"},
        {
            "role": "assistant",
            "content": [{"type": "thinking", "thinking": "Hmm", "signature": "s"}],
        },
        {"role": "user", "content": "Still there?"},
        {"role": "assistant", "content": "Yes."},
        {"role": "user", "content": "Good."},
    ]
    request = conversation(messages, {"type": THINKING, "keep": count("thinking_turns", 1)})
    out, applied = apply(request)
    assert applied is not None
    assert applied[0]["cleared_thinking_turns"] == 1
    assert [m["role"] for m in out["messages"]] == ["user", "user", "assistant", "user"]


# -- clear_tool_uses_20250919 -----------------------------------------------------------------


def test_default_trigger_is_100000_input_tokens_exceeded() -> None:
    small = session(10, [{"type": TOOL_USES}])
    assert estimate_tokens(small) < 100_000
    assert apply(small)[1] == []
    big = session(10, [{"type": TOOL_USES}], size=3000)
    assert estimate_tokens(big) > 100_000
    _, applied = apply(big)
    assert applied is not None
    assert applied[0]["cleared_tool_uses"] == 7  # all but the default 3


def test_an_input_tokens_trigger_must_be_exceeded_not_reached() -> None:
    request = session(6, [])
    tokens = estimate_tokens(request)
    request["context_management"]["edits"] = [
        {"type": TOOL_USES, "trigger": count("input_tokens", tokens)}
    ]
    assert apply(request)[1] == []
    request["context_management"]["edits"][0]["trigger"]["value"] = tokens - 1
    _, applied = apply(request)
    assert applied is not None
    assert applied[0]["cleared_tool_uses"] == 3


def test_the_callers_count_is_used_when_given() -> None:
    request = session(6, [{"type": TOOL_USES, "trigger": count("input_tokens", 3000)}])
    assert estimate_tokens(request) > 3000
    assert apply(request, input_tokens=2000)[1] == []  # the caller says: not over the trigger

    def characters(body: dict[str, Any]) -> int:
        return len(str(body))

    out, applied = apply_context_management(request, count_tokens=characters)
    assert applied is not None
    before = {k: v for k, v in request.items() if k != "context_management"}
    assert applied[0]["cleared_input_tokens"] == characters(before) - characters(out)


def test_a_tool_uses_trigger_counts_tool_use_blocks() -> None:
    edits = [{"type": TOOL_USES, "trigger": count("tool_uses", 5), "keep": count("tool_uses", 2)}]
    assert apply(session(5, edits))[1] == []
    out, applied = apply(session(6, edits))
    assert applied is not None
    assert applied[0]["cleared_tool_uses"] == 4
    assert results(out)[:4] == [CLEARED_TOOL_RESULT] * 4
    assert results(out)[4:] == [result_text(4, 40), result_text(5, 40)]


def test_the_oldest_are_cleared_the_tool_use_kept_and_the_tokens_reported() -> None:
    request = session(5, [{"type": TOOL_USES, "trigger": count("tool_uses", 0)}])
    out, applied = apply(request)
    assert applied == [
        {
            "type": TOOL_USES,
            "cleared_tool_uses": 2,
            "cleared_input_tokens": estimate_tokens(request) - estimate_tokens(out),
        }
    ]
    assert results(out) == [CLEARED_TOOL_RESULT] * 2 + [result_text(n, 40) for n in (2, 3, 4)]
    uses = [b for m in out["messages"][1::2] for b in m["content"] if b["type"] == "tool_use"]
    assert [use["input"] for use in uses] == [{"path": f"/r/{n}"} for n in range(5)]


def cleared_tokens(request: dict[str, Any]) -> int:
    applied = apply(request)[1]
    assert applied
    tokens: int = applied[0]["cleared_input_tokens"]
    return tokens


def test_clear_at_least_skips_an_edit_that_cannot_clear_enough() -> None:
    request = session(5, [])
    edit: dict[str, Any] = {"type": TOOL_USES, "trigger": count("tool_uses", 0)}
    request["context_management"]["edits"] = [edit]
    cleared = cleared_tokens(request)
    edit["clear_at_least"] = count("input_tokens", cleared + 1)
    out, applied = apply(request)
    assert applied == []
    assert results(out) == [result_text(n, 40) for n in range(5)]
    edit["clear_at_least"] = count("input_tokens", cleared)
    assert cleared_tokens(request) == cleared


def test_excluded_tools_are_never_cleared_and_still_count_for_keep() -> None:
    request = session(0, [])
    for n, name in enumerate(["Read", "Bash", "Read", "Bash", "Read", "Read"]):
        request["messages"] += tool_round(n, name=name)
    request["context_management"]["edits"] = [
        {
            "type": TOOL_USES,
            "trigger": count("tool_uses", 0),
            "keep": count("tool_uses", 2),
            "exclude_tools": ["Bash"],
        }
    ]
    out, applied = apply(request)
    assert applied is not None
    assert applied[0]["cleared_tool_uses"] == 2
    cleared = [content == CLEARED_TOOL_RESULT for content in results(out)]
    assert cleared == [True, False, True, False, False, False]


@pytest.mark.parametrize(
    ("clear_tool_inputs", "emptied"),
    [(None, []), (False, []), (True, [0, 1, 2]), (["Bash"], [1])],
)
def test_clear_tool_inputs(clear_tool_inputs: Any, emptied: list[int]) -> None:
    request = session(0, [])
    for n, name in enumerate(["Read", "Bash", "Edit", "Read"]):
        request["messages"] += tool_round(n, name=name)
    edit = {"type": TOOL_USES, "trigger": count("tool_uses", 0), "keep": count("tool_uses", 1)}
    if clear_tool_inputs is not None:
        edit["clear_tool_inputs"] = clear_tool_inputs
    request["context_management"]["edits"] = [edit]
    out, applied = apply(request)
    assert applied is not None
    assert applied[0]["cleared_tool_uses"] == 3
    uses = [b for m in out["messages"][1::2] for b in m["content"] if b["type"] == "tool_use"]
    assert [n for n, use in enumerate(uses) if use["input"] == {}] == emptied
    assert all(use["id"] == f"toolu_{n:03d}" for n, use in enumerate(uses))


def test_a_cleared_result_keeps_its_block_its_shape_and_its_cache_breakpoint() -> None:
    request = session(4, [{"type": TOOL_USES, "trigger": count("tool_uses", 0)}])
    first = request["messages"][2]["content"][0]
    first["is_error"] = True
    first["cache_control"] = {"type": "ephemeral"}
    request["messages"][4]["content"][0]["content"] = [
        {"type": "text", "text": result_text(1, 30)},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iV"}},
        {"type": "text", "text": "caption", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ]
    request["context_management"]["edits"][0]["keep"] = count("tool_uses", 2)
    out, applied = apply(request)
    assert applied is not None
    assert applied[0]["cleared_tool_uses"] == 2
    cleared = out["messages"][2]["content"][0]
    assert cleared == {
        "type": "tool_result",
        "tool_use_id": "toolu_000",
        "content": CLEARED_TOOL_RESULT,
        "is_error": True,
        "cache_control": {"type": "ephemeral"},
    }
    assert out["messages"][4]["content"][0]["content"] == [
        {
            "type": "text",
            "text": CLEARED_TOOL_RESULT,
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        }
    ]


def test_a_result_no_longer_than_the_placeholder_is_left_alone() -> None:
    # Anthropic's probe: keep 1, trigger 100 tokens, results "41" and "7" -> applied_edits []
    request = session(2, [])
    for content, message in zip(("41", "7"), request["messages"][2::2], strict=True):
        message["content"][0]["content"] = content
    request["context_management"]["edits"] = [
        {"type": TOOL_USES, "trigger": count("input_tokens", 100), "keep": count("tool_uses", 1)}
    ]
    out, applied = apply(request)
    assert applied == []
    assert results(out) == ["41", "7"]


def test_a_result_cleared_before_is_not_counted_again() -> None:
    request = session(5, [{"type": TOOL_USES, "trigger": count("tool_uses", 0)}])
    request["messages"][2]["content"][0]["content"] = CLEARED_TOOL_RESULT  # by Claude Code
    _, applied = apply(request)
    assert applied is not None
    assert applied[0]["cleared_tool_uses"] == 1  # toolu_001 only


# -- both, in order ---------------------------------------------------------------------------


def test_edits_run_in_order_each_on_what_the_one_before_left() -> None:
    request = session(6, [], size=5)
    for message in request["messages"][1::2]:  # long thinking, short results
        message["content"][0]["thinking"] = "Think. " * 400
    request["messages"].append({"role": "assistant", "content": "Done."})
    request["messages"].append({"role": "user", "content": "Now the docs."})
    request["messages"] += tool_round(7, size=5)
    after_thinking = apply({**request, "context_management": {"edits": [{"type": THINKING}]}})[0]
    trigger = estimate_tokens(after_thinking) + 10  # over the trigger before, under after
    assert estimate_tokens(request) > trigger
    request["context_management"]["edits"] = [
        {"type": THINKING, "keep": count("thinking_turns", 1)},
        {
            "type": TOOL_USES,
            "trigger": count("input_tokens", trigger),
            "keep": count("tool_uses", 0),
        },
    ]
    _, applied = apply(request)
    assert applied is not None
    assert [edit["type"] for edit in applied] == [THINKING]
    request["context_management"]["edits"].reverse()  # now clear_thinking is not first
    with pytest.raises(InvalidRequest, match=r"edits\[1\]"):
        apply(request)
