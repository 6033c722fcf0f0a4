"""`ccrelay deploy` with ``type: LOAD_BALANCER``: create, update and dry run against the fake
RunPod REST API, which validates every body against RunPod's published schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ccrelay.deploy import parse_spec
from ccrelay.deploy.errors import ServerlessConfigError
from tests.client.deploy.helpers import (
    REDIS_URL,
    SPEC,
    deploy,
    spec_file,
    write_paths,
)
from tests.fakes.runpod_rest import FakeRunPod

LB_SPEC = SPEC.replace("scaler:\n  type: QUEUE_DELAY\n  value: 4\n", "") + "type: LOAD_BALANCER\n"
WORKER_ENV = {
    "CCRELAY_WORKER_MODE": "http",
    "PORT": "8000",
    "PORT_HEALTH": "8000",
    "CCRELAY_HTTP_PORT": "8000",
    "CCRELAY_HTTP_ALLOW_UNAUTHENTICATED": "true",
}


def lb_file(tmp_path: Path, **changes: object) -> Path:
    return spec_file(tmp_path, LB_SPEC, **changes)


async def test_a_load_balanced_endpoint_is_created_for_the_worker_s_http_mode(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    path = lb_file(tmp_path, env__OLLAMA_CONTEXT_LENGTH=32768)
    code, out, err = await deploy(runpod, path)
    assert code == 0, err
    assert write_paths(runpod) == [("POST", "/v2/templates"), ("POST", "/v2/serverless")]
    template = runpod.writes[0].body
    assert template["env"] == {
        "REDIS_URL": REDIS_URL,
        "OLLAMA_NUM_PARALLEL": "4",
        "OLLAMA_CONTEXT_LENGTH": "32768",
        "CCRELAY_MODEL": "qwen3-coder:30b",
        **WORKER_ENV,
    }
    assert template["ports"] == ["8000/http"], "RunPod routes only to exposed ports"
    (template_id,) = runpod.templates
    assert runpod.writes[1].body == {
        "name": "ccrelay-qwen3-coder",
        "type": "LOAD_BALANCER",
        "templateId": template_id,
        "gpu": {"pools": ["ADA_48_PRO", "AMPERE_48"], "count": 1},
        "workers": {"min": 0, "max": 3, "idleTimeout": 5},  # kept: LB scales on requests
        "scaling": {"type": "REQUEST_COUNT", "requestCount": 4},
        "timeout": 600_000,
        "flashboot": "FLASHBOOT",
        "dataCenterIds": ["EU-RO-1"],
        "networkVolumes": ["vol-existing"],
    }
    (endpoint_id,) = runpod.endpoints
    stored = runpod.endpoints[endpoint_id]
    assert stored["type"] == "LOAD_BALANCER" and stored["ports"] == ["8000/http"]
    assert stored["env"]["PORT_HEALTH"] == "8000"
    assert stored["requestUrls"]["base"] == f"https://{endpoint_id}.api.runpod.ai"

    snippet = yaml.safe_load(out.split("for this endpoint:\n", 1)[1])
    assert snippet == {
        "active": "runpod-lb",
        "backends": {
            "runpod-lb": {
                "type": "ollama",
                "base_url": f"https://{endpoint_id}.api.runpod.ai/v1",
                "api_key": "${RUNPOD_API_KEY}",
                "model": "qwen3-coder:30b",
                "context_window": 32768,
            }
        },
    }
    assert f"ANTHROPIC_BASE_URL=https://{endpoint_id}.api.runpod.ai\n" in out
    assert REDIS_URL not in out + err

    before = len(runpod.writes)
    code, out, _ = await deploy(runpod, path)
    assert code == 0 and len(runpod.writes) == before, "a second run writes nothing"
    assert "no changes" in out


async def test_a_load_balanced_endpoint_s_ports_and_scaling_are_updated(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    assert (await deploy(runpod, lb_file(tmp_path)))[0] == 0
    before = len(runpod.writes)
    changed = lb_file(tmp_path, port=8080, health_port=8081, scaler={"value": 2})
    code, out, err = await deploy(runpod, changed)
    assert code == 0, err
    (endpoint_id,) = runpod.endpoints
    (template_id,) = runpod.templates
    env = {**WORKER_ENV, "PORT": "8080", "PORT_HEALTH": "8081", "CCRELAY_HTTP_PORT": "8080"}
    ports = ["8080/http", "8081/http"]
    writes = [(c.method, c.path, c.body) for c in runpod.writes[before:]]
    assert [(method, path) for method, path, _ in writes] == [
        ("PATCH", f"/v2/templates/{template_id}"),
        ("PATCH", f"/v2/serverless/{endpoint_id}"),
    ]
    template_patch, endpoint_patch = writes[0][2], writes[1][2]
    assert template_patch["ports"] == ports and endpoint_patch["ports"] == ports
    assert {k: endpoint_patch["env"][k] for k in env} == env
    assert endpoint_patch["scaling"] == {"type": "REQUEST_COUNT", "requestCount": 2}
    assert 'env.PORT: "8000" -> "8080"' in out
    stored = runpod.endpoints[endpoint_id]
    assert stored["scaling"]["requestCount"] == 2 and stored["ports"] == ports
    assert (await deploy(runpod, changed))[0] == 0
    assert len(runpod.writes) == before + 2, "and the next run is a no-op again"


async def test_a_dry_run_plans_a_load_balanced_endpoint_offline(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    code, out, err = await deploy(runpod, lb_file(tmp_path), {"REDIS_URL": REDIS_URL}, dry_run=True)
    assert code == 0 and err == ""
    assert runpod.calls == []
    assert '"type": "LOAD_BALANCER"' in out and '"8000/http"' in out
    assert '"CCRELAY_WORKER_MODE": "http"' in out and '"PORT_HEALTH": "8000"' in out
    assert '"requestCount": 4' in out
    assert "base_url: https://<endpoint id, known after deploy>.api.runpod.ai/v1" in out
    assert "dry run: nothing was changed (2 write(s) planned)" in out


async def test_a_queue_endpoint_of_the_same_name_is_not_turned_into_a_load_balancer(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    record = runpod.add_endpoint(name="ccrelay-qwen3-coder", image="x:1")
    code, _, err = await deploy(runpod, lb_file(tmp_path))
    assert code == 1
    assert f"({record['id']}) is a QUEUE endpoint and serverless.yml asks for LOAD_BALANCER" in err
    assert runpod.writes == []


MINIMAL_LB = "name: ep\nimage: example/worker:1\ngpu: {types: [ADA_24]}\ntype: LOAD_BALANCER\n"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "scaler: {type: QUEUE_DELAY, value: 4}\n",
            "a LOAD_BALANCER endpoint scales on scaler.type REQUEST_COUNT",
        ),
        ("env: {PORT: '80'}\n", "env sets PORT, which type LOAD_BALANCER sets from port"),
        ("env: {CCRELAY_WORKER_MODE: serverless}\n", "CCRELAY_WORKER_MODE is set from `type:`"),
        ("port: 0\n", "port: Input should be greater than or equal to 1"),
    ],
)
def test_load_balancer_rules(extra: str, expected: str) -> None:
    with pytest.raises(ServerlessConfigError) as caught:
        parse_spec(MINIMAL_LB + extra, {})
    assert expected in str(caught.value)


def test_a_queue_endpoint_has_no_port() -> None:
    text = MINIMAL_LB.replace("LOAD_BALANCER", "QUEUE") + "port: 8000\n"
    with pytest.raises(ServerlessConfigError) as caught:
        parse_spec(text, {})
    assert "port apply only to type LOAD_BALANCER" in str(caught.value)


def test_a_worker_key_of_your_own_is_kept_and_then_asked_for() -> None:
    spec = parse_spec(MINIMAL_LB + "env: {CCRELAY_WORKER_API_KEY: '${KEY}'}\n", {"KEY": "k" * 32})
    assert "CCRELAY_HTTP_ALLOW_UNAUTHENTICATED" not in spec.env
    assert spec.env["CCRELAY_WORKER_API_KEY"] == "k" * 32
    assert spec.secret_keys == {"CCRELAY_WORKER_API_KEY"}
    queue = parse_spec(MINIMAL_LB.replace("LOAD_BALANCER", "QUEUE"), {})
    assert set(queue.env) == {"CCRELAY_MODEL"}, "a queue worker gets none of it"
    assert queue.spec.scaler.type == "QUEUE_DELAY"
