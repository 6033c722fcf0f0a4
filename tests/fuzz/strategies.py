"""Hypothesis strategies: Anthropic Messages requests as callers send them (valid and broken), and
what a misbehaving OpenAI-compatible upstream answers them with.

Requests: the Messages API's shape (docs.anthropic.com/en/api/messages), then, at random, one
field broken: a wrong type, a huge string, odd unicode, an unknown field, nesting up to 20 levels
(legal: far below the gateway's depth limit). Upstream replies are `Reply` objects for the fake
OpenAI server (tests/fakes/providers.py), one kind per strategy so a test can name the kind it
expects to fail.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tests.fakes.providers import (
    Reply,
    openai_completion,
    openai_text_chunks,
    openai_tool_chunks,
    sse,
)

HUGE = "h" * 100_000
ODD = [
    "",
    " ",
    "\x00",
    "\ud800",  # a lone surrogate: not UTF-8 at all once JSON-escaped
    "\u202eevil",
    "\ufeffbom",
    "e\u0301",
    "\U0001d54f" * 5,
    "\x1b[31mred",
    "日本語のテキスト",
    "line\r\nbreak",
    '{"json": "in a string"}',
    HUGE,
]
MAX_DEPTH = 20

texts = st.one_of(st.text(max_size=40), st.sampled_from(ODD))
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)


def nest(depth: int, inner: Any) -> Any:
    """`inner` under `depth` levels of alternating objects and lists."""
    for level in range(depth):
        inner = {"k": inner} if level % 2 else [inner]
    return inner


nested = st.builds(nest, st.integers(min_value=1, max_value=MAX_DEPTH), leaves)
json_values = st.one_of(leaves, nested, st.lists(leaves, max_size=3))
tool_names = st.sampled_from(["Bash", "Read", "Edit", "mcp__srv__do_it", "x" * 64])
tool_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=24).map(
    "toolu_".__add__
)

text_block = st.fixed_dictionaries({"type": st.just("text"), "text": texts})
image_block = st.just(
    {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
)
tool_use_block = st.fixed_dictionaries(
    {
        "type": st.just("tool_use"),
        "id": tool_ids,
        "name": tool_names,
        "input": st.one_of(st.dictionaries(st.text(max_size=8), json_values, max_size=3), nested),
    }
)
tool_result_block = st.fixed_dictionaries(
    {
        "type": st.just("tool_result"),
        "tool_use_id": tool_ids,
        "content": st.one_of(texts, st.lists(text_block, max_size=2)),
    },
    optional={"is_error": st.booleans()},
)
thinking_block = st.fixed_dictionaries(
    {"type": st.just("thinking"), "thinking": texts, "signature": st.just("c2ln")}
)
odd_block = st.fixed_dictionaries({"type": texts}, optional={"text": json_values})

user_content = st.one_of(
    texts, st.lists(st.one_of(text_block, image_block, tool_result_block), min_size=1, max_size=3)
)
assistant_content = st.one_of(
    texts, st.lists(st.one_of(text_block, tool_use_block, thinking_block), min_size=1, max_size=3)
)


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    turns = draw(st.integers(min_value=1, max_value=4))
    messages = []
    for i in range(turns):
        user = i % 2 == 0
        content = draw(user_content if user else assistant_content)
        messages.append({"role": "user" if user else "assistant", "content": content})
    return messages


tools = st.lists(
    st.fixed_dictionaries(
        {
            "name": tool_names,
            "description": texts,
            "input_schema": st.fixed_dictionaries(
                {
                    "type": st.just("object"),
                    "properties": st.dictionaries(
                        st.text(min_size=1, max_size=8),
                        st.one_of(
                            st.just({"type": "string"}),
                            st.builds(lambda d: nest(d, {"type": "string"}), st.integers(1, 8)),
                        ),
                        max_size=3,
                    ),
                }
            ),
        }
    ),
    max_size=3,
)

valid_requests = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["claude-sonnet-4-5", "claude-haiku-4-5", "fake-model"]),
        "max_tokens": st.integers(min_value=1, max_value=64_000),
        "messages": conversations(),
    },
    optional={
        "stream": st.booleans(),
        "system": st.one_of(texts, st.lists(text_block, max_size=2)),
        "tools": tools,
        "tool_choice": st.sampled_from([{"type": "auto"}, {"type": "any"}, {"type": "none"}]),
        "temperature": st.floats(min_value=0, max_value=1),
        "metadata": st.fixed_dictionaries({"user_id": texts}),
        "thinking": st.sampled_from(
            [{"type": "enabled", "budget_tokens": 1024}, {"type": "adaptive"}]
        ),
        "stop_sequences": st.lists(texts, max_size=2),
    },
)

_FIELDS = ["model", "max_tokens", "messages", "stream", "system", "tools", "tool_choice"]


@st.composite
def broken_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A valid request with one thing wrong: a field's value, a field gone, a field unknown,
    a message's role or content, or a content block of another shape."""
    body = dict(draw(valid_requests))
    how = draw(st.sampled_from(["wrong", "missing", "unknown", "role", "content", "block"]))
    if how == "wrong":
        body[draw(st.sampled_from(_FIELDS))] = draw(json_values)
    elif how == "missing":
        body.pop(draw(st.sampled_from(["model", "max_tokens", "messages"])), None)
    elif how == "unknown":
        body[draw(texts)] = draw(json_values)
    else:
        messages = [dict(m) for m in body["messages"]]
        target = messages[draw(st.integers(0, len(messages) - 1))]
        if how == "role":
            target["role"] = draw(st.one_of(texts, json_values))
        elif how == "content":
            target["content"] = draw(json_values)
        else:
            target["content"] = [draw(odd_block)]
        body["messages"] = messages
    return body


raw_bodies = st.one_of(
    st.binary(max_size=64),
    st.just(b'{"model": "claude-sonnet-4-5", "messages": ['),
    st.just(b"\xff\xfe{}"),
    st.just(json.dumps(nest(MAX_DEPTH, 1)).encode()),
)
"""Bodies that are not a JSON object at all."""


# -- what the upstream answers ----------------------------------------------------------------

STALL_S = 0.6
"""Longer than the fuzz backend's first-byte and idle deadlines (tests/fuzz/test_gateway.py)."""


def _tool_call(arguments: str) -> dict[str, Any]:
    return {
        "id": "call_1",
        "type": "function",
        "function": {"name": "Bash", "arguments": arguments},
    }


def _usage(prompt: Any, completion: Any) -> dict[str, Any]:
    total = prompt + completion if type(prompt) is type(completion) is int else prompt
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}


def _reply(stream: bool, *, text: str = "ok", usage: tuple[Any, Any] = (11, 7)) -> Reply:
    """A text answer whose usage numbers are `usage`, whatever they are."""
    if stream:
        chunks = openai_text_chunks([text, "!"], usage=None)
        chunks.append({**chunks[0], "choices": [], "usage": _usage(*usage)})
        return Reply(chunks=sse(chunks, done=True))
    body = openai_completion(text)
    body["usage"] = _usage(*usage)
    return Reply(body=body)


CLIENT_ERRORS = [400, 401, 403, 404, 413, 422, 429, 503, 529]
SERVER_ERRORS = [408, 409, 500, 502, 504]
"""What ccrelay.errors calls an upstream server error (http/statuses.py: 5xx but 503 and 529,
and 408 and 409)."""


def error_replies(stream: bool, statuses: list[int] = CLIENT_ERRORS) -> st.SearchStrategy[Reply]:
    status = st.sampled_from(statuses)
    body = st.one_of(
        st.builds(
            lambda m: {"error": {"message": m, "type": "invalid_request_error", "code": None}},
            texts,
        ),
        st.builds(lambda m: {"type": "error", "error": {"type": "api_error", "message": m}}, texts),
        st.builds(lambda v: {"detail": v}, json_values),
    )
    headers = st.one_of(
        st.just({}), st.builds(lambda v: {"retry-after": v}, st.sampled_from(["0", "1", "x", "-5"]))
    )
    return st.one_of(
        st.builds(lambda s, b, h: Reply(status=s, body=b, headers=h), status, body, headers),
        st.builds(lambda s: Reply(status=s, raw=b"<html>Bad Gateway</html>"), status),
        st.builds(lambda s: Reply(status=s, raw=b""), status),
    )


def garbage_replies(stream: bool) -> st.SearchStrategy[Reply]:
    shapes = st.one_of(
        st.builds(lambda v: Reply(body=v), json_values),
        st.just(Reply(body={"choices": "x"})),
        st.just(Reply(body={"choices": [{"message": None}]})),
        st.just(Reply(body={"choices": [{"message": {"content": 5}, "finish_reason": "odd"}]})),
        st.builds(lambda b: Reply(raw=b), st.binary(max_size=64)),
    )
    if not stream:
        return shapes
    chunks = st.one_of(
        st.lists(st.binary(max_size=40), min_size=1, max_size=4),
        st.just([b"data: {not json}\n\n", b"data: [DONE]\n\n"]),
        st.just(sse([{"choices": [{"delta": {"content": 5}}]}], done=True)),
        st.just(sse([{"choices": []}, {"no": "choices"}], done=True)),
        st.just([b"data:\n" * 5000 + b"\n"]),  # empty data lines, many
        st.just([b": comment only\n\n", b"event: odd\ndata: {}\n\n"]),
    )
    return st.one_of(shapes, st.builds(lambda c: Reply(chunks=c), chunks))


def truncated_replies(stream: bool) -> st.SearchStrategy[Reply]:
    if not stream:
        return st.just(Reply(abort=True))
    whole = sse(openai_text_chunks(["Hello", " there"]), done=True)
    return st.builds(
        lambda n: Reply(chunks=whole[:n], abort=True), st.integers(0, len(whole) - 1)
    ) | st.builds(lambda n: Reply(chunks=whole[:n]), st.integers(0, len(whole) - 2))


def stalled_replies(stream: bool) -> st.SearchStrategy[Reply]:
    before = st.just(Reply(delay_before=STALL_S, body=openai_completion()))
    if not stream:
        return before
    chunks = sse(openai_text_chunks(["Hello"]), done=True)
    return before | st.builds(
        lambda n: Reply(chunks=chunks[:n], stall_after_chunks=STALL_S), st.integers(1, 3)
    )


BROKEN_ARGUMENTS = ['{"command": ', "not json", "[1, 2]", '"a string"', "{}}", "\ud800", ""]


def broken_tool_call_replies(stream: bool) -> st.SearchStrategy[Reply]:
    arguments = st.sampled_from(BROKEN_ARGUMENTS)
    if stream:
        return st.builds(
            lambda a: Reply(chunks=sse(openai_tool_chunks("", [("call_1", "Bash", a)]), done=True)),
            arguments,
        )
    return st.builds(
        lambda a: Reply(body=openai_completion("", tool_calls=[_tool_call(a)])), arguments
    )


HUGE_USAGE = [(10**20, 10**30), (2**64, 1), (-5, -1), (1.5e300, 7), ("11", "7"), (None, None)]


def huge_usage_replies(stream: bool) -> st.SearchStrategy[Reply]:
    return st.builds(lambda u: _reply(stream, usage=u), st.sampled_from(HUGE_USAGE))


def honest_replies(stream: bool) -> st.SearchStrategy[Reply]:
    good_tool = json.dumps({"command": "ls"})
    if stream:
        tool = Reply(chunks=sse(openai_tool_chunks("", [("call_1", "Bash", good_tool)]), done=True))
    else:
        tool = Reply(body=openai_completion("", tool_calls=[_tool_call(good_tool)]))
    return st.one_of(st.builds(lambda t: _reply(stream, text=t), texts), st.just(tool))


def server_error_replies(stream: bool) -> st.SearchStrategy[Reply]:
    return error_replies(stream, SERVER_ERRORS)


UPSTREAMS = {
    "honest": honest_replies,
    "errors": error_replies,
    "server_errors": server_error_replies,
    "garbage": garbage_replies,
    "truncated": truncated_replies,
    "stalled": stalled_replies,
    "broken_tool_arguments": broken_tool_call_replies,
    "huge_usage": huge_usage_replies,
}
