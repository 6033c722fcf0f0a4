"""`ccrelay backends` asks RunPod's REST API whether a runpod endpoint was cut to max workers 0.

Two real loopback servers: the serverless API (`fake_runpod`, for the health check) and the
management REST API (`runpod_rest_server`, for `ccrelay.deploy.check_endpoint`), both taking the
one configured key. ``CCRELAY_RUNPOD_API_URL`` points the check at the REST fake.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.client.cli.conftest import ccrelay, use_config
from tests.fakes.runpod_jobs import FakeRunPod
from tests.fakes.runpod_rest import FakeRunPod as FakeRunPodRest


@pytest.fixture
def rest(runpod_rest_server: FakeRunPodRest, fake_runpod: FakeRunPod) -> FakeRunPodRest:
    runpod_rest_server.api_key = fake_runpod.api_key  # one RunPod key for both APIs
    return runpod_rest_server


def configure(
    monkeypatch: pytest.MonkeyPatch, fake_runpod: FakeRunPod, rest: FakeRunPodRest, **ids: str
) -> None:
    backends: dict[str, Any] = {
        name: {
            "type": "runpod",
            "endpoint_id": endpoint_id,
            "endpoint_url": fake_runpod.endpoint_url,
            "api_key": "${RUNPOD_API_KEY}",
        }
        for name, endpoint_id in ids.items()
    }
    backends["plain"] = {
        "type": "runpod",
        "endpoint_url": fake_runpod.endpoint_url,
        "api_key": "${RUNPOD_API_KEY}",
    }
    use_config(monkeypatch, {"backends": backends})
    monkeypatch.setenv("RUNPOD_API_KEY", fake_runpod.api_key)
    monkeypatch.setenv("CCRELAY_RUNPOD_API_URL", rest.api_url)


async def test_json_reports_max_workers_0_with_the_restore_hint(
    monkeypatch: pytest.MonkeyPatch,
    fake_runpod: FakeRunPod,
    rest: FakeRunPodRest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    idle = rest.add_endpoint(name="qwen-idle", workers={"min": 0, "max": 0})
    busy = rest.add_endpoint(name="qwen-busy", workers={"min": 0, "max": 3})
    configure(monkeypatch, fake_runpod, rest, idle=idle["id"], busy=busy["id"])

    code = await ccrelay("backends", "--json")
    out, err = capsys.readouterr()

    assert code == 1, err  # the health checks pass, but jobs on `idle` would queue forever
    rows = {row["name"]: row for row in json.loads(out)["backends"]}
    assert all(row["health"]["ok"] for row in rows.values())
    cut = rows["idle"]["scaling"]
    assert cut["ok"] is False
    assert cut["scaled_to_zero"] is True
    assert cut["workers_max"] == 0
    assert cut["restore_url"] == f"{rest.api_url}/serverless/{idle['id']}"
    assert cut["restore_patch"] == {"workers": {"min": 0, "max": 3}}
    assert "max workers 0" in cut["detail"]
    assert "7 days" in cut["detail"]
    assert "ccrelay deploy" in cut["detail"]
    fine = rows["busy"]["scaling"]
    assert fine["ok"] is True
    assert fine["scaled_to_zero"] is False
    assert fine["workers_max"] == 3
    assert fine["restore_patch"] is None
    assert rows["plain"]["scaling"] is None  # no endpoint_id: nothing to look up
    assert fake_runpod.api_key not in out + err
    looked_up = sorted(call.path for call in rest.calls)
    assert looked_up == sorted(f"/v2/serverless/{i}" for i in (idle["id"], busy["id"]))
    assert all(call.method == "GET" for call in rest.calls)  # a check never changes anything
    assert {call.authorization for call in rest.calls} == {f"Bearer {fake_runpod.api_key}"}


async def test_table_shows_the_verdict_beside_health(
    monkeypatch: pytest.MonkeyPatch,
    fake_runpod: FakeRunPod,
    rest: FakeRunPodRest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    idle = rest.add_endpoint(name="qwen-idle", workers={"min": 0, "max": 0})
    busy = rest.add_endpoint(name="qwen-busy", workers={"min": 1, "max": 2})
    configure(monkeypatch, fake_runpod, rest, idle=idle["id"], busy=busy["id"])

    code = await ccrelay("backends")
    out, err = capsys.readouterr()

    assert code == 1, err
    lines = out.splitlines()
    idle_row = next(line for line in lines if line.startswith("idle "))
    assert "ok: " in idle_row
    assert "runpod endpoint: MAX WORKERS 0" in idle_row
    busy_row = next(line for line in lines if line.startswith("busy "))
    assert "runpod endpoint: ok" in busy_row
    plain_row = next(line for line in lines if line.startswith("plain "))
    assert "runpod endpoint" not in plain_row
    hint = next(line for line in lines if line.startswith("idle: "))
    assert "max workers 0" in hint
    assert f"PATCH {rest.api_url}/serverless/{idle['id']}" in hint
    assert not any(line.startswith("busy: ") for line in lines)
    assert fake_runpod.api_key not in out + err


async def test_all_healthy_exits_0(
    monkeypatch: pytest.MonkeyPatch,
    fake_runpod: FakeRunPod,
    rest: FakeRunPodRest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    busy = rest.add_endpoint(name="qwen-busy", workers={"min": 0, "max": 3})
    configure(monkeypatch, fake_runpod, rest, busy=busy["id"])

    code = await ccrelay("backends", "--json")
    out, err = capsys.readouterr()

    assert code == 0, err
    rows = {row["name"]: row for row in json.loads(out)["backends"]}
    assert rows["busy"]["scaling"]["ok"] is True


async def test_unknown_endpoint_and_refused_key_are_reported_without_the_key(
    monkeypatch: pytest.MonkeyPatch,
    fake_runpod: FakeRunPod,
    rest: FakeRunPodRest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(monkeypatch, fake_runpod, rest, gone="ep9999")

    code = await ccrelay("backends", "--json")
    out, err = capsys.readouterr()
    assert code == 1, err
    gone = {row["name"]: row for row in json.loads(out)["backends"]}["gone"]["scaling"]
    assert gone["ok"] is False
    assert gone["found"] is False
    assert "ccrelay deploy" in gone["detail"]

    rest.api_key = "another-key-entirely"  # RunPod refuses ours: the verdict is unknown
    code = await ccrelay("backends", "--json")
    out, err = capsys.readouterr()
    gone = {row["name"]: row for row in json.loads(out)["backends"]}["gone"]["scaling"]
    assert gone["ok"] is None
    assert "refused the API key" in gone["detail"]
    assert code == 0, err  # health answered; an unknown verdict does not fail the command
    assert fake_runpod.api_key not in out + err


async def test_unreachable_rest_api_is_bounded_by_timeout(
    monkeypatch: pytest.MonkeyPatch,
    fake_runpod: FakeRunPod,
    rest: FakeRunPodRest,
    unused_tcp_port: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(monkeypatch, fake_runpod, rest, busy="ep0001")
    monkeypatch.setenv("CCRELAY_RUNPOD_API_URL", f"http://127.0.0.1:{unused_tcp_port}/v2")

    code = await ccrelay("backends", "--json", "--timeout", "0.5")
    out, err = capsys.readouterr()

    assert code == 0, err
    busy = {row["name"]: row for row in json.loads(out)["backends"]}["busy"]["scaling"]
    assert busy["ok"] is None
    assert "RunPod's REST API" in busy["detail"]
    assert fake_runpod.api_key not in out + err
