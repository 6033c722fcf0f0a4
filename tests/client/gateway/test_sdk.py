"""The official anthropic Python SDK against the gateway (fake OpenAI upstream)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anthropic
import pytest

from ccrelay_translate import estimate_tokens
from tests.client.gateway.conftest import BASH_TOOL, Gateway
from tests.fakes.providers import FakeOpenAI, Reply, openai_tool_chunks, sse


@pytest.fixture
async def sdk(gateway: Gateway) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=gateway.url, api_key="unused", max_retries=0)
    try:
        yield client
    finally:
        await client.close()


async def test_messages_create(sdk: anthropic.AsyncAnthropic) -> None:
    message = await sdk.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=100,
        messages=[{"role": "user", "content": "hello"}],
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from fake"
    assert message.model == "fake-model"
    assert message.usage.output_tokens == 7
    assert message._request_id is not None and message._request_id.startswith("req_")


async def test_messages_stream_with_tools_assembles_the_final_message(
    sdk: anthropic.AsyncAnthropic, fake_openai: FakeOpenAI
) -> None:
    arguments = json.dumps({"command": "echo from-sdk"})
    fake_openai.push(
        Reply(
            chunks=sse(
                openai_tool_chunks("Running it.", [("call_7", "Bash", arguments)]), done=True
            )
        )
    )
    texts: list[str] = []
    async with sdk.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=100,
        messages=[{"role": "user", "content": "run echo"}],
        tools=[BASH_TOOL],  # type: ignore[list-item]
    ) as stream:
        async for text in stream.text_stream:
            texts.append(text)
        final = await stream.get_final_message()
    assert "".join(texts) == "Running it."
    assert final.stop_reason == "tool_use"
    tool_use = final.content[1]
    assert tool_use.type == "tool_use"
    assert tool_use.name == "Bash"
    assert tool_use.id == "call_7"
    assert tool_use.input == {"command": "echo from-sdk"}
    assert final.usage.output_tokens == 9


async def test_count_tokens(sdk: anthropic.AsyncAnthropic) -> None:
    messages = [{"role": "user", "content": "how many tokens is this?"}]
    counted = await sdk.messages.count_tokens(
        model="claude-sonnet-4-6",
        messages=messages,  # type: ignore[arg-type]
        tools=[BASH_TOOL],  # type: ignore[list-item]
    )
    assert counted.input_tokens == estimate_tokens(
        {"model": "claude-sonnet-4-6", "messages": messages, "tools": [BASH_TOOL]}
    )


async def test_models_list(sdk: anthropic.AsyncAnthropic) -> None:
    page = await sdk.models.list()
    assert [m.id for m in page.data] == [
        "fake-model",
        "claude-via-openai-fake-model",
    ]


async def test_sdk_raises_typed_errors(
    sdk: anthropic.AsyncAnthropic, fake_openai: FakeOpenAI
) -> None:
    fake_openai.push(
        Reply(status=429, body={"error": {"message": "slow"}}, headers={"Retry-After": "3"})
    )
    with pytest.raises(anthropic.RateLimitError) as caught:
        await sdk.messages.create(
            model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError):
        await sdk.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=[])


async def test_sdk_sees_a_mid_stream_failure_as_an_error(
    sdk: anthropic.AsyncAnthropic, fake_openai: FakeOpenAI
) -> None:
    chunks = sse(openai_tool_chunks("partial", [("c1", "Bash", '{"command": "x"}')]))[:3]
    fake_openai.push(Reply(chunks=chunks, abort=True))
    with pytest.raises(anthropic.APIStatusError):
        async with sdk.messages.stream(
            model="claude-sonnet-4-6",
            max_tokens=100,
            messages=[{"role": "user", "content": "go"}],
        ) as stream:
            await stream.get_final_message()
