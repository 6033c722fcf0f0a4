"""The bind rule, the token check, and which caller headers reach a backend."""

from __future__ import annotations

import argparse
import json

import pytest

from ccrelay.cli import serve
from ccrelay.gateway import AuthRequired, check_bind, is_loopback, start_gateway
from ccrelay.runtime import Runtime
from tests.client.gateway.conftest import (
    SECRET,
    config_env,
    openai_backend,
    running_gateway,
    simple_request,
)
from tests.fakes.providers import FakeAnthropic, FakeOpenAI

TOKEN = "gw-token-Zq81kDx0c2"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.4", False),
        ("example.com", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_off_loopback_needs_a_token() -> None:
    with pytest.raises(AuthRequired, match="CCRELAY_AUTH_TOKEN"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", TOKEN)
    check_bind("127.0.0.1", None)


async def test_start_gateway_refuses_to_listen_off_loopback_without_token(
    fake_openai: FakeOpenAI,
) -> None:
    env = config_env({"openai": openai_backend(fake_openai.base_url)})
    async with Runtime.from_environ(env) as runtime:
        with pytest.raises(AuthRequired):
            await start_gateway(runtime, host="0.0.0.0", port=0)


async def test_serve_command_refuses_with_a_clear_message(
    fake_openai: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    env = config_env({"openai": openai_backend(fake_openai.base_url)})
    args = argparse.Namespace(host="0.0.0.0", port=0, log_level=None, log_format="human")
    code = await serve.serve(args, env, None)
    assert code == 2
    err = capsys.readouterr().err
    assert "refusing to listen on 0.0.0.0 without a token" in err
    assert "CCRELAY_AUTH_TOKEN" in err


async def test_token_is_enforced_when_set(fake_openai: FakeOpenAI) -> None:
    env = config_env({"openai": openai_backend(fake_openai.base_url)})
    async with running_gateway(env, auth_token=TOKEN) as gateway:
        missing = await gateway.post("/v1/messages", simple_request())
        assert missing.status == 401
        body = await missing.json()
        assert body["error"]["type"] == "authentication_error"
        wrong = await gateway.post("/v1/messages", simple_request(), headers={"x-api-key": "nope"})
        assert wrong.status == 401
        wrong_bearer = await gateway.post(
            "/v1/messages", simple_request(), headers={"Authorization": f"Bearer {TOKEN}x"}
        )
        assert wrong_bearer.status == 401
        health = await gateway.client.get(gateway.url + "/health")
        assert health.status == 401
        assert fake_openai.requests == []

        by_key = await gateway.post("/v1/messages", simple_request(), headers={"x-api-key": TOKEN})
        assert by_key.status == 200
        by_bearer = await gateway.post(
            "/v1/messages", simple_request(), headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert by_bearer.status == 200
        for text in (await missing.text(), await wrong.text()):
            assert TOKEN not in text
    # the upstream got the backend's own key, never the gateway token
    for recorded in fake_openai.requests:
        values = " ".join(recorded.headers.values())
        assert TOKEN not in values
        assert recorded.headers["Authorization"] == f"Bearer {SECRET}"


def anthropic_env(fake: FakeAnthropic) -> dict[str, str]:
    """The stand-in is trusted in so many words: a loopback host is not Anthropic's API."""
    anthropic = {
        "type": "anthropic",
        "base_url": fake.url,
        "forward_credentials": True,
        "retry": {"max_attempts": 1},
    }
    return config_env({"anthropic": anthropic})


CALLER = {
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,oauth-2025-04-20",
    "x-stainless-os": "Linux",
    "cookie": "a=b",
}


async def test_pass_through_forwards_the_callers_credentials_without_auth(
    fake_anthropic: FakeAnthropic,
) -> None:
    async with running_gateway(anthropic_env(fake_anthropic)) as gateway:
        response = await gateway.post(
            "/v1/messages?beta=true",
            simple_request(),
            headers={**CALLER, "x-api-key": "sk-ant-caller"},
        )
        assert response.status == 200
        bearer = await gateway.post(
            "/v1/messages", simple_request(), headers={**CALLER, "Authorization": "Bearer oauth-1"}
        )
        assert bearer.status == 200
    first, second = fake_anthropic.requests
    assert first.headers["x-api-key"] == "sk-ant-caller"
    assert first.headers["anthropic-beta"] == CALLER["anthropic-beta"]
    assert first.headers["anthropic-version"] == "2023-06-01"
    assert "cookie" not in {k.lower() for k in first.headers}
    assert "x-stainless-os" not in {k.lower() for k in first.headers}
    assert {k.lower(): v for k, v in second.headers.items()}["authorization"] == "Bearer oauth-1"


async def test_with_auth_on_the_token_is_never_forwarded(fake_anthropic: FakeAnthropic) -> None:
    async with running_gateway(anthropic_env(fake_anthropic), auth_token=TOKEN) as gateway:
        response = await gateway.post(
            "/v1/messages", simple_request(), headers={**CALLER, "x-api-key": TOKEN}
        )
        # nothing of the caller's to send: Anthropic itself refuses (the faithful stand-in's 401)
        assert response.status == 401
        bearer = await gateway.post(
            "/v1/messages", simple_request(), headers={**CALLER, "Authorization": f"Bearer {TOKEN}"}
        )
        assert bearer.status == 401
    for recorded in fake_anthropic.requests:
        lowered = {k.lower(): v for k, v in recorded.headers.items()}
        assert "x-api-key" not in lowered
        assert "authorization" not in lowered
        assert lowered["anthropic-beta"] == CALLER["anthropic-beta"]
        assert TOKEN not in " ".join(lowered.values())


async def test_root_answers_without_the_token(fake_openai: FakeOpenAI) -> None:
    """Claude Code opens with ``HEAD /``; it says nothing, so it needs no token."""
    env = config_env({"openai": openai_backend(fake_openai.base_url)})
    async with running_gateway(env, auth_token=TOKEN) as gateway:
        head = await gateway.client.head(gateway.url + "/")
        assert head.status == 200
        root = await gateway.client.get(gateway.url + "/")
        assert await root.json() == {"service": "ccrelay", "api": "anthropic-messages"}


async def test_the_token_s_own_header_lets_the_caller_s_credential_through(
    fake_anthropic: FakeAnthropic,
) -> None:
    """`ccrelay code` sends the token as ``x-ccrelay-token`` (ANTHROPIC_CUSTOM_HEADERS), so
    Claude Code's own key or login bearer reaches the anthropic backend unchanged."""
    own = {**CALLER, "x-ccrelay-token": TOKEN}
    async with running_gateway(anthropic_env(fake_anthropic), auth_token=TOKEN) as gateway:
        by_key = await gateway.post(
            "/v1/messages", simple_request(), headers={**own, "x-api-key": "sk-ant-api03-user"}
        )
        assert by_key.status == 200
        by_login = await gateway.post(
            "/v1/messages",
            simple_request(),
            headers={**own, "Authorization": "Bearer sk-ant-oat01-user"},
        )
        assert by_login.status == 200
        # the token's own header decides alone: the token elsewhere does not make up for it
        wrong = await gateway.post(
            "/v1/messages",
            simple_request(),
            headers={**CALLER, "x-ccrelay-token": "nope", "x-api-key": TOKEN},
        )
        assert wrong.status == 401
        # the token repeated in a credential header is still never sent on
        repeated = await gateway.post(
            "/v1/messages",
            simple_request(),
            headers={**own, "Authorization": f"Bearer {TOKEN}"},
        )
        assert repeated.status == 401  # Anthropic got no credential at all
    key, login, again = (
        {k.lower(): v for k, v in r.headers.items()} for r in fake_anthropic.requests
    )
    assert key["x-api-key"] == "sk-ant-api03-user" and "authorization" not in key
    assert login["authorization"] == "Bearer sk-ant-oat01-user" and "x-api-key" not in login
    assert "authorization" not in again
    for sent in (key, login, again):
        assert "x-ccrelay-token" not in sent
        assert TOKEN not in " ".join(sent.values())


async def raw_request(url: str, header: bytes) -> bytes:
    """A request with one header of raw bytes (no HTTP client sends bytes that are not UTF-8)."""
    import asyncio
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    body = json.dumps(simple_request()).encode()
    writer.write(
        b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + header
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + body
    )
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    await writer.wait_closed()
    return reply


@pytest.mark.parametrize("name", [b"x-api-key", b"authorization", b"x-ccrelay-token"])
async def test_a_credential_that_is_not_utf8_is_a_401_not_a_500(
    fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture, name: bytes
) -> None:
    """Issue 25 #5: the check encoded the header and raised on bytes that are not UTF-8."""
    value = b"Bearer \xff\xfe-token" if name == b"authorization" else b"\xff\xfe-token"
    async with running_gateway(anthropic_env(fake_anthropic), auth_token=TOKEN) as gateway:
        reply = await raw_request(gateway.url, name + b": " + value)
    status_line, _, rest = reply.partition(b"\r\n")
    assert status_line.split()[1] == b"401", reply
    assert b"authentication_error" in rest
    assert "Traceback" not in caplog.text and "unexpected error" not in caplog.text
    assert fake_anthropic.requests == []


async def test_without_auth_a_credential_that_is_not_utf8_is_not_sent_on(
    fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_gateway(anthropic_env(fake_anthropic)) as gateway:
        reply = await raw_request(gateway.url, b"x-api-key: \xff\xfe-key")
    # not sent on, so Anthropic refuses the request itself: a 401, never a 500
    assert reply.split(b"\r\n", 1)[0].split()[1] == b"401", reply
    assert "unexpected error" not in caplog.text
    (sent,) = fake_anthropic.requests
    assert "x-api-key" not in {k.lower() for k in sent.headers}
