"""`ccrelay serve` as a real process: ready, serving, token from the environment, clean stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp

from tests.client.gateway.conftest import SECRET, openai_backend, simple_request
from tests.conftest import free_port
from tests.fakes.providers import FakeOpenAI

REPO = Path(__file__).resolve().parents[3]


async def wait_ready(
    client: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process
) -> None:
    for _ in range(400):
        if process.returncode is not None:
            break
        try:
            async with client.get(url) as response:
                if response.status in (200, 401):
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.025)
    raise AssertionError("ccrelay serve did not become ready")


def base_env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "PYTHONPATH": str(REPO)}


async def spawn_serve(port: int, env: dict[str, str], *extra: str) -> asyncio.subprocess.Process:
    """`python -m ccrelay.cli serve --port PORT [EXTRA]` with pipes for its output."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ccrelay.cli",
        "serve",
        "--port",
        str(port),
        *extra,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_serve_runs_until_sigterm(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    port = free_port()
    token = "serve-token-0123456789"
    env = {
        **base_env(tmp_path),
        "ENABLE_MULTI_BACKEND": "true",
        "LLM_BACKEND_CONFIG": json.dumps(
            {"backends": {"openai": openai_backend(fake_openai.base_url)}}
        ),
        "CCRELAY_AUTH_TOKEN": token,
    }
    process = await spawn_serve(port, env)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as client:
            await wait_ready(client, url + "/health", process)
            refused = await client.post(url + "/v1/messages", json=simple_request())
            assert refused.status == 401  # the token from the environment is required
            served = await client.post(
                url + "/v1/messages", json=simple_request(), headers={"x-api-key": token}
            )
            assert served.status == 200
            assert (await served.json())["content"][0]["text"] == "Hello from fake"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode == 0
    log = err.decode()
    assert f"gateway listening on {url}" in log
    assert "POST /v1/messages 401" in log
    assert "POST /v1/messages 200 backend=openai" in log
    assert "gateway stopping" in log
    assert token not in log + out.decode()
    assert SECRET not in log + out.decode()


async def test_serve_refuses_a_busy_port(tmp_path: Path) -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    try:
        process = await spawn_serve(port, base_env(tmp_path))
        _, err = await asyncio.wait_for(process.communicate(), 15)
    finally:
        blocker.close()
        await blocker.wait_closed()
    assert process.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err.decode()


async def test_serve_warm_warms_a_runpod_backend_while_serving(tmp_path: Path) -> None:
    from tests.conftest import eventually
    from tests.fakes.runpod_jobs import FakeRunPod

    fake = await FakeRunPod(cold_start_s=0.5).start()
    port = free_port()
    backend = {"type": "runpod", "endpoint_url": fake.endpoint_url, "api_key": fake.api_key}
    env = {
        **base_env(tmp_path),
        "ENABLE_MULTI_BACKEND": "true",
        "LLM_BACKEND_CONFIG": json.dumps({"backends": {"rp": backend}}),
    }
    process = await spawn_serve(port, env, "--warm")
    assert process.stderr is not None
    lines: list[str] = []
    try:
        async with aiohttp.ClientSession() as client:
            await wait_ready(client, f"http://127.0.0.1:{port}/health", process)
        await eventually(lambda: len(fake.submissions()) == 1, within=10)
        assert fake.submissions()[0].body == {"input": {"ccrelay_warmup": True}}
        while not any("rp: worker ready after" in line for line in lines):
            line = await asyncio.wait_for(process.stderr.readline(), 15)
            assert line, lines  # the warm-up ends while the gateway serves
            lines.append(line.decode())
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 15)
        await fake.close()
    log = "".join(lines) + err.decode()
    assert "warming runpod endpoint rp" in log
    assert process.returncode == 0
    assert fake.api_key not in log


async def test_serve_exits_130_after_ctrl_c(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    """README: `serve` exits 130 on SIGINT, as a shell reports Ctrl-C (0 after SIGTERM)."""
    port = free_port()
    env = {
        **base_env(tmp_path),
        "ENABLE_MULTI_BACKEND": "true",
        "LLM_BACKEND_CONFIG": json.dumps(
            {"backends": {"openai": openai_backend(fake_openai.base_url)}}
        ),
    }
    process = await spawn_serve(port, env)
    try:
        async with aiohttp.ClientSession() as client:
            await wait_ready(client, f"http://127.0.0.1:{port}/health", process)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        _out, err = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode == 130, err.decode()
    assert "gateway stopping" in err.decode()
    assert "Traceback" not in err.decode()
