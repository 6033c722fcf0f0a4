"""A configured key never shows up anywhere: logs, output, exceptions, reprs, records.

Every backend type gets the same distinctive key; the fake providers echo it back in their
error messages (as real ones sometimes do), and every piece of text the client produces is then
searched for it: log records at DEBUG (message, args, exception text), stdout/stderr, the
strings, reprs and formatted tracebacks of every exception, attempt records and config reprs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from ccrelay.backends.factory import load_client_config
from ccrelay.backends.types import RequestOptions
from ccrelay.cli import main
from ccrelay.errors import CcrelayError
from ccrelay.latency.observer import Attempt
from ccrelay.runtime import Runtime
from ccrelay_config.models import CcrelayConfig
from tests.client.conftest import REQUEST, Sleeps
from tests.fakes.providers import FakeAnthropic, FakeOpenAI, Reply, openai_text_chunks, sse
from tests.fakes.runpod_jobs import FakeRunPod

SECRET = "sk-test-SECRET-123456"
KINDS = ("anthropic", "cerebras", "openai", "runpod")


class Records:
    def __init__(self) -> None:
        self.attempts: list[Attempt] = []

    def on_attempt(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)


class Witness:
    """Everything the client said, as text, to search for the key at the end."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def error(self, exc: BaseException) -> None:
        self.texts += [str(exc), repr(exc), repr(exc.args)]
        self.texts += traceback.format_exception(exc)
        if isinstance(exc, CcrelayError):
            self.texts.append(exc.message)
        for inner in getattr(exc, "errors", []) or []:
            self.error(inner)

    def add(self, *values: object) -> None:
        self.texts += [v if isinstance(v, str) else repr(v) for v in values]

    def assert_clean(self, caplog: pytest.LogCaptureFixture, *more: str) -> None:
        assert caplog.records, "expected some log records to search"
        for record in caplog.records:
            self.texts += [record.getMessage(), repr(record.args), record.exc_text or ""]
            if record.exc_info and record.exc_info[1] is not None:
                self.texts += traceback.format_exception(record.exc_info[1])
        self.texts += [caplog.text, *more]
        leaks = [text for text in self.texts if SECRET in text]
        assert not leaks, leaks[:3]


@dataclass
class Providers:
    openai: FakeOpenAI
    anthropic: FakeAnthropic
    runpod: FakeRunPod

    def config(self) -> CcrelayConfig:
        return load_client_config(self.environ())

    def environ(self, active: str = "cerebras") -> dict[str, str]:
        common = {
            "api_key": "${THE_KEY}",
            "retry": {"max_attempts": 2},
            "timeouts": {"connect_s": 1, "first_byte_s": 2, "idle_s": 2, "total_s": 5},
        }
        document = {
            "active": active,
            "backends": {
                "anthropic": {"type": "anthropic", "base_url": self.anthropic.url, **common},
                "cerebras": {"type": "cerebras", "base_url": self.openai.base_url, **common},
                "openai": {
                    "type": "openai",
                    "base_url": self.openai.base_url,
                    "headers": {"X-Api-Key": "${THE_KEY}"},
                    **common,
                },
                "runpod": {
                    "type": "runpod",
                    "endpoint_url": self.runpod.endpoint_url,
                    "poll_initial_s": 0.01,
                    "poll_max_s": 0.02,
                    "stream_poll_s": 0.01,
                    **common,
                },
            },
        }
        return {
            "ENABLE_MULTI_BACKEND": "true",
            "LLM_BACKEND_CONFIG": json.dumps(document),
            "THE_KEY": SECRET,
        }

    def unauthorized(self, kind: str) -> None:
        """The next request to `kind` is refused with a message that quotes the key."""
        text = f"Incorrect API key provided: {SECRET}"
        if kind == "anthropic":
            body = {"type": "error", "error": {"type": "authentication_error", "message": text}}
            self.anthropic.push(Reply(status=401, body=body))
        elif kind == "runpod":
            self.runpod.push_failure(401, {"error": text})
        else:
            body = {
                "error": {
                    "message": text,
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            }
            self.openai.push(Reply(status=401, body=body))

    def server_error(self, kind: str) -> None:
        text = f"internal error while checking key={SECRET}"
        for _ in range(2):
            if kind == "anthropic":
                body = {"type": "error", "error": {"type": "api_error", "message": text}}
                self.anthropic.push(Reply(status=500, body=body))
            elif kind == "runpod":
                self.runpod.push_failure(500, {"error": text})
            else:
                self.openai.push(Reply(status=500, raw=text.encode()))

    def error_event(self, kind: str) -> None:
        text = f"stream aborted for {SECRET}"
        if kind == "anthropic":
            start = {
                "type": "message_start",
                "message": {
                    "id": "m",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": "x",
                    "usage": {"input_tokens": 1, "output_tokens": 0},
                },
            }
            error = {"type": "error", "error": {"type": "api_error", "message": text}}
            self.anthropic.push(
                Reply(chunks=sse([start, error], event_names=["message_start", "error"]))
            )
        else:
            first = sse(openai_text_chunks(["Hel"])[:2])
            self.openai.push(Reply(chunks=[*first, *sse([{"error": {"message": text}}])]))


@pytest.fixture
async def providers(
    fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> AsyncIterator[Providers]:
    runpod = await FakeRunPod(api_key=SECRET).start()
    try:
        yield Providers(fake_openai, fake_anthropic, runpod)
    finally:
        await runpod.close()


@pytest.fixture(autouse=True)
def everything_at_debug(ccrelay_debug_logs: None) -> None:
    """Every test here searches the DEBUG log lines for the key."""


@pytest.fixture
async def runtime(providers: Providers) -> AsyncIterator[tuple[Runtime, Records]]:
    records = Records()
    async with aiohttp.ClientSession() as session:
        rt = Runtime(providers.config(), session, observer=records, sleep=Sleeps())
        try:
            yield rt, records
        finally:
            await rt.factory.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_no_backend_type_leaks_its_key(
    kind: str,
    providers: Providers,
    runtime: tuple[Runtime, Records],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rt, records = runtime
    witness = Witness()
    backend = rt.factory.get(kind)
    logging.getLogger("ccrelay.test").debug("exercising %s (%r)", kind, backend)

    # Success, both ways; the key really was sent.
    completion = await backend.complete(dict(REQUEST), RequestOptions(request_id="r1"))
    witness.add(completion, completion.response)
    stream = await backend.open_stream(dict(REQUEST), RequestOptions(request_id="r2"))
    witness.add(stream, [event async for event in stream])
    sent = {
        "anthropic": lambda: providers.anthropic.requests[-1].headers.get("x-api-key"),
        "runpod": lambda: providers.runpod.requests[-1].headers.get("Authorization"),
    }.get(kind, lambda: providers.openai.requests[-1].headers.get("Authorization"))()
    assert sent is not None and SECRET in sent

    # 401 quoting the key, 500 quoting it, through both paths and through the router.
    for provoke in (providers.unauthorized, providers.server_error):
        provoke(kind)
        with pytest.raises(CcrelayError) as caught:
            await backend.complete(dict(REQUEST), RequestOptions())
        witness.error(caught.value)
        provoke(kind)
        with pytest.raises(CcrelayError) as caught:
            await backend.open_stream(dict(REQUEST), RequestOptions())
        witness.error(caught.value)
        provoke(kind)
        with pytest.raises(CcrelayError) as caught:
            await rt.router.complete(dict(REQUEST), RequestOptions(), backend=kind)
        witness.error(caught.value)

    # An error event inside a stream that had already started.
    if kind != "runpod":
        providers.error_event(kind)
        stream = await backend.open_stream(dict(REQUEST), RequestOptions())
        with pytest.raises(CcrelayError) as caught:
            async for _ in stream:
                pass
        witness.error(caught.value)

    # The provider goes away.
    server = {"anthropic": providers.anthropic, "runpod": providers.runpod}.get(
        kind, providers.openai
    )
    await server.close()
    with pytest.raises(CcrelayError) as caught:
        await backend.complete(dict(REQUEST), RequestOptions())
    witness.error(caught.value)
    witness.add(await backend.health())

    config = rt.config
    settings = config.backends[kind]
    witness.add(
        config,
        str(config),
        settings,
        str(settings),
        json.dumps(config.masked()),
        backend,
        rt.router.states(),
        records.attempts,
    )
    assert records.attempts, "attempt records were produced"
    out, err = capsys.readouterr()
    witness.assert_clean(caplog, out, err)


async def run_cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


@pytest.mark.parametrize("kind", KINDS)
async def test_cli_never_prints_the_key(
    kind: str,
    providers: Providers,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in providers.environ(active=kind).items():
        monkeypatch.setenv(name, value)
    witness = Witness()

    assert await run_cli("--log-level", "DEBUG", "config", "check") == 0
    assert await run_cli("--log-level", "DEBUG", "ask", "hello") == 0
    providers.unauthorized(kind)
    assert (
        await run_cli("--log-level", "DEBUG", "ask", "hello") == 2
    )  # the backend refused the key: a configuration problem
    assert await run_cli("--log-level", "DEBUG", "backends", "--json") in (0, 1)
    assert await run_cli("--log-level", "DEBUG", "models") in (0, 1)

    out, err = capsys.readouterr()
    assert "Incorrect API key provided" in err  # the provider's message did get through
    assert "********" in out  # config check masked it
    witness.assert_clean(caplog, out, err)


def test_config_errors_never_show_the_key(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    environ = {
        "ENABLE_MULTI_BACKEND": "true",
        "THE_KEY": SECRET,
        "LLM_BACKEND_CONFIG": json.dumps(
            {
                "backends": {
                    "cerebras": {"api_key": "${THE_KEY}", "base_url": SECRET, "modle": SECRET},
                    "runpod": {"type": "runpod", "api_key": SECRET, "endpoint_id": SECRET + "!"},
                }
            }
        ),
    }
    witness = Witness()
    with pytest.raises(Exception) as caught:
        load_client_config(environ)
    witness.error(caught.value)
    logging.getLogger("ccrelay.test").debug("config error was %s", caught.value)
    witness.assert_clean(caplog, *capsys.readouterr())
