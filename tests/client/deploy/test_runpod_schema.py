"""The fake RunPod REST API refuses what RunPod's published schema refuses, and the schemas
it carries are RunPod's own, unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from ccrelay.deploy import endpoint_body, load_spec, parse_spec, template_body
from tests.fakes.runpod_rest import API_KEY, SCHEMAS, FakeRunPod, schema_errors

REFERENCE = Path(__file__).resolve().parents[4] / "shared" / "reference"
REPO = Path(__file__).resolve().parents[3]

# What `ccrelay deploy` sent before issue 10: RunPod refuses it (no type; value and
# idleTimeout under scaling).
OLD_CREATE = {
    "name": "ccrelay-qwen3-coder",
    "image": "ghcr.io/example/ccrelay-worker:0.1.0",
    "disk": 20,
    "env": {"CCRELAY_MODEL": "qwen3-coder:30b"},
    "gpu": {"pools": ["ADA_48_PRO"], "count": 1},
    "workers": {"min": 0, "max": 3},
    "scaling": {"type": "QUEUE_DELAY", "value": 4, "idleTimeout": 5},
    "timeout": 600000,
    "flashboot": "FLASHBOOT",
}


def test_the_carried_schemas_are_the_published_ones() -> None:
    reference = REFERENCE / "runpod-rest-v2-openapi.json"
    if not reference.is_file():
        pytest.skip(f"the reference spec is not beside the checkout ({reference})")
    published = json.loads(reference.read_text())["components"]["schemas"]
    carried = json.loads(SCHEMAS.read_text())["components"]["schemas"]
    assert carried == {name: published[name] for name in carried}


def test_the_old_create_body_is_refused_for_every_reason_runpod_has() -> None:
    errors = schema_errors("CreateEndpointRequest", OLD_CREATE)
    assert "$: 'type' is a required property" in errors
    assert any(e.startswith("$.scaling:") for e in errors)


def test_what_deploy_sends_for_the_repository_s_serverless_yml_is_accepted() -> None:
    deploy = load_spec(REPO / "serverless.yml", {})
    assert schema_errors("CreateTemplateRequest", template_body(deploy)) == []
    create = endpoint_body(deploy, "vol1", "tpl1")
    assert schema_errors("CreateEndpointRequest", create) == []
    update = endpoint_body(deploy, "vol1")
    update.pop("type")
    assert schema_errors("UpdateEndpointRequest", update) == []


def test_what_deploy_sends_for_a_load_balanced_endpoint_is_accepted() -> None:
    text = (REPO / "serverless.yml").read_text().replace("type: QUEUE ", "type: LOAD_BALANCER ")
    deploy = parse_spec(text.replace("  type: QUEUE_DELAY", "  type: REQUEST_COUNT"), {})
    assert deploy.spec.type == "LOAD_BALANCER"
    assert schema_errors("CreateTemplateRequest", template_body(deploy)) == []
    create = endpoint_body(deploy, "vol1", "tpl1")
    assert create["type"] == "LOAD_BALANCER" and create["workers"]["idleTimeout"] == 60
    assert schema_errors("CreateEndpointRequest", create) == []
    update = endpoint_body(deploy, "vol1")
    update.pop("type")
    assert schema_errors("UpdateEndpointRequest", update) == []
    queue_delay = {**create, "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}}
    assert any(
        e.startswith("$.scaling") for e in schema_errors("CreateEndpointRequest", queue_delay)
    )


async def test_a_load_balancer_cannot_be_patched_to_queue_delay_scaling() -> None:
    """The PATCH schema cannot see the stored type; RunPod's own check does (EndpointScaling)."""
    from tests.fakes.harness import LoopbackServer

    fake = FakeRunPod()
    record = fake.add_endpoint(
        name="lb",
        type="LOAD_BALANCER",
        image="x:1",
        scaling={"type": "REQUEST_COUNT", "requestCount": 1},
    )
    assert record["workers"]["idleTimeout"] == 10, "a load balancer keeps its idle timeout"
    server = LoopbackServer(fake.app()).start_in_thread()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.patch(
                f"{server.url}/v2/serverless/{record['id']}",
                json={"scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}},
                headers={"Authorization": f"Bearer {API_KEY}"},
            ) as response,
        ):
            assert response.status == 400
            problem = await response.json()
    finally:
        server.stop_thread()
    assert "queue-based endpoints only" in problem["detail"]
    assert fake.endpoints[record["id"]]["scaling"]["type"] == "REQUEST_COUNT"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (OLD_CREATE, "'type' is a required property"),
        (
            {**OLD_CREATE, "type": "QUEUE", "scaling": {"type": "QUEUE_DELAY", "queueDelay": 0.1}},
            "scaling",
        ),
        (
            {"name": "x", "type": "QUEUE", "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}},
            "image",
        ),
    ],
)
async def test_the_fake_answers_a_refused_body_with_a_422_problem(
    body: dict[str, object], expected: str
) -> None:
    from tests.fakes.harness import LoopbackServer

    fake = FakeRunPod()
    server = LoopbackServer(fake.app()).start_in_thread()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{server.url}/v2/serverless",
                json=body,
                headers={"Authorization": f"Bearer {API_KEY}"},
            ) as response,
        ):
            assert response.status == 422
            assert response.content_type == "application/problem+json"
            problem = await response.json()
    finally:
        server.stop_thread()
    assert problem["status"] == 422 and problem["title"] and problem["detail"]
    assert any(expected in error for error in problem["errors"]), problem["errors"]
    assert fake.endpoints == {} and len(fake.rejected) == 1


def test_the_pod_body_in_the_deploy_guide_is_one_runpod_accepts() -> None:
    guide = (REPO / "docs" / "deploy.md").read_text()
    section = guide.split("### A RunPod pod with a network volume", 1)[1]
    body = json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])
    assert schema_errors("CreatePodRequest", body) == []
    assert body["env"]["CCRELAY_WORKER_MODE"] == "http" and "CCRELAY_WORKER_API_KEY" in body["env"]
